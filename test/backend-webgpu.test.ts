// WebGPU backend: the op-by-op conformance suite against the CPU reference, once as is and once with tensors
// split at 4 KiB so every chunk-aware code path runs, plus error reporting. On this CI the adapter is Mesa
// (llvmpipe through Dawn's GLES backend, or lavapipe through Vulkan); where no adapter exists the file skips.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError } from '../src/backend/types.js';
import { createWebGPUBackend, type WebGPUBackend } from '../src/backend/webgpu.js';
import { backendConformance, randn } from './_conformance.js';

let unavailable = '';
try {
  const be = await createWebGPUBackend();
  be.destroy();
} catch (e) {
  unavailable = (e as Error).message;
  console.log(`backend-webgpu: skipped, no WebGPU adapter: ${unavailable}`);
}

describe.skipIf(!!unavailable)('webgpu', () => {
  backendConformance('webgpu', () => createWebGPUBackend());
  backendConformance('webgpu (tensors split at 4 KiB)', () => createWebGPUBackend({ maxBindingBytes: 4096 }));
});
