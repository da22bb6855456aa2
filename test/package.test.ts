// The published artifact, as a user gets it: `npm pack` -> install the tarball into an empty project (from the
// npm cache: the dependencies gpu.js, webgpu and cli-progress are there after `npm ci`) -> import it from Node,
// Bun and Deno and run the public-API smoke script (test/_runtime-smoke.ts, its import pointed at 'latentlm'),
// run the `latentlm` bin, type-check a consumer against the shipped .d.ts. Also: the browser entry's static
// module graph contains no Node built-in.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, NODE_BUILTIN, ROOT, ensureDist, run, staticGraph } from './_dist.js';

const BIN = join(ROOT, 'node_modules', '.bin');
const bun = join(BIN, 'bun'),
  deno = join(BIN, 'deno');
let dir = '';
let proj = '';
let packed: { filename: string; files: { path: string }[] };

const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

beforeAll(async () => {
  await ensureDist();
  dir = mkdtempSync(join(tmpdir(), 'latentlm-pack-'));
  let t0 = performance.now();
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 64 << 20 });
  packed = JSON.parse(stdout)[0];
  console.log(`[package] npm pack: ${packed.filename}, ${packed.files.length} files (${secs(t0)})`);
  proj = join(dir, 'consumer');
  await run('mkdir', ['-p', proj]);
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  t0 = performance.now();
  // --prefer-offline: the dependencies come from the npm cache that `npm ci` filled; the network only if missing
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, packed.filename)], {
    cwd: proj,
    maxBuffer: 64 << 20,
  });
  console.log(`[package] npm install of the tarball into an empty project: ${secs(t0)}`);
  // the smoke script, transpiled to plain JS, importing the installed package instead of ../src
  const { transform } = await import('esbuild');
  const src = readFileSync(join(ROOT, 'test', '_runtime-smoke.ts'), 'utf8');
  const pointed = src.replace("from '../src/index.ts'", "from 'latentlm'");
  expect(pointed, 'the smoke script imports ../src/index.ts').not.toBe(src);
  writeFileSync(join(proj, 'smoke.mjs'), (await transform(pointed, { loader: 'ts', format: 'esm', target: 'es2022' })).code);
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function parseSmoke(stdout: string) {
  const line = stdout.split('\n').find((l) => l.startsWith('SMOKE '));
  expect(line, `no SMOKE line in:\n${stdout}`).toBeDefined();
  return JSON.parse(line!.slice(6)) as { runtime: string; ok: boolean; checks: string[]; loss: number; autoBackend: string };
}

describe('npm pack', () => {
  it('ships the built entries, typings and the README, and no sources, tests or models', () => {
    const files = packed.files.map((f) => f.path);
    for (const f of [
      'package.json',
      'README.md',
      'dist/index.js',
      'dist/browser.js',
      'dist/cli.js',
      'dist/index.d.ts',
      'dist/browser.d.ts',
    ])
      expect(files).toContain(f);
    expect(files.filter((f) => !/^(dist\/|package\.json$|README\.md$|CHANGELOG\.md$|LICEN[CS]E)/.test(f))).toEqual([]);
  });

  it('has a bin whose file starts with a node shebang', () => {
    const pkg = JSON.parse(readFileSync(join(proj, 'node_modules', 'latentlm', 'package.json'), 'utf8'));
    expect(pkg.bin.latentlm).toBe('./dist/cli.js');
    expect(readFileSync(join(proj, 'node_modules', 'latentlm', 'dist', 'cli.js'), 'utf8').split('\n', 1)[0]).toBe('#!/usr/bin/env node');
  });
});

