// GFLOP/s of the gpu.js backend (its auto-selected mode: WebAssembly SIMD in Node without `gl`, WebGL2 in a
// browser) against the plain-JS CpuBackend, measured in the same run, on the matmul shapes of one Qwen2-0.5B
// attention projection (hidden 896) at 64 rows: forward C = X W^T (transB), backward dX = dY W (plain) and
// dW = dY^T X (transA). Best-of timing; includes gpu.js's per-call argument copy and result readback, which
// is what a training step pays.
// Run: npx tsx bench/gpujs.ts
import { CpuBackend } from '../src/backend/cpu.js';
import { createGpujsBackend } from '../src/backend/gpujs.js';
import { type MatmulCase, timeMatmul } from './cpu.js';

export interface GpujsBenchRow {
  shape: string;
  jsGflops: number;
  gpujsGflops: number;
  /** gpujs / js */
  ratio: number;
}

const CASES: MatmulCase[] = [
  { shape: 'fwd [64x896] x W^T[896x896] (transB)', M: 64, N: 896, K: 896, opts: { transB: true } },
  { shape: 'dX  [64x896] x W[896x896] (plain)', M: 64, N: 896, K: 896, opts: { accumulate: true } },
  { shape: 'dW  dY^T[896x64] x X[64x896] (transA)', M: 896, N: 896, K: 64, opts: { transA: true, accumulate: true } },
];

export async function benchGpujs(opts: { budgetMs?: number; log?: (line: string) => void } = {}): Promise<GpujsBenchRow[]> {
  const budget = opts.budgetMs ?? 1000;
  const js = new CpuBackend(),
    gj = await createGpujsBackend();
  opts.log?.(`gpujs: ${gj.info}`);
  const rows: GpujsBenchRow[] = [];
  try {
    for (const c of CASES) {
      const jsG = timeMatmul(js, c, budget),
        gjG = timeMatmul(gj, c, budget);
      const row = {
        shape: `${c.shape} [${(gj as { mode?: string }).mode ?? 'gpujs'}]`,
        jsGflops: +jsG.toFixed(3),
        gpujsGflops: +gjG.toFixed(3),
        ratio: +(gjG / jsG).toFixed(2),
      };
      rows.push(row);
      opts.log?.(`${row.shape.padEnd(52)} js ${jsG.toFixed(2).padStart(6)}  gpujs ${gjG.toFixed(2).padStart(6)} GFLOP/s  x${row.ratio}`);
    }
  } finally {
    gj.destroy();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.table(await benchGpujs({ log: console.log }));
}
