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

/**
 * Dawn's GLES backend needs a display-less EGL platform on headless machines (EGL_PLATFORM=surfaceless), read
 * by Mesa with getenv() when the first GLES adapter is requested. Node's process.env writes through to the C
 * environment; Bun's does not, so there libc setenv() is called through bun:ffi.
 */
export async function prepareGles(): Promise<void> {
  if (typeof process === 'undefined' || !process.env || process.env.EGL_PLATFORM) return;
  process.env.EGL_PLATFORM = 'surfaceless';
  if (typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined') {
    try {
      const spec = 'bun:ffi';
      const ffi = (await import(/* @vite-ignore */ spec)) as {
        dlopen(
          lib: string,
          syms: Record<string, { args: string[]; returns: string }>,
        ): { symbols: { setenv(k: Uint8Array, v: Uint8Array, o: number): number } };
      };
      const libc = ffi.dlopen('libc.so.6', { setenv: { args: ['ptr', 'ptr', 'i32'], returns: 'i32' } });
      const z = (s: string) => new TextEncoder().encode(`${s}\0`);
      libc.symbols.setenv(z('EGL_PLATFORM'), z('surfaceless'), 0);
    } catch {
      /* not glibc Linux: leave it to the caller's environment */
    }
  }
}
