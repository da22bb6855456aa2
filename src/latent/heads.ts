// The start and end classifiers: logistic heads on final-norm hidden states.
//   start: on a text position's hidden state, "enter latent mode before the next token"
//   end:   on a latent position's hidden state, "leave latent mode now"
// They are trained on detached hidden states (probes): their loss never pushes the trunk, so adding them cannot
// change what the language model learns, and they are cheap enough to train on the host in plain JS.
// Adam on the host (src/train/host-adam.ts) with per-class weighting (breakpoints are rare among positions).
import { HostAdam } from '../train/host-adam.js';
import type { HeadAdamState, HeadWeights } from '../train/checkpoint-schema.js';

export interface HeadMetrics {
  precision: number;
  recall: number;
  f1: number;
  accuracy: number;
  n: number;
}

export class LogisticHead {
  w: Float32Array;
  b = 0;
  /** Adam for the weights (moments in f32) and for the bias (in f64), stepped together. */
  private wOpt: HostAdam;
  private bOpt: HostAdam;
  constructor(
    readonly dim: number,
    readonly name: string,
    lr = 1e-2,
  ) {
    this.w = new Float32Array(dim);
    this.wOpt = new HostAdam(dim, lr, { moments: 'f32' });
    this.bOpt = new HostAdam(1, lr);
  }

  get lr(): number {
    return this.wOpt.lr;
  }
  set lr(lr: number) {
    this.wOpt.lr = this.bOpt.lr = lr;
  }

  logit(h: Float32Array, off = 0): number {
    let s = this.b;
    for (let i = 0; i < this.dim; i++) s += this.w[i] * h[off + i];
    return s;
  }

  prob(h: Float32Array, off = 0): number {
    return 1 / (1 + Math.exp(-this.logit(h, off)));
  }

  /** One Adam step on a minibatch of (hidden, label) pairs; positives weighted by `posWeight`. Returns mean loss. */
  step(xs: Float32Array[], ys: number[], posWeight = 1): number {
    if (xs.length === 0) return 0;
    const g = new Float32Array(this.dim);
    let gb = 0,
      loss = 0,
      wsum = 0;
    for (let n = 0; n < xs.length; n++) {
      const p = this.prob(xs[n]),
        y = ys[n],
        w = y ? posWeight : 1;
      loss -= w * (y ? Math.log(p + 1e-12) : Math.log(1 - p + 1e-12));
      const d = w * (p - y);
      for (let i = 0; i < this.dim; i++) g[i] += d * xs[n][i];
      gb += d;
      wsum += w;
    }
    this.wOpt.step(
      Float64Array.from(g, (x) => x / wsum),
      (i, d) => (this.w[i] -= d),
    );
    this.bOpt.step([gb / wsum], (_, d) => (this.b -= d));
    return loss / wsum;
  }

  evaluate(xs: Float32Array[], ys: number[], threshold = 0.5): HeadMetrics {
    let tp = 0,
      fp = 0,
      fn = 0,
      ok = 0;
    for (let n = 0; n < xs.length; n++) {
      const pred = this.prob(xs[n]) > threshold ? 1 : 0;
      if (pred && ys[n]) tp++;
      else if (pred) fp++;
      else if (ys[n]) fn++;
      if (pred === ys[n]) ok++;
    }
    const precision = tp + fp ? tp / (tp + fp) : 0,
      recall = tp + fn ? tp / (tp + fn) : 0;
    return {
      precision,
      recall,
      f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
      accuracy: xs.length ? ok / xs.length : 0,
      n: xs.length,
    };
  }

  toJSON(): HeadWeights {
    return { name: this.name, dim: this.dim, w: Array.from(this.w), b: this.b };
  }

  /** Adam's moments and step count: with toJSON's weights, all a resumed run needs to continue bit-identically. */
  adamState(): HeadAdamState {
    return { m: Array.from(this.wOpt.m), v: Array.from(this.wOpt.v), mb: this.bOpt.m[0], vb: this.bOpt.v[0], t: this.wOpt.t };
  }

  loadAdamState(s: HeadAdamState): void {
    if (s.m.length !== this.dim || s.v.length !== this.dim)
      throw new Error(`${this.name} head: optimizer state has ${s.m.length} entries, the head has ${this.dim}`);
    this.wOpt.load({ t: s.t, m: s.m, v: s.v });
    this.bOpt.load({ t: s.t, m: [s.mb], v: [s.vb] });
  }

  static fromJSON(j: HeadWeights): LogisticHead {
    const h = new LogisticHead(j.dim, j.name);
    h.w.set(j.w);
    h.b = j.b;
    return h;
  }
}