describe('changesets', () => {
  it('`changeset version` turns the pending changesets into a CHANGELOG and a version bump (in a temp copy)', async () => {
    const cs = join(dir, 'changeset-copy');
    mkdirSync(join(cs, '.changeset'), { recursive: true });
    copyFileSync(join(ROOT, 'package.json'), join(cs, 'package.json'));
    const pending = readdirSync(join(ROOT, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md');
    expect(pending.length).toBeGreaterThan(0);
    for (const f of [...pending, 'config.json']) copyFileSync(join(ROOT, '.changeset', f), join(cs, '.changeset', f));
    await run(join(BIN, 'changeset'), ['version'], { cwd: cs });
    const log = readFileSync(join(cs, 'CHANGELOG.md'), 'utf8');
    const version = JSON.parse(readFileSync(join(cs, 'package.json'), 'utf8')).version;
    console.log(`[package] changeset version: ${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version} -> ${version}`);
    expect(log).toMatch(new RegExp(`^# latentlm\\n\\n## ${version.replace(/\./g, '\\.')}\\n`));
    expect(log).toContain('Initial release');
    // the changesets were consumed
    expect(readdirSync(join(cs, '.changeset')).filter((f) => f.endsWith('.md'))).toEqual([]);
  });
});

describe('the browser entry', () => {
  it('imports no Node built-in statically (Node-only code sits behind dynamic imports)', async () => {
    const g = await staticGraph(join(DIST, 'browser.js'));
    // the whole library is reachable statically (tokenizer, model, trainer chunks), so the walk saw real code
    expect(g.files.length).toBeGreaterThan(3);
    const code = g.files.map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
    expect(code).toContain('Phase1Trainer');
    expect(g.externals.filter((s) => NODE_BUILTIN.test(s) || s === 'webgpu')).toEqual([]);
  });

  it('(control) the same walk does find the static node: imports of the CLI entry', async () => {
    const g = await staticGraph(join(DIST, 'cli.js'));
    expect(g.externals.some((s) => NODE_BUILTIN.test(s))).toBe(true);
  });

  it('routes export conditions: browser -> dist/browser.js, node/deno/bun -> dist/index.js, types first', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const e = pkg.exports['.'];
    expect(Object.keys(e)[0]).toBe('types');
    expect(e.browser).toBe('./dist/browser.js');
    for (const c of ['node', 'deno', 'bun']) expect(e[c]).toBe('./dist/index.js');
    // a browser must match `browser` before `default`
    expect(Object.keys(e).indexOf('browser')).toBeLessThan(Object.keys(e).indexOf('default'));
  });
});

describe('the installed tarball', () => {
  it('works from Node', async () => {
    const t0 = performance.now();
    const { stdout } = await run('node', ['smoke.mjs'], { cwd: proj, maxBuffer: 64 << 20 });
    const s = parseSmoke(stdout);
    console.log(`[package] node: ${s.checks.length} checks passed, loss ${s.loss.toFixed(4)}; auto backend ${s.autoBackend} (${secs(t0)})`);
    expect(s.runtime).toBe('node');
    expect(s.checks.length).toBe(9);
  });

  it.skipIf(!existsSync(bun))('works from Bun', async () => {
    const t0 = performance.now();
    const { stdout } = await run(bun, ['run', 'smoke.mjs'], { cwd: proj, maxBuffer: 64 << 20 });
    const s = parseSmoke(stdout);
    console.log(`[package] bun: ${s.checks.length} checks passed; auto backend ${s.autoBackend} (${secs(t0)})`);
    expect(s.runtime).toBe('bun');
    expect(s.checks.length).toBe(9);
  });

  it.skipIf(!existsSync(deno))('works from Deno (bare specifier through package.json and node_modules)', async () => {
    const t0 = performance.now();
    const { stdout } = await run(deno, ['run', '-A', 'smoke.mjs'], { cwd: proj, maxBuffer: 64 << 20 });
    const s = parseSmoke(stdout);
    console.log(`[package] deno: ${s.checks.length} checks passed; auto backend ${s.autoBackend} (${secs(t0)})`);
    expect(s.runtime).toBe('deno');
    expect(s.checks.length).toBe(9);
  });

  it('resolves to dist/browser.js for a browser bundler, which bundles it without Node built-ins', async () => {
    const { build } = await import('esbuild');
    writeFileSync(
      join(proj, 'page.js'),
      "import { linePlot, Tokenizer } from 'latentlm';\nconsole.log(linePlot({ series: [] }).length, typeof Tokenizer);\n",
    );
    const res = await build({
      entryPoints: [join(proj, 'page.js')],
      absWorkingDir: proj,
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      splitting: true,
      outdir: join(proj, 'out'),
      metafile: true,
      logLevel: 'silent',
      // only the Node-only dynamic imports may stay unresolved
      external: ['node:*'],
    });
    const inputs = Object.keys(res.metafile!.inputs);
    expect(inputs).toContain('node_modules/latentlm/dist/browser.js');
    expect(inputs).not.toContain('node_modules/latentlm/dist/index.js');
    // gpu.js comes in through its browser build, never its Node entry (which needs the native `gl`)
    expect(inputs.some((f) => f.startsWith('node_modules/gpu.js/dist/gpu-browser'))).toBe(true);
    expect(inputs.filter((f) => f.startsWith('node_modules/gpu.js/src/'))).toEqual([]);
  });

  it('runs the `latentlm` bin through npx', async () => {
    const { stdout } = await run('npx', ['--no-install', 'latentlm', '--help'], { cwd: proj });
    for (const cmd of ['tokenize', 'split', 'reward', 'train', 'rl']) expect(stdout).toMatch(new RegExp(`^  ${cmd} `, 'm'));
    // and a real command: tokenize reads JSONL on stdin
    const tok = await runWithStdin('npx', ['--no-install', 'latentlm', 'tokenize'], '"Hello world"\n', proj);
    expect(tok.trim()).toBe('[9707,1879]');
  });

  it('type-checks a consumer against the shipped .d.ts', async () => {
    writeFileSync(
      join(proj, 'check.ts'),
      [
        "import { Tokenizer, splitAnswer, Phase1Trainer, createBackend, linePlot, type StepRecord } from 'latentlm';",
        'const tok: Tokenizer = await Tokenizer.load();',
        'const ids: ArrayLike<number> = tok.encode("hi");',
        'const s: string = splitAnswer("1+1 = <<1+1=2>>2\\n#### 2").final;',
        'const be = await createBackend({ prefer: "cpu" });',
        'const svg: string = linePlot({ series: [{ name: "loss", points: [[1, 2]] }] });',
        'const r: StepRecord["loss"] = 1;',
        'void [ids, s, be, svg, r, Phase1Trainer];',
        '// @ts-expect-error: not exported',
        "import { nothingHere } from 'latentlm';",
        'void nothingHere;',
      ].join('\n'),
    );
    writeFileSync(
      join(proj, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          lib: ['ES2022', 'DOM'],
          types: [],
        },
        files: ['check.ts'],
      }),
    );
    const r = await run(join(BIN, 'tsc'), ['-p', 'tsconfig.json'], { cwd: proj }).catch((e) => e as { stdout: string; code: number });
    expect((r as { stdout: string }).stdout).toBe('');
  }, 180_000);
});

async function runWithStdin(cmd: string, args: string[], input: string, cwd: string): Promise<string> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out}`))));
    p.stdin.end(input);
  });
}
