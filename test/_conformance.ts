// Op-by-op conformance of a Backend against the plain-JS CpuBackend (the executable spec in src/backend/cpu.ts).
// Each backend's test file calls `backendConformance(name, factory)`. Shapes are deliberately odd (not multiples
// of 4, 16 or 64) so tiling edge cases are exercised, and offsets are non-zero where the op takes them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import type { AttentionShape, Backend, Tensor } from '../src/backend/types.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-6);
}

type Init = Float32Array | Int32Array | number;

/** Runs `op` on both backends with the same inputs and returns the named outputs of both ([dut, ref]). */
export async function both(ref: Backend, dut: Backend, inputs: Record<string, Init>, op: (b: Backend, t: Record<string, Tensor>) => void, outputs: string[]) {
  const res: Record<string, [Float32Array | Int32Array, Float32Array | Int32Array]> = {};
  const run = async (b: Backend) => {
    const t: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) {
      if (typeof v === 'number') t[k] = b.alloc(v, 'f32', k);
      else {
        t[k] = b.alloc(v.length, v instanceof Int32Array ? 'i32' : 'f32', k);
        b.upload(t[k], v);
      }
    }
    op(b, t);
    const out = [];
    for (const k of outputs) out.push(await b.read(t[k]));
    for (const x of Object.values(t)) b.free(x);
    return out;
  };
  const r = await run(ref), d = await run(dut);
  outputs.forEach((k, i) => (res[k] = [d[i], r[i]]));
  return res;
}

