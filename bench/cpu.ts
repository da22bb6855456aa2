// GFLOP/s of the plain-JS CpuBackend vs the WebAssembly SIMD backend on the matmul shapes of training, measured
// in the same run: the small default model (M = 128 rows, dims 64/192) and Qwen2-0.5B (896/4864).
// Forward Linear: C[M, out] = X[M, in] W^T (transB); backward dX = dY W (plain); dW = dY^T X (transA).
// Run: npx tsx bench/cpu.ts
import { CpuBackend } from '../src/backend/cpu.js';
import type { MatmulOptions } from '../src/backend/ops.js';
import type { Backend } from '../src/backend/types.js';
import { createWasmBackend } from '../src/backend/wasm.js';

export interface BenchRow {
  shape: string;
  jsGflops: number;
  wasmGflops: number;
}

export interface MatmulCase {
  shape: string;
  M: number;
  N: number;
  K: number;
  opts: MatmulOptions;
}

function cases(): MatmulCase[] {
  const out: MatmulCase[] = [];
  const linear = (model: string, rows: number, inF: number, outF: number) => {
    out.push({ shape: `${model} fwd   [${rows}x${inF}] -> ${outF} (transB)`, M: rows, N: outF, K: inF, opts: { transB: true } });
    out.push({ shape: `${model} dX    [${rows}x${outF}] -> ${inF} (plain)`, M: rows, N: inF, K: outF, opts: { accumulate: true } });
    out.push({
      shape: `${model} dW    [${outF}x${inF}] over ${rows} (transA)`,
      M: outF,
      N: inF,
      K: rows,
      opts: { transA: true, accumulate: true },
    });
  };
  for (const [i, o] of [
    [64, 192],
    [192, 64],
    [64, 64],
  ])
    linear('small', 128, i, o);
  for (const [i, o] of [
    [896, 896],
    [896, 4864],
    [4864, 896],
  ])
    linear('0.5B ', 128, i, o);
  return out;
}

/**
 * Milliseconds of each call of one synchronous matmul, after `warmup` calls (JIT tier-up, memory growth, gpu.js
 * kernel compile for this shape), for as long as more(calls so far, ms elapsed) says (at least one call).
 */
export function matmulCallTimes(be: Backend, c: MatmulCase, more: (calls: number, ms: number) => boolean, warmup = 1): number[] {
  const a = be.alloc(c.M * c.K),
    b = be.alloc(c.N * c.K),
    out = be.alloc(c.M * c.N);
  const fill = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1);
  be.upload(a, fill(c.M * c.K));
  be.upload(b, fill(c.N * c.K));
  const call = () => be.matmul({ a, b, c: out, M: c.M, N: c.N, K: c.K, ...c.opts });
  for (let i = 0; i < warmup; i++) call();
  const ms: number[] = [];
  const t0 = performance.now();
  do {
    const s = performance.now();
    call();
    ms.push(performance.now() - s);
  } while (more(ms.length, performance.now() - t0));
  be.free(a);
  be.free(b);
  be.free(out);
  return ms;
}

/** GFLOP/s of one call of `c` that took `ms` milliseconds. */
export const matmulGflops = (c: MatmulCase, ms: number) => (2 * c.M * c.N * c.K) / (ms * 1e-3) / 1e9;

/**
 * Best-of timing of one synchronous matmul: repeats until `budgetMs` is used (at least once), returns GFLOP/s of the
 * fastest run. Shared by the wasm and gpu.js benches (both run matmul synchronously; WebGPU has its own async timer).
 */
export function timeMatmul(be: Backend, c: MatmulCase, budgetMs: number): number {
  return matmulGflops(c, Math.min(...matmulCallTimes(be, c, (_n, ms) => ms < budgetMs)));
}

export async function benchCpu(opts: { budgetMs?: number; log?: (line: string) => void } = {}): Promise<BenchRow[]> {
  const budget = opts.budgetMs ?? 300;
  const js = new CpuBackend(),
    wasm = await createWasmBackend();
  const rows: BenchRow[] = [];
  for (const c of cases()) {
    const row = { shape: c.shape, jsGflops: timeMatmul(js, c, budget), wasmGflops: timeMatmul(wasm, c, budget) };
    rows.push(row);
    opts.log?.(
      `${row.shape.padEnd(44)} js ${row.jsGflops.toFixed(2).padStart(6)}  wasm ${row.wasmGflops.toFixed(2).padStart(6)} GFLOP/s  x${(row.wasmGflops / row.jsGflops).toFixed(1)}`,
    );
  }
  wasm.destroy();
  return rows;
}

