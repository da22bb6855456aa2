// asc-flags: --runtime stub --enable simd --enable threads --importMemory --sharedMemory --initialMemory 17 --maximumMemory 65536
// The kernels of assembly/simd.ts built for threads: the memory is imported and shared, so the worker threads of
// src/backend/wasm-threads.ts instantiate this same module over the one WebAssembly.Memory of the backend.
export * from './simd';
