// The start and end classifiers: logistic heads on final-norm hidden states.
//   start: on a text position's hidden state, "enter latent mode before the next token"
//   end:   on a latent position's hidden state, "leave latent mode now"
// They are trained on detached hidden states (probes): their loss never pushes the trunk, so adding them cannot
// change what the language model learns, and they are cheap enough to train on the host in plain JS.
// Adam on the host with per-class weighting (breakpoints are rare among positions).

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
  private m: Float32Array;
  private v: Float32Array;
  private mb = 0;
  private vb = 0;
  private t = 0;
  constructor(readonly dim: number, readonly name: string, public lr = 1e-2) {
    this.w = new Float32Array(dim);
    this.m = new Float32Array(dim);
    this.v = new Float32Array(dim);
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
    let gb = 0, loss = 0, wsum = 0;
    for (let n = 0; n < xs.length; n++) {
      const p = this.prob(xs[n]), y = ys[n], w = y ? posWeight : 1;
      loss -= w * (y ? Math.log(p + 1e-12) : Math.log(1 - p + 1e-12));
      const d = w * (p - y);
      for (let i = 0; i < this.dim; i++) g[i] += d * xs[n][i];
      gb += d;
      wsum += w;
    }
    this.t++;
    const b1 = 0.9, b2 = 0.999, eps = 1e-8, bc1 = 1 - b1 ** this.t, bc2 = 1 - b2 ** this.t;
    for (let i = 0; i < this.dim; i++) {
      const gi = g[i] / wsum;
      this.m[i] = b1 * this.m[i] + (1 - b1) * gi;
      this.v[i] = b2 * this.v[i] + (1 - b2) * gi * gi;
      this.w[i] -= (this.lr * this.m[i]) / bc1 / (Math.sqrt(this.v[i] / bc2) + eps);
    }
    gb /= wsum;
    this.mb = b1 * this.mb + (1 - b1) * gb;
    this.vb = b2 * this.vb + (1 - b2) * gb * gb;
    this.b -= (this.lr * this.mb) / bc1 / (Math.sqrt(this.vb / bc2) + eps);
    return loss / wsum;
  }

  evaluate(xs: Float32Array[], ys: number[], threshold = 0.5): HeadMetrics {
    let tp = 0, fp = 0, fn = 0, ok = 0;
    for (let n = 0; n < xs.length; n++) {
      const pred = this.prob(xs[n]) > threshold ? 1 : 0;
      if (pred && ys[n]) tp++;
      else if (pred) fp++;
      else if (ys[n]) fn++;
      if (pred === ys[n]) ok++;
    }
    const precision = tp + fp ? tp / (tp + fp) : 0, recall = tp + fn ? tp / (tp + fn) : 0;
    return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, accuracy: xs.length ? ok / xs.length : 0, n: xs.length };
  }

  toJSON() {
    return { name: this.name, dim: this.dim, w: Array.from(this.w), b: this.b };
  }

  /** Adam's moments and step count: with toJSON's weights, all a resumed run needs to continue bit-identically. */
  adamState() {
    return { m: Array.from(this.m), v: Array.from(this.v), mb: this.mb, vb: this.vb, t: this.t };
  }

  loadAdamState(s: { m: number[]; v: number[]; mb: number; vb: number; t: number }): void {
    if (s.m.length !== this.dim || s.v.length !== this.dim) throw new Error(`${this.name} head: optimizer state has ${s.m.length} entries, the head has ${this.dim}`);
    this.m.set(s.m), this.v.set(s.v);
    this.mb = s.mb, this.vb = s.vb, this.t = s.t;
  }

  static fromJSON(j: { name: string; dim: number; w: number[]; b: number }): LogisticHead {
    const h = new LogisticHead(j.dim, j.name);
    h.w.set(j.w);
    h.b = j.b;
    return h;
  }
}
