// The backends every model-level test runs on. WebGPU, gpu.js and WASM are included when they can be created
// here (each file is skipped with a printed reason otherwise); LATENTLM_TEST_BACKENDS=cpu,wasm restricts the list.
// WASM runs twice: two threads with every op through the pool, and one thread.
import { CpuBackend } from '../src/backend/cpu.js';
import type { Backend } from '../src/backend/types.js';
import { demand } from './_require.js';

export interface TestBackend {
  name: string;
  make: () => Promise<Backend>;
}

export function testBackends(): TestBackend[] {
  const all: TestBackend[] = [
    { name: 'cpu', make: async () => new CpuBackend() },
    // Two threads with every op through the pool: the parity tests' shapes are below the default threshold.
    { name: 'wasm', make: async () => (await import('../src/backend/wasm.js')).createWasmBackend({ threads: 2, parallelThreshold: 0 }) },
    // and one thread (no pool at all): the parity results must hold for both
    { name: 'wasm 1-thread', make: async () => (await import('../src/backend/wasm.js')).createWasmBackend({ threads: 1 }) },
    { name: 'webgpu', make: async () => (await import('../src/backend/webgpu.js')).createWebGPUBackend() },
    { name: 'gpujs', make: async () => (await import('../src/backend/gpujs.js')).createGpujsBackend() },
  ];
  const only = process.env.LATENTLM_TEST_BACKENDS?.split(',').map((s) => s.trim());
  // 'wasm' selects both WASM entries (a name's first word)
  return all.filter((b) => !only || only.includes(b.name.split(' ')[0]));
}

/**
 * Why no WebGPU adapter can be created here ('' when one can), printed as `${skipped}: no WebGPU adapter: why` so a
 * skipped file says so; with LATENTLM_REQUIRE=webgpu (CI) its absence fails the file instead (./_require.ts).
 */
export async function webgpuUnavailable(skipped: string): Promise<string> {
  let why = '';
  try {
    (await (await import('../src/backend/webgpu.js')).createWebGPUBackend()).destroy();
  } catch (e) {
    why = (e as Error).message;
    console.log(`${skipped}: no WebGPU adapter: ${why}`);
  }
  demand('webgpu', !why, `no WebGPU adapter: ${why}`);
  return why;
}
