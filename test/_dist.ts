// Shared by the tests that need the built package (package, browser): makes sure dist/ exists and is newer than
// src/. `npm test` builds first (the `pretest` script), so in CI this only checks; when one of these test files is
// run on its own after a source change, it rebuilds once, with a lock so two test files never build at the same time.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const DIST = join(ROOT, 'dist');
export const TMP = join(ROOT, 'test', '.tmp');
export const run = promisify(execFile);

function newestUnder(dir: string): number {
  let t = 0;
  for (const f of readdirSync(dir, { recursive: true })) {
    const s = statSync(join(dir, String(f)));
    if (s.isFile() && s.mtimeMs > t) t = s.mtimeMs;
  }
  return t;
}

function distFresh(): boolean {
  const files = ['index.js', 'browser.js', 'cli.js', 'index.d.ts'].map((f) => join(DIST, f));
  if (!files.every(existsSync)) return false;
  const built = Math.min(...files.map((f) => statSync(f).mtimeMs));
  return built >= newestUnder(join(ROOT, 'src'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Builds dist/ (npm run build) unless it is already newer than every file in src/. */
export async function ensureDist(log: (l: string) => void = console.log): Promise<void> {
  if (distFresh()) return;
  mkdirSync(TMP, { recursive: true });
  const lock = join(TMP, 'dist.lock');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // another test file is building: wait for it (a lock older than 10 minutes is a crashed build's)
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true });
      await sleep(1000);
    }
  }
  try {
    if (distFresh()) return;
    log('[dist] dist/ is missing or older than src/: running `npm run build`');
    await run('npm', ['run', 'build'], { cwd: ROOT, maxBuffer: 64 << 20 });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * The modules a browser loads up front from `entry` (a built file): follows static `import`/`export ... from`
 * edges only (dynamic import() is what keeps Node-only code out). Uses esbuild's metafile, with every bare or
 * node: specifier left external, so the answer is what the parser sees, not a regex guess.
 * Returns the files visited and the external specifiers they import statically.
 */
export async function staticGraph(entry: string): Promise<{ files: string[]; externals: string[] }> {
  const { build } = await import('esbuild');
  const res = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'neutral',
    logLevel: 'silent',
    outdir: join(TMP, 'graph'),
    plugins: [
      {
        name: 'bare-external',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (a) => ({ path: a.path, external: true }));
        },
      },
    ],
  });
  const inputs = res.metafile!.inputs;
  const files: string[] = [],
    externals = new Set<string>();
  const start = Object.keys(inputs).find((k) => join(ROOT, k) === entry || k.endsWith(entry.replace(ROOT, '')))!;
  const todo = [start],
    seen = new Set(todo);
  while (todo.length) {
    const f = todo.pop()!;
    files.push(f);
    for (const imp of inputs[f].imports) {
      if (imp.kind !== 'import-statement') continue;
      if (imp.external) externals.add(imp.path);
      else if (!seen.has(imp.path)) seen.add(imp.path), todo.push(imp.path);
    }
  }
  return { files, externals: [...externals] };
}

/** Node built-in module names, with or without the node: prefix (what must never be imported statically in a browser). */
export const NODE_BUILTIN =
  /^(node:|bun:|(fs|fs\/promises|path|url|util|os|child_process|crypto|stream|readline|worker_threads|module|process|buffer|events|http|https|net|tty|zlib)$)/;
