// createBackend: WebGPU where an adapter exists, else gpu.js, else plain JS — and it says which and why.
import { CpuBackend } from './cpu.js';
import type { Backend, BackendName } from './types.js';

export type { Backend, BackendName, Tensor } from './types.js';
export { CpuBackend } from './cpu.js';

export interface CreateBackendOptions {
  /** Force one backend ('webgpu' | 'gpujs' | 'cpu'), or 'auto' (default) for the fallback chain. */
  prefer?: BackendName | 'auto';
  /** Called with one line per attempt (which adapter, why one was skipped). */
  log?: (line: string) => void;
}

export async function createBackend(opts: CreateBackendOptions = {}): Promise<Backend> {
  const prefer = opts.prefer ?? 'auto';
  const log = opts.log ?? (() => {});
  const tried: string[] = [];
  if (prefer === 'webgpu' || prefer === 'auto') {
    try {
      const { createWebGPUBackend } = await import('./webgpu.js');
      const be = await createWebGPUBackend();
      log(`backend: webgpu — ${be.info}`);
      return be;
    } catch (e) {
      const msg = `webgpu unavailable: ${(e as Error).message}`;
      tried.push(msg);
      log(`backend: ${msg}`);
      if (prefer === 'webgpu') throw new Error(msg);
    }
  }
  if (prefer === 'gpujs' || prefer === 'auto') {
    try {
      const { createGpujsBackend } = await import('./gpujs.js');
      const be = await createGpujsBackend();
      log(`backend: gpujs — ${be.info}${tried.length ? ` (fallback: ${tried.join('; ')})` : ''}`);
      return be;
    } catch (e) {
      const msg = `gpu.js unavailable: ${(e as Error).message}`;
      tried.push(msg);
      log(`backend: ${msg}`);
      if (prefer === 'gpujs') throw new Error(msg);
    }
  }
  const be = new CpuBackend();
  log(`backend: cpu — ${be.info}${tried.length ? ` (fallback: ${tried.join('; ')})` : ''}`);
  return be;
}
