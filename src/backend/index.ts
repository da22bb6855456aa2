// createBackend: WebGPU where an adapter exists, else gpu.js, else plain JS — and it says which and why.
import { CpuBackend } from './cpu.js';
import type { Backend, BackendName } from './types.js';
import { SOFTWARE_ADAPTER } from './webgpu-device.js';

export type { Backend, BackendName, Tensor } from './types.js';
export { CpuBackend } from './cpu.js';

export interface CreateBackendOptions {
  /**
   * Force one backend, or choose: 'auto' (default) is WebGPU where any adapter exists, then gpu.js, then plain JS;
   * 'fastest' is WebGPU on a hardware adapter, else WebAssembly SIMD (a software WebGPU adapter such as llvmpipe or
   * SwiftShader runs at about JS-loop speed, several times slower than the SIMD kernels; see `npm run bench`).
   */
  prefer?: BackendName | 'auto' | 'fastest';
  /** Called with one line per attempt (which adapter, why one was skipped). */
  log?: (line: string) => void;
  /** Threads of the WebAssembly SIMD backend (default: the cores available); results do not depend on it. */
  threads?: number;
}

export async function createBackend(opts: CreateBackendOptions = {}): Promise<Backend> {
  const prefer = opts.prefer ?? 'auto';
  const log = opts.log ?? (() => {});
  const tried: string[] = [];
  if (prefer === 'fastest') return createFastest(log, opts.threads);
  if (prefer === 'wasm') {
    const { createWasmBackend } = await import('./wasm.js');
    const be = await createWasmBackend({ threads: opts.threads });
    log(`backend: wasm — ${be.info}`);
    return be;
  }
  if (prefer === 'cpu') {
    const be = new CpuBackend();
    log(`backend: cpu — ${be.info}`);
    return be;
  }
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

/** Adapter descriptions of software WebGPU implementations (one list, shared with the kernel-family choice). */
export { SOFTWARE_ADAPTER };

async function createFastest(log: (l: string) => void, threads?: number): Promise<Backend> {
  let why = 'no WebGPU adapter';
  try {
    const { createWebGPUBackend } = await import('./webgpu.js');
    const be = await createWebGPUBackend();
    if (!SOFTWARE_ADAPTER.test(be.info)) {
      log(`backend: webgpu — ${be.info}`);
      return be;
    }
    why = `WebGPU adapter is a software one (${be.info.split(':')[0]})`;
    be.destroy();
  } catch (e) {
    why = `WebGPU unavailable: ${(e as Error).message.split('\n')[0]}`;
  }
  try {
    const { createWasmBackend } = await import('./wasm.js');
    const be = await createWasmBackend({ threads });
    log(`backend: wasm — ${be.info} (${why})`);
    return be;
  } catch (e) {
    log(`backend: wasm unavailable: ${(e as Error).message}`);
    return createBackend({ prefer: 'auto', log });
  }
}
