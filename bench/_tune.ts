import { createWasmBackend } from '../src/backend/wasm.js';
const be = await createWasmBackend();
const cs = [[128, 4864, 896, { transB: true }], [128, 4864, 896, {}], [128, 896, 896, { transB: true }], [896, 4864, 128, { transA: true }], [128, 896, 4864, { transB: true }]] as const;
const out: string[] = [];
for (const [M, N, K, o] of cs) {
  const a = be.alloc(M * K), b = be.alloc(N * K), c = be.alloc(M * N);
  be.upload(a, Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)));
  be.upload(b, Float32Array.from({ length: N * K }, (_, i) => Math.cos(i)));
  be.matmul(a, b, c, M, N, K, o);
  let best = Infinity;
  for (let r = 0; r < 15; r++) { const s = performance.now(); be.matmul(a, b, c, M, N, K, o); best = Math.min(best, performance.now() - s); }
  out.push(`${M}x${N}x${K}${JSON.stringify(o)}: ${(2 * M * N * K / best / 1e6).toFixed(1)}`);
  be.free(a); be.free(b); be.free(c);
}
console.log(out.join(' | '));
