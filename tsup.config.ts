import { defineConfig } from 'tsup';

// One ESM build for every runtime. WASM and WGSL are embedded as strings by scripts/build-wasm.mjs and
// `?raw`-free imports, so the bundle needs no file-system paths. Node-only code (file loading, the Dawn
// binding) lives behind dynamic imports in src/node/*, which the browser entry never reaches.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    browser: 'src/browser.ts',
    cli: 'src/cli.ts',
  },
  format: ['esm'],
  dts: { entry: { index: 'src/index.ts', browser: 'src/browser.ts' } },
  target: 'es2022',
  platform: 'neutral',
  splitting: true,
  sourcemap: false,
  clean: true,
  external: ['webgpu', 'gpu.js', /^node:/, /^bun:/],
  // Keep `node:fs/promises` as written: tsup strips the prefix by default, and a bare `fs/promises` is what a
  // browser bundler then tries (and fails) to resolve, and what Deno accepts only inside npm packages.
  removeNodeProtocol: false,
  loader: { '.wgsl': 'text' },
});
