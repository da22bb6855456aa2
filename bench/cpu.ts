// GFLOP/s of the plain-JS CpuBackend vs the WebAssembly SIMD backend on the matmul shapes of training, measured
// in the same run: the small default model (M = 128 rows, dims 64/192) and Qwen2-0.5B (896/4864).
// Forward Linear: C[M, out] = X[M, in] W^T (transB); backward dX = dY W (plain); dW = dY^T X (transA).
// Run: npx tsx bench/cpu.ts
import { CpuBackend } from '../src/backend/cpu.js';
import type { Backend, MatmulOptions } from '../src/backend/types.js';
import { createWasmBackend } from '../src/backend/wasm.js';

export interface BenchRow {
  shape: string;
  jsGflops: number;
  wasmGflops: number;
}

interface Case {
  shape: string;
  M: number;
  N: number;
  K: number;
  opts: MatmulOptions;
}

function cases(): Case[] {
  const out: Case[] = [];
  const linear = (model: string, rows: number, inF: number, outF: number) => {
    out.push({ shape: `${model} fwd   [${rows}x${inF}] -> ${outF} (transB)`, M: rows, N: outF, K: inF, opts: { transB: true } });
    out.push({ shape: `${model} dX    [${rows}x${outF}] -> ${inF} (plain)`, M: rows, N: inF, K: outF, opts: { accumulate: true } });
    out.push({ shape: `${model} dW    [${outF}x${inF}] over ${rows} (transA)`, M: outF, N: inF, K: rows, opts: { transA: true, accumulate: true } });
  };
  for (const [i, o] of [[64, 192], [192, 64], [64, 64]]) linear('small', 128, i, o);
  for (const [i, o] of [[896, 896], [896, 4864], [4864, 896]]) linear('0.5B ', 128, i, o);
  return out;
}

/** Best-of timing: repeats until `budgetMs` is used (at least once), returns GFLOP/s of the fastest run. */
function time(be: Backend, c: Case, budgetMs: number): number {
  const a = be.alloc(c.M * c.K), b = be.alloc(c.N * c.K), out = be.alloc(c.M * c.N);
  const fill = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1);
  be.upload(a, fill(c.M * c.K));
  be.upload(b, fill(c.N * c.K));
  be.matmul(a, b, out, c.M, c.N, c.K, c.opts); // warm-up (JIT tier-up, memory growth)
  let best = Infinity;
  const t0 = performance.now();
  do {
    const s = performance.now();
    be.matmul(a, b, out, c.M, c.N, c.K, c.opts);
    best = Math.min(best, performance.now() - s);
  } while (performance.now() - t0 < budgetMs);
  be.free(a); be.free(b); be.free(out);
  return (2 * c.M * c.N * c.K) / (best * 1e-3) / 1e9;
}

export async function benchCpu(opts: { budgetMs?: number; log?: (line: string) => void } = {}): Promise<BenchRow[]> {
  const budget = opts.budgetMs ?? 300;
  const js = new CpuBackend(), wasm = await createWasmBackend();
  const rows: BenchRow[] = [];
  for (const c of cases()) {
    const row = { shape: c.shape, jsGflops: time(js, c, budget), wasmGflops: time(wasm, c, budget) };
    rows.push(row);
    opts.log?.(`${row.shape.padEnd(44)} js ${row.jsGflops.toFixed(2).padStart(6)}  wasm ${row.wasmGflops.toFixed(2).padStart(6)} GFLOP/s  x${(row.wasmGflops / row.jsGflops).toFixed(1)}`);
  }
  wasm.destroy();
  return rows;
}

const isMain = typeof process !== 'undefined' && process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) {
  console.log(`matmul GFLOP/s, CpuBackend (plain JS) vs WasmBackend (WebAssembly SIMD), best of ~0.3 s per shape`);
  await benchCpu({ log: (l) => console.log(l) });
}
