import { CpuBackend } from '../src/backend/cpu.js';
import { createWasmBackend } from '../src/backend/wasm.js';
import type { Backend } from '../src/backend/types.js';
const w = await createWasmBackend(), c = new CpuBackend();
function t(be: Backend, f: () => void, reps = 10) { f(); let best = Infinity; for (let i = 0; i < reps; i++) { const s = performance.now(); f(); best = Math.min(best, performance.now() - s); } return best; }
for (const be of [c, w] as Backend[]) {
  const mk = (n: number, s = 1) => { const x = be.alloc(n); be.upload(x, Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3) * s)); return x; };
  const S = { B: 1, Tq: 128, Hq: 14, Hkv: 2, D: 64, qStart: 0, kvCap: 128 };
  const nq = 128 * 14 * 64, nkv = 128 * 2 * 64;
  const q = mk(nq), k = mk(nkv), v = mk(nkv), o = mk(nq), l = mk(14 * 128), g = mk(nq), dq = mk(nq), dk = mk(nkv), dv = mk(nkv);
  const fa = t(be, () => be.attention(q, k, v, o, l, S));
  const ba = t(be, () => be.attentionBackward(g, q, k, v, o, l, dq, dk, dv, S));
  const V = 151936, R = 32;
  const x = mk(R * V, 3), lab = be.alloc(R, 'i32'); be.upload(lab, Int32Array.from({ length: R }, (_, i) => i * 999)); const loss = be.alloc(R); const wt = mk(R);
  const ce = t(be, () => be.crossEntropy(x, lab, loss, R, V), 10);
  const n = 4864 * 128; const a1 = mk(n), a2 = mk(n), a3 = mk(n), a4 = mk(n), a5 = mk(n);
  const sw = t(be, () => { be.swiglu(a1, a2, a3, n); be.swigluBackward(a3, a1, a2, a4, a5, n); });
  const P = 494e6 / 20; const p1 = mk(P, 0.01), p2 = mk(P, 0.01), p3 = be.alloc(P), p4 = be.alloc(P), ss = be.alloc(1);
  const ad = t(be, () => { be.adamw(p1, p2, p3, p4, P, { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1, gradScale: 1 }); be.sumSquares(p2, P, ss, 0); }, 10);
  const rn = t(be, () => { be.rmsNorm(a1, a2, a3, a4, 128 * 4864 / 896, 896, 1e-6); be.rmsNormBackward(a1, a2, a3, a4, a5, a2, 128 * 4864 / 896, 896); });
  console.log(`${be.name}: attn fwd ${fa.toFixed(1)}ms bwd ${ba.toFixed(1)}ms (Qwen 0.5B T=128) | CE 32x151936 ${ce.toFixed(1)}ms | swiglu f+b 623k ${sw.toFixed(2)}ms | adamw+sumsq 24.7M ${ad.toFixed(1)}ms | rmsnorm f+b ${rn.toFixed(2)}ms`);
}