export function backendConformance(name: string, factory: () => Promise<Backend>, tol = 1e-4) {
  describe(`${name} backend conformance vs CpuBackend`, () => {
    let dut: Backend;
    const ref = new CpuBackend();
    beforeAll(async () => {
      dut = await factory();
    });
    afterAll(() => dut?.destroy());
    const check = (res: Record<string, [ArrayLike<number>, ArrayLike<number>]>, t = tol) => {
      for (const [k, [d, r]] of Object.entries(res)) expect(maxRelErr(d, r), k).toBeLessThanOrEqual(t);
    };

    it('upload / read / zero / copy2d', async () => {
      const a = randn(37, 1);
      const res = await both(ref, dut, { a, b: randn(50, 2), c: 50 }, (b, t) => {
        b.copy2d(t.a, t.b, 3, 5, 2, 7, 1, 9);
        b.copy2d(t.a, t.b, 2, 4, 0, 5, 30, 6, true);
        b.zero(t.c, 3, 10);
        b.copy2d(t.a, t.c, 1, 20, 10, 0, 20, 0);
      }, ['b', 'c']);
      check(res, 0);
      const t = dut.alloc(37);
      dut.upload(t, a);
      expect(Array.from(await dut.read(t, 5, 7))).toEqual(Array.from(a.slice(5, 12)));
      dut.free(t);
    });

    it('add / axpy / scale', async () => {
      check(await both(ref, dut, { a: randn(33, 3), b: randn(33, 4), y: randn(40, 5) }, (b, t) => {
        b.add(t.a, t.b, t.a, 33);
        b.axpy(0.37, t.b, t.y, 20, 3, 11);
        b.scale(t.b, -1.5, 33);
      }, ['a', 'b', 'y']), 1e-6);
    });

    it('embedding gather and scatter-add backward (repeated ids, skipped -1)', async () => {
      const V = 11, H = 13, rows = 9;
      const ids = new Int32Array([3, 0, 10, 3, -1, 7, 3, 10, 1]);
      check(await both(ref, dut, { ids, table: randn(V * H, 6), out: randn(rows * H, 7), dOut: randn(rows * H, 8), dTable: randn(V * H, 9) }, (b, t) => {
        b.embedding(t.ids, t.table, t.out, rows, H);
        b.embeddingBackward(t.ids, t.dOut, t.dTable, rows, H);
      }, ['out', 'dTable']), 1e-6);
    });

    for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      it(`matmul transA=${transA} transB=${transB} with bias, accumulate and offsets`, async () => {
        const M = 19, N = 23, K = 29;
        check(await both(ref, dut, { a: randn(M * K + 5, 10), b: randn(N * K + 3, 11), c: randn(M * N + 7, 12), bias: randn(N, 13) }, (be, t) => {
          be.matmul(t.a, t.b, t.c, M, N, K, { transA, transB, bias: t.bias, aOff: 5, bOff: 3, cOff: 7 });
          be.matmul(t.a, t.b, t.c, M, N, K, { transA, transB, accumulate: true, aOff: 5, bOff: 3, cOff: 7 });
        }, ['c']));
      });
    }

    // The fusions (MatmulOptions.swigluGate, .residual) against their definition: swiglu, copy, accumulate.
    for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      it(`matmul transA=${transA} transB=${transB} with the SwiGLU input and residual fusions, bias and offsets`, async () => {
        const M = 19, N = 23, K = 29, nA = M * K + 5, nC = M * N + 7;
        check(await both(ref, dut, { up: randn(nA, 16), gate: randn(nA, 17, 4), b: randn(N * K + 3, 18), res: randn(nC, 19), c: randn(nC, 20), c2: randn(nC, 21), bias: randn(N, 22) }, (be, t) => {
          be.matmul(t.up, t.b, t.c, M, N, K, { transA, transB, bias: t.bias, aOff: 5, bOff: 3, cOff: 7, swigluGate: t.gate, residual: t.res });
          be.matmul(t.up, t.b, t.c2, M, N, K, { transA, transB, aOff: 5, bOff: 3, cOff: 7, swigluGate: t.gate });
          be.matmul(t.up, t.b, t.res, M, N, K, { transA, transB, aOff: 5, bOff: 3, cOff: 7, residual: t.res }); // residual = C: in place
        }, ['c', 'c2', 'res']));
        // what the fused options stand for, on the backend under test itself: swiglu into a tensor, copy, accumulate
        const inputs = { up: randn(nA, 16), gate: randn(nA, 17, 4), b: randn(N * K + 3, 18), res: randn(nC, 19) };
        const outputOf = async (fused: boolean) => {
          const t = Object.fromEntries(Object.entries(inputs).map(([k, v]) => {
            const x = dut.alloc(v.length, 'f32', k);
            dut.upload(x, v);
            return [k, x];
          }));
          const c = dut.alloc(nC, 'f32', 'c'), act = dut.alloc(nA, 'f32', 'act');
          const o = { transA, transB, aOff: 5, bOff: 3, cOff: 7 };
          if (fused) dut.matmul(t.up, t.b, c, M, N, K, { ...o, swigluGate: t.gate, residual: t.res });
          else {
            dut.swiglu(t.gate, t.up, act, nA);
            dut.copy2d(t.res, c, M, N, 7, N, 7, N);
            dut.matmul(act, t.b, c, M, N, K, { ...o, accumulate: true });
          }
          const out = await dut.read(c);
          for (const x of [...Object.values(t), c, act]) dut.free(x);
          return out;
        };
        expect(maxRelErr(await outputOf(true), await outputOf(false)), 'fused vs composed').toBeLessThanOrEqual(1e-6);
      });
    }

    it('matmul fusions refuse what they cannot mean', async () => {
      const a = dut.alloc(12), g = dut.alloc(11), b = dut.alloc(12), c = dut.alloc(9), r = dut.alloc(8);
      try {
        expect(() => dut.matmul(a, b, c, 3, 3, 4, { residual: c, accumulate: true })).toThrow(/residual and accumulate/);
        expect(() => dut.matmul(a, b, c, 3, 3, 4, { residual: r })).toThrow(/residual 'r'|residual/);
        expect(() => dut.matmul(a, b, c, 3, 3, 4, { swigluGate: g })).toThrow(/swigluGate/);
      } finally {
        for (const t of [a, g, b, c, r]) dut.free(t);
      }
    });

    it('matmul at a Qwen2-like shape (M=33, N=136, K=96)', async () => {
      const M = 33, N = 136, K = 96;
      check(await both(ref, dut, { a: randn(M * K, 14), b: randn(N * K, 15), c: M * N }, (be, t) => be.matmul(t.a, t.b, t.c, M, N, K, { transB: true }), ['c']));
    });

    it('sumRows', async () => {
      check(await both(ref, dut, { g: randn(17 * 9, 16), db: randn(9, 17) }, (b, t) => b.sumRows(t.g, t.db, 17, 9), ['db']));
    });

    it('rmsNorm forward and backward', async () => {
      const rows = 7, dim = 37;
      check(await both(ref, dut, { x: randn(rows * dim, 18), w: randn(dim, 19), y: rows * dim, rstd: rows, dy: randn(rows * dim, 20), dx: randn(rows * dim, 21), dw: randn(dim, 22) }, (b, t) => {
        b.rmsNorm(t.x, t.w, t.y, t.rstd, rows, dim, 1e-6);
        b.rmsNormBackward(t.dy, t.x, t.w, t.rstd, t.dx, t.dw, rows, dim);
      }, ['y', 'rstd', 'dx', 'dw']));
    });

    it('rope forward and inverse', async () => {
      const rows = 6, heads = 3, D = 10;
      const pos = new Int32Array([0, 1, 2, 7, 100, 4095]);
      check(await both(ref, dut, { pos, x: randn(rows * heads * D, 23), y: randn(rows * heads * D, 24) }, (b, t) => {
        b.rope(t.x, t.pos, rows, heads, D, 10000);
        b.rope(t.y, t.pos, rows, heads, D, 1e6, true);
      }, ['x', 'y']));
    });

    for (const [Hq, Hkv] of [[4, 2], [7, 1], [3, 3]] as const) {
      it(`attention forward and backward, GQA ${Hq}:${Hkv}, with a KV-cache prefix`, async () => {
        const B = 2, Tq = 5, D = 8, qStart = 3, kvCap = 11;
        const s: AttentionShape = { B, Tq, Hq, Hkv, D, qStart, kvCap };
        const nq = B * Tq * Hq * D, nkv = B * kvCap * Hkv * D;
        check(await both(ref, dut, {
          q: randn(nq, 30), k: randn(nkv, 31), v: randn(nkv, 32), out: nq, lse: B * Hq * Tq,
          dOut: randn(nq, 33), dq: randn(nq, 34), dk: randn(nkv, 35), dv: randn(nkv, 36),
        }, (b, t) => {
          b.attention(t.q, t.k, t.v, t.out, t.lse, s);
          b.attentionBackward(t.dOut, t.q, t.k, t.v, t.out, t.lse, t.dq, t.dk, t.dv, s);
        }, ['out', 'lse', 'dq', 'dk', 'dv']));
      });
    }

    it('attention with a long sequence (T=70, D=16)', async () => {
      const s: AttentionShape = { B: 1, Tq: 70, Hq: 2, Hkv: 1, D: 16, qStart: 0, kvCap: 70 };
      const nq = 70 * 2 * 16, nkv = 70 * 16;
      check(await both(ref, dut, { q: randn(nq, 40, 2), k: randn(nkv, 41, 2), v: randn(nkv, 42), out: nq, lse: 140, dOut: randn(nq, 43), dq: nq, dk: nkv, dv: nkv }, (b, t) => {
        b.attention(t.q, t.k, t.v, t.out, t.lse, s);
        b.attentionBackward(t.dOut, t.q, t.k, t.v, t.out, t.lse, t.dq, t.dk, t.dv, s);
      }, ['out', 'lse', 'dq', 'dk', 'dv']));
    });

    it('swiglu forward and backward', async () => {
      const n = 45;
      check(await both(ref, dut, { g: randn(n, 50, 4), u: randn(n, 51), o: n, d: randn(n, 52), dg: randn(n, 53), du: randn(n, 54) }, (b, t) => {
        b.swiglu(t.g, t.u, t.o, n);
        b.swigluBackward(t.d, t.g, t.u, t.dg, t.du, n);
      }, ['o', 'dg', 'du']));
    });

    it('crossEntropy: losses, fused gradient, ignore index, offsets', async () => {
      const rows = 5, V = 131;
      const labels = new Int32Array([0, 4, -100, 130, 77, 3, 9]);
      const w = new Float32Array([0, 0.5, 1, 0.25, -2, 1, 1]);
      check(await both(ref, dut, { x: randn(rows * V + 9, 60, 8), y: randn(rows * V, 61, 8), labels, w, l1: 9, l2: rows }, (b, t) => {
        b.crossEntropy(t.x, t.labels, t.l1, rows, V, { weights: t.w, logitsOff: 9, labelOff: 1, lossOff: 2 });
        b.crossEntropy(t.y, t.labels, t.l2, rows, V);
      }, ['x', 'y', 'l1', 'l2']));
    });

    it('adamw and sumSquares', async () => {
      const n = 77;
      check(await both(ref, dut, { p: randn(n, 70), g: randn(n, 71), m: randn(n, 72, 0.1), v: randn(n, 73, 0.1).map(Math.abs), out: 3 }, (b, t) => {
        b.adamw(t.p, t.g, t.m, t.v, n, { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3, gradScale: 0.5 });
        b.sumSquares(t.g, n, t.out, 1);
        b.sumSquares(t.p, n, t.out, 1);
      }, ['p', 'm', 'v', 'out']));
    });
  });
}
