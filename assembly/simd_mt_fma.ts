// asc-flags: --runtime stub --enable simd --enable threads --enable relaxed-simd --importMemory --sharedMemory --initialMemory 17 --maximumMemory 65536
// assembly/simd_mt.ts with relaxed SIMD: madd() in the matmul and attention inner loops becomes one fused
// multiply-add (f32x4.relaxed_madd). Loaded only where WebAssembly.validate accepts it (src/backend/wasm.ts); FMA
// rounds once instead of twice, so results differ from the plain build in the last bits (the same for any thread count).
export * from './simd';
