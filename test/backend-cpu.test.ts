// The CPU backend against itself would prove nothing; instead check its ops against finite differences,
// which makes the reference that every other backend is compared with trustworthy on its own.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import type { Tensor } from '../src/backend/types.js';
import { randn } from './_conformance.js';

const be = new CpuBackend();
const f32 = (t: Tensor) => (t as unknown as { data: Float32Array }).data;
function tensor(data: Float32Array | Int32Array) {
  const t = be.alloc(data.length, data instanceof Int32Array ? 'i32' : 'f32');
  be.upload(t, data);
  return t;
}

/** Checks analytic gradient `grad` of scalar loss() w.r.t. tensor x by central differences (in f64 arithmetic on f32 storage). */
function gradCheck(x: Tensor, grad: Float32Array, loss: () => number, h = 1e-2, tol = 2e-2) {
  const X = f32(x);
  for (let i = 0; i < X.length; i += Math.max(1, Math.floor(X.length / 23))) {
    const old = X[i];
    X[i] = old + h;
    const lp = loss();
    X[i] = old - h;
    const lm = loss();
    X[i] = old;
    const fd = (lp - lm) / (2 * h);
    expect(Math.abs(fd - grad[i]), `element ${i}: fd ${fd} vs analytic ${grad[i]}`).toBeLessThan(tol * Math.max(1, Math.abs(fd)));
  }
}

describe('CpuBackend ops agree with finite differences', () => {
  it('rmsNorm backward', () => {
    const rows = 3,
      dim = 7;
    const x = tensor(randn(rows * dim, 1)),
      w = tensor(randn(dim, 2)),
      gy = randn(rows * dim, 3);
    const y = be.alloc(rows * dim),
      r = be.alloc(rows),
      dx = be.alloc(rows * dim),
      dw = be.alloc(dim);
    const loss = () => {
      be.rmsNorm({ x, w, y, rstd: r, rows, dim, eps: 1e-6 });
      return f32(y).reduce((s, v, i) => s + v * gy[i], 0);
    };
    loss();
    be.rmsNormBackward({ dy: tensor(gy), x, w, rstd: r, dx, dw, rows, dim });
    gradCheck(x, f32(dx), loss);
    gradCheck(w, f32(dw), loss);
  });

  it('attention backward (GQA 4:2, KV prefix)', () => {
    const s = { B: 1, Tq: 3, Hq: 4, Hkv: 2, D: 4, qStart: 2, kvCap: 6 };
    const nq = 3 * 4 * 4,
      nkv = 6 * 2 * 4;
    const q = tensor(randn(nq, 4)),
      k = tensor(randn(nkv, 5)),
      v = tensor(randn(nkv, 6)),
      g = randn(nq, 7);
    const out = be.alloc(nq),
      lse = be.alloc(12),
      dq = be.alloc(nq),
      dk = be.alloc(nkv),
      dv = be.alloc(nkv);
    const loss = () => {
      be.attention({ q, kCache: k, vCache: v, out, lse, ...s });
      return f32(out).reduce((a, o, i) => a + o * g[i], 0);
    };
    loss();
    be.attentionBackward({ dOut: tensor(g), q, kCache: k, vCache: v, out, lse, dq, dkCache: dk, dvCache: dv, ...s });
    gradCheck(q, f32(dq), loss);
    gradCheck(k, f32(dk), loss);
    gradCheck(v, f32(dv), loss);
    // rows past qStart+Tq-1 = 4 get no gradient (causality)
    expect(Array.from(f32(dk).slice(5 * 8))).toEqual(new Array(8).fill(0));
  });

  it('swiglu backward', () => {
    const n = 9,
      g = tensor(randn(n, 8, 3)),
      u = tensor(randn(n, 9)),
      w = randn(n, 10);
    const o = be.alloc(n),
      dg = be.alloc(n),
      du = be.alloc(n);
    const loss = () => {
      be.swiglu({ gate: g, up: u, out: o, n });
      return f32(o).reduce((a, v, i) => a + v * w[i], 0);
    };
    loss();
    be.swigluBackward({ dOut: tensor(w), gate: g, up: u, dGate: dg, dUp: du, n });
    gradCheck(g, f32(dg), loss);
    gradCheck(u, f32(du), loss);
  });

  it('crossEntropy gradient and rope inverse', () => {
    const V = 6,
      x = tensor(randn(2 * V, 11, 3)),
      labels = tensor(new Int32Array([2, 5])),
      losses = be.alloc(2);
    const loss = () => {
      const c = tensor(f32(x).slice());
      be.crossEntropy({ logits: c, labels, losses, rows: 2, V });
      return f32(losses)[0] + f32(losses)[1];
    };
    const gx = tensor(f32(x).slice());
    be.crossEntropy({ logits: gx, labels, losses, rows: 2, V, weights: tensor(new Float32Array([1, 1])) });
    gradCheck(x, f32(gx), loss, 1e-2, 1e-2);
    const y = tensor(randn(2 * 3 * 8, 12)),
      before = f32(y).slice(),
      pos = tensor(new Int32Array([5, 900]));
    be.rope({ x: y, pos, rows: 2, heads: 3, D: 8, theta: 10000 });
    be.rope({ x: y, pos, rows: 2, heads: 3, D: 8, theta: 10000, inverse: true });
    f32(y).forEach((v, i) => expect(v).toBeCloseTo(before[i], 5));
  });
});
