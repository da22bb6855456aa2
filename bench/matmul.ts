// Matmul GFLOP/s on the WebGPU backend (naive one-output-per-invocation vs register-blocked 4x4, what the 'simple'
// family runs, vs the workgroup-memory tiled kernel of the 'tiled' family, for hardware GPUs) against the
// plain-JS CpuBackend measured in the same run, at Qwen2-0.5B shapes (M tokens x [in -> out], weights stored
// [out, in] as in HF, i.e. transB). `npx tsx bench/matmul.ts [quick]`, or via `npm run bench matmul`.
import { CpuBackend } from '../src/backend/cpu.js';
import type { Backend } from '../src/backend/types.js';
import { createWebGPUBackend } from '../src/backend/webgpu.js';

interface Row {
  shape: string;
  'js GFLOP/s': string;
  'naive GFLOP/s': string;
  'blocked GFLOP/s': string;
  'tiled GFLOP/s': string;
  'blocked / js': string;
}

function rand(n: number): Float32Array {
  const a = new Float32Array(n);
  let s = 1234567;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

/** Seconds per matmul: one warm-up (pipeline compile), then repeats until ~minSeconds have passed. */
async function time(be: Backend, M: number, N: number, K: number, minSeconds: number): Promise<number> {
  const a = be.alloc(M * K),
    b = be.alloc(N * K),
    c = be.alloc(M * N);
  be.upload(a, rand(M * K));
  be.upload(b, rand(N * K));
  be.matmul({ a, b, c, M, N, K, transB: true });
  await be.read(c, 0, 1);
  let n = 0;
  const t0 = performance.now();
  do {
    be.matmul({ a, b, c, M, N, K, transB: true });
    await be.read(c, 0, 1);
    n++;
  } while (performance.now() - t0 < minSeconds * 1000);
  const dt = (performance.now() - t0) / 1000 / n;
  for (const t of [a, b, c]) be.free(t);
  return dt;
}

export async function benchMatmul(quick = false): Promise<Row[]> {
  const gpu = await createWebGPUBackend();
  console.log(`webgpu adapter: ${gpu.info}`);
  const cpu = new CpuBackend();
  // [M, in(K), out(N), label]
  const shapes: [number, number, number, string][] = quick
    ? [
        [64, 896, 896, 'q/o proj'],
        [64, 896, 128, 'k/v proj'],
      ]
    : [
        [64, 896, 896, 'q/o proj'],
        [256, 896, 896, 'q/o proj'],
        [64, 896, 128, 'k/v proj'],
        [256, 896, 128, 'k/v proj'],
        [64, 896, 4864, 'gate/up'],
        [64, 4864, 896, 'down'],
        [256, 896, 4864, 'gate/up'],
        [64, 896, 16384, 'lm_head chunk (16384 of 151936 rows)'],
      ];
  const rows: Row[] = [];
  const g = (flop: number, s: number) => (flop / s / 1e9).toFixed(2);
  for (const [M, K, N, label] of shapes) {
    const flop = 2 * M * N * K;
    const budget = quick ? 0.3 : 1;
    const js = await time(cpu, M, N, K, budget);
    gpu.matmulKernel = 'naive';
    const naive = await time(gpu, M, N, K, budget);
    gpu.matmulKernel = 'blocked';
    const blocked = await time(gpu, M, N, K, budget);
    gpu.matmulKernel = 'tiled';
    const tiled = await time(gpu, M, N, K, budget);
    rows.push({
      shape: `M=${M} ${K}->${N} (${label})`,
      'js GFLOP/s': g(flop, js),
      'naive GFLOP/s': g(flop, naive),
      'blocked GFLOP/s': g(flop, blocked),
      'tiled GFLOP/s': g(flop, tiled),
      'blocked / js': (js / blocked).toFixed(1) + 'x',
    });
  }
  gpu.destroy();
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('bench/matmul.ts')) {
  console.table(await benchMatmul(process.argv.includes('quick')));
}
