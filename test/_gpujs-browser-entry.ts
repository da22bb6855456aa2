// Bundled by test/backend-gpujs.test.ts (with 'vitest' aliased to ./_gpujs-browser-shim.ts) and run in headless
// Chromium, where gpu.js picks WebGL2: the conformance suite at the default slice size and at 1200 elements.
import { runAll } from './_gpujs-browser-shim.js';
import { backendConformance } from './_conformance.js';
import { createGpujsBackend } from '../src/backend/gpujs.js';

const infos: string[] = [];
const make = (maxSpan?: number) => async () => {
  const be = await createGpujsBackend(maxSpan ? { maxSpan } : {});
  infos.push(be.info);
  return be;
};
backendConformance('gpujs (browser, auto mode)', make());
backendConformance('gpujs (browser, 1200-element slices)', make(1200));

(globalThis as unknown as { __gpujsConformance: () => Promise<{ infos: string[]; results: string[] }> }).__gpujsConformance = async () => ({
  results: await runAll(),
  infos,
});
