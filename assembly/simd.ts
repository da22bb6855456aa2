// asc-flags: --runtime stub --enable simd --initialMemory 17
// WebAssembly SIMD kernels for src/backend/wasm.ts (the 'wasm' backend). A kernel-only module: no AssemblyScript
// objects are ever allocated (stub runtime); the JS side owns the heap above heapBase() and passes byte addresses.
// Every export takes raw pointers with element offsets already applied.
export { matmul, MATMUL_SCRATCH } from './_simd_matmul';
export { attention, attentionBackward, attentionScratchBytes } from './_simd_attention';
export {
  add, axpy, scale, copy2d, embedding, embeddingBackward, sumRows, rmsNorm, rmsNormBackward, rope, swiglu, swigluBackward,
  crossEntropy, adamw, sumSquares, zeroFill,
} from './_simd_elementwise';

/** First byte the JS allocator may use (above the module's static data). */
export function heapBase(): usize {
  return __heap_base;
}
