// The one host Adam (src/train/host-adam.ts) against the two it replaced, kept here as references: phase 1's
// LogisticHead.step (weight moments in f32, bias moments in f64) and RL's HeadAdam (f64 over [w..., b]). Equal to
// the last bit over many steps, so runs and resumed runs are unchanged by the merge.
import { describe, expect, it } from 'vitest';
import { HostAdam } from '../src/train/host-adam.js';
import { LogisticHead } from '../src/latent/heads.js';
import { Rng } from '../src/data/rng.js';

/** LogisticHead.step as it was: loss gradient, then Adam inline. */
function referenceHeadStep(
  h: { w: Float32Array; b: number; m: Float32Array; v: Float32Array; mb: number; vb: number; t: number; lr: number },
  xs: Float32Array[],
  ys: number[],
  posWeight: number,
) {
  const dim = h.w.length,
    g = new Float32Array(dim);
  const prob = (x: Float32Array) => {
    let s = h.b;
    for (let i = 0; i < dim; i++) s += h.w[i] * x[i];
    return 1 / (1 + Math.exp(-s));
  };
  let gb = 0,
    wsum = 0;
  for (let n = 0; n < xs.length; n++) {
    const p = prob(xs[n]),
      y = ys[n],
      w = y ? posWeight : 1,
      d = w * (p - y);
    for (let i = 0; i < dim; i++) g[i] += d * xs[n][i];
    gb += d;
    wsum += w;
  }
  h.t++;
  const b1 = 0.9,
    b2 = 0.999,
    eps = 1e-8,
    bc1 = 1 - b1 ** h.t,
    bc2 = 1 - b2 ** h.t;
  for (let i = 0; i < dim; i++) {
    const gi = g[i] / wsum;
    h.m[i] = b1 * h.m[i] + (1 - b1) * gi;
    h.v[i] = b2 * h.v[i] + (1 - b2) * gi * gi;
    h.w[i] -= (h.lr * h.m[i]) / bc1 / (Math.sqrt(h.v[i] / bc2) + eps);
  }
  gb /= wsum;
  h.mb = b1 * h.mb + (1 - b1) * gb;
  h.vb = b2 * h.vb + (1 - b2) * gb * gb;
  h.b -= (h.lr * h.mb) / bc1 / (Math.sqrt(h.vb / bc2) + eps);
}

/** RL's HeadAdam.step as it was. */
function referenceHeadAdam(
  s: { m: Float64Array; v: Float64Array; t: number; lr: number },
  w: Float32Array,
  bias: { b: number },
  gw: Float64Array,
  gb: number,
) {
  const dim = w.length,
    beta1 = 0.9,
    beta2 = 0.999,
    eps = 1e-8;
  s.t++;
  const bc1 = 1 - beta1 ** s.t,
    bc2 = 1 - beta2 ** s.t;
  for (let i = 0; i <= dim; i++) {
    const g = i < dim ? gw[i] : gb;
    s.m[i] = beta1 * s.m[i] + (1 - beta1) * g;
    s.v[i] = beta2 * s.v[i] + (1 - beta2) * g * g;
    const d = (s.lr * s.m[i]) / bc1 / (Math.sqrt(s.v[i] / bc2) + eps);
    if (i < dim) w[i] -= d;
    else bias.b -= d;
  }
}

describe('host Adam', () => {
  it("LogisticHead.step is bit-identical to phase 1's former inline Adam (and its state round-trips)", () => {
    const rng = new Rng(3),
      dim = 24;
    const head = new LogisticHead(dim, 'start', 3e-3);
    const ref = { w: new Float32Array(dim), b: 0, m: new Float32Array(dim), v: new Float32Array(dim), mb: 0, vb: 0, t: 0, lr: 3e-3 };
    for (let step = 0; step < 40; step++) {
      const xs = Array.from({ length: 7 }, () => Float32Array.from({ length: dim }, () => rng.normal()));
      const ys = xs.map((x) => (x[0] + 0.3 * x[1] > 0.4 ? 1 : 0));
      head.step(xs, ys, 8);
      referenceHeadStep(ref, xs, ys, 8);
    }
    expect(Array.from(head.w)).toEqual(Array.from(ref.w));
    expect(head.b).toBe(ref.b);
    expect(head.adamState()).toEqual({ m: Array.from(ref.m), v: Array.from(ref.v), mb: ref.mb, vb: ref.vb, t: ref.t });
    const copy = LogisticHead.fromJSON(head.toJSON());
    copy.lr = 3e-3;
    copy.loadAdamState(head.adamState());
    const xs = [Float32Array.from({ length: dim }, () => rng.normal())];
    head.step(xs, [1]), copy.step(xs, [1]);
    expect(Array.from(copy.w)).toEqual(Array.from(head.w));
    expect(copy.b).toBe(head.b);
  });

  it("HostAdam over [w..., b] is bit-identical to RL's former HeadAdam", () => {
    const rng = new Rng(4),
      dim = 16;
    const opt = new HostAdam(dim + 1, 1e-3);
    const w = new Float32Array(dim),
      bias = { b: 0.1 };
    const rw = new Float32Array(dim),
      rb = { b: 0.1 },
      rs = { m: new Float64Array(dim + 1), v: new Float64Array(dim + 1), t: 0, lr: 1e-3 };
    for (let step = 0; step < 30; step++) {
      const g = Float64Array.from({ length: dim + 1 }, () => 0.01 * rng.normal());
      opt.step(g, (i, d) => (i < dim ? (w[i] -= d) : (bias.b -= d)));
      referenceHeadAdam(rs, rw, rb, g.subarray(0, dim), g[dim]);
    }
    expect(Array.from(w)).toEqual(Array.from(rw));
    expect(bias.b).toBe(rb.b);
    expect(opt.toJSON()).toEqual({ t: rs.t, m: Array.from(rs.m), v: Array.from(rs.v) });
    expect(() => opt.step(new Float64Array(dim), () => {})).toThrow('HostAdam: gradient has 16 entries, the optimizer 17');
  });
});