export interface OpRow {
  op: string;
  jsMs: number;
  wasmMs: number;
}

/** Milliseconds (best of a few runs) for the non-matmul ops that matter per training step. */
export async function benchCpuOps(opts: { log?: (line: string) => void } = {}): Promise<OpRow[]> {
  const js = new CpuBackend(),
    wasm = await createWasmBackend();
  const best = (f: () => void, reps: number) => {
    f();
    let b = Infinity;
    for (let i = 0; i < reps; i++) {
      const s = performance.now();
      f();
      b = Math.min(b, performance.now() - s);
    }
    return b;
  };
  const ops: { op: string; reps: number; run: (be: Backend) => () => void }[] = [];
  for (const s of [
    { B: 4, Tq: 128, Hq: 4, Hkv: 2, D: 16, qStart: 0, kvCap: 128 },
    { B: 1, Tq: 128, Hq: 14, Hkv: 2, D: 64, qStart: 0, kvCap: 128 },
  ]) {
    const nq = s.B * s.Tq * s.Hq * s.D,
      nkv = s.B * s.kvCap * s.Hkv * s.D;
    ops.push({
      op: `attention fwd+bwd B=${s.B} T=${s.Tq} H=${s.Hq}/${s.Hkv} D=${s.D}`,
      reps: 3,
      run: (be) => {
        const [q, k, v, o, g, dq, dk, dv] = [nq, nkv, nkv, nq, nq, nq, nkv, nkv].map((n, i) => filled(be, n, i));
        const lse = be.alloc(s.B * s.Hq * s.Tq);
        return () => {
          be.attention({ q, kCache: k, vCache: v, out: o, lse, ...s });
          be.attentionBackward({ dOut: g, q, kCache: k, vCache: v, out: o, lse, dq, dkCache: dk, dvCache: dv, ...s });
        };
      },
    });
  }
  ops.push({
    op: 'crossEntropy + gradient 32 x 151936',
    reps: 3,
    run: (be) => {
      const x = filled(be, 32 * 151936, 1),
        labels = be.alloc(32, 'i32'),
        losses = be.alloc(32),
        w = filled(be, 32, 2);
      be.upload(
        labels,
        Int32Array.from({ length: 32 }, (_, i) => i * 4099),
      );
      return () => be.crossEntropy({ logits: x, labels, losses, rows: 32, V: 151936, weights: w });
    },
  });
  ops.push({
    op: 'swiglu fwd+bwd 128 x 4864',
    reps: 5,
    run: (be) => {
      const n = 128 * 4864,
        [a, b, c, d, e] = [0, 1, 2, 3, 4].map((i) => filled(be, n, i));
      return () => {
        be.swiglu({ gate: a, up: b, out: c, n });
        be.swigluBackward({ dOut: c, gate: a, up: b, dGate: d, dUp: e, n });
      };
    },
  });
  ops.push({
    op: 'adamw + sumSquares 4.9M params',
    reps: 3,
    run: (be) => {
      const n = 4_900_000,
        [p, g, m] = [0, 1, 2].map((i) => filled(be, n, i)),
        v = be.alloc(n),
        out = be.alloc(1);
      return () => {
        be.adamw({ param: p, grad: g, m, v, n, lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3, gradScale: 1 });
        be.sumSquares({ x: g, n, out, outIndex: 0 });
      };
    },
  });
  const rows: OpRow[] = [];
  for (const o of ops) {
    const row = { op: o.op, jsMs: best(o.run(js), o.reps), wasmMs: best(o.run(wasm), o.reps * 4) };
    rows.push(row);
    opts.log?.(
      `${row.op.padEnd(44)} js ${row.jsMs.toFixed(2).padStart(8)} ms  wasm ${row.wasmMs.toFixed(2).padStart(7)} ms  x${(row.jsMs / row.wasmMs).toFixed(1)}`,
    );
  }
  wasm.destroy();
  return rows;
}

function filled(be: Backend, n: number, seed: number) {
  const t = be.alloc(n);
  be.upload(
    t,
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3 + seed) * 0.5),
  );
  return t;
}

const isMain =
  typeof process !== 'undefined' && process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) {
  console.log(`matmul GFLOP/s, CpuBackend (plain JS) vs WasmBackend (WebAssembly SIMD), best of ~0.3 s per shape`);
  await benchCpu({ log: (l) => console.log(l) });
  console.log(`\nother ops, best time`);
  await benchCpuOps({ log: (l) => console.log(l) });
}
