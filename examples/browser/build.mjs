// Builds the browser demo into build/demo/: main.js (the page) and worker.js (the training loop) bundled with
// esbuild against the BUILT package (`latentlm` -> dist/browser.js, so run `npm run build` first), with gpu.js's
// browser build, plus index.html and style.css. The result is static files that work offline.
//   node examples/browser/build.mjs [OUT_DIR]
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');

export async function buildDemo(outDir = join(root, 'build', 'demo')) {
  const dist = join(root, 'dist', 'browser.js');
  if (!existsSync(dist)) throw new Error(`${dist} is missing: run \`npm run build\` first`);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const common = {
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    // Node-only code in the package sits behind dynamic imports that a browser never takes (file paths, Dawn).
    external: ['node:*', 'bun:*'],
    plugins: [
      {
        name: 'latentlm-dist',
        setup(b) {
          b.onResolve({ filter: /^latentlm$/ }, () => ({ path: dist }));
        },
      },
    ],
    metafile: true,
    logLevel: 'warning',
  };
  // Two builds: the page needs only the plotting code (tree-shaken into one small main.js); the worker gets the
  // whole library, split so the gpu.js / WebGPU / WASM backends load only when chosen.
  const page = await build({ ...common, entryPoints: { main: join(here, 'main.ts') } });
  const work = await build({ ...common, entryPoints: { worker: join(here, 'worker.ts') }, splitting: true });
  const outputs = { ...page.metafile.outputs, ...work.metafile.outputs };
  for (const f of ['index.html', 'style.css']) copyFileSync(join(here, f), join(outDir, f));
  const bytes = Object.values(outputs).reduce((a, o) => a + o.bytes, 0);
  return { outDir, files: Object.keys(outputs).length + 2, bytes };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await buildDemo(process.argv[2]);
  console.log(`demo built: ${r.outDir} (${r.files} files, ${(r.bytes / 1e6).toFixed(1)} MB)`);
}
