// The dependency layers of src/ and their check: a module may import from its own layer or the ones below, never
// from a layer above. Every import of every module (static, re-export, dynamic import(), `import type` and inline
// `import('...').T` types alike: a type import still ties the lower module to the upper one's shape) is resolved
// and checked against LAYERS. A new file outside the table is reported until it is given a layer.
// Run by test/layers.test.ts (so by `npm test` and .ci/run); by hand: npx tsx scripts/layers.ts [SRC_DIR]
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/**
 * Lowest first. A path matches an entry when it equals it or lies under it (entries ending in '/'); the most
 * specific entry wins. Text, data and I/O at the bottom; the two training phases above the shared training
 * utilities (RL starts from phase-1 checkpoints, heads and layouts, never the reverse); commands and the public
 * entry points at the top.
 */
export const LAYERS: { name: string; paths: string[] }[] = [
  // io: sources (paths, URLs), JSONL, safetensors, progress, plots, embedded WASM, the Hub client
  { name: 'io', paths: ['generated/', 'node/', 'hub/', 'io/'] },
  // text: the tokenizer, vocabulary maps, NFC, chat templates
  { name: 'text', paths: ['text/'] },
  // data: GSM8K, the synthetic task, annotation expansion, grading, seeded random streams
  { name: 'data', paths: ['data/'] },
  { name: 'backend', paths: ['backend/'] },
  // model/hf.ts reads and writes the Qwen2 checkpoint format for model/qwen2.ts (and checks it with model/validate.ts)
  { name: 'model', paths: ['model/'] },
  { name: 'generation', paths: ['generation/'] },
  { name: 'training utilities', paths: ['train/'] },
  { name: 'phase 1 (latent)', paths: ['latent/'] },
  { name: 'phase 2 (rl)', paths: ['rl/'] },
  { name: 'sweep', paths: ['sweep/'] },
  // loaders (model, data, backend) and condition resolution that both the commands and the public API use
  { name: 'setup', paths: ['setup/'] },
  { name: 'cli', paths: ['cli/'] },
  { name: 'entry points', paths: ['api.ts', 'index.ts', 'browser.ts', 'cli.ts'] },
];

/** The layer index of a path relative to src/ (most specific entry wins), or -1 when no entry covers it. */
export function layerOf(path: string, layers = LAYERS): number {
  let best = -1,
    bestLen = -1;
  layers.forEach((l, i) => {
    for (const p of l.paths) {
      const hit = p.endsWith('/') ? path.startsWith(p) : path === p;
      if (hit && p.length > bestLen) (best = i), (bestLen = p.length);
    }
  });
  return best;
}

/** Relative module specifiers of a TypeScript source: static imports/exports, import(), `import type`. */
export function importsOf(source: string): string[] {
  const out: string[] = [];
  // drop comments so an example in a comment is not an import (strings with // inside are not at issue here)
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g)) out.push(m[2]);
  return out;
}

/** "from imports to (layer a < layer b)" for every import that goes upward, and every file without a layer. */
export function violations(files: Map<string, string>, layers = LAYERS): string[] {
  const bad: string[] = [];
  for (const [file, source] of files) {
    const from = layerOf(file, layers);
    if (from < 0) {
      bad.push(`${file}: in no layer (add it to LAYERS in test/layers.test.ts)`);
      continue;
    }
    for (const spec of importsOf(source)) {
      const target = normalize(join(dirname(file), spec))
        .replace(/\\/g, '/')
        .replace(/\.(js|ts)$/, '.ts');
      if (target.startsWith('..')) continue; // outside src/ (none today); not a layer question
      const to = layerOf(target, layers);
      if (to > from) bad.push(`${file} imports ${target}: layer '${layers[from].name}' must not depend on '${layers[to].name}' above it`);
    }
  }
  return bad;
}

/** Every .ts file under `dir`, keyed by its path relative to `root` (forward slashes). */
export function sources(dir: string, root = dir, out = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, root, out);
    else if (e.name.endsWith('.ts')) out.set(relative(root, p).replace(/\\/g, '/'), readFileSync(p, 'utf8'));
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bad = violations(sources(process.argv[2] ?? join(import.meta.dirname, '../src')));
  for (const b of bad) console.error(b);
  console.error(bad.length ? `${bad.length} layer violation(s)` : 'layers: no module imports from a layer above its own');
  process.exit(bad.length ? 1 : 0);
}
