// Node / Bun only: loads the npm `webgpu` package (Dawn's N-API binding). Reached exclusively through a dynamic
// import from src/backend/webgpu-device.ts, so browser and Deno bundles never touch it.

export interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

let cached: Promise<DawnModule> | undefined;

/** Imports `webgpu` once and installs its globals (GPUBufferUsage, GPUMapMode, ...) where they are missing. */
export function loadDawn(): Promise<DawnModule> {
  cached ??= (async () => {
    // A variable specifier keeps bundlers from trying to resolve the native addon.
    const spec = 'webgpu';
    const mod = (await import(/* @vite-ignore */ spec)) as DawnModule;
    for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    return mod;
  })();
  return cached;
}

/** Dawn's GLES backend needs a display-less EGL platform on headless machines; set before the first create(). */
export function prepareGles(): void {
  if (typeof process !== 'undefined' && process.env && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
}
