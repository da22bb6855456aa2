// The WebGPU kernel variants on the other runtimes' WebGPU: test/_webgpu-variants.ts run as a plain Deno script
// (wgpu on Mesa lavapipe/llvmpipe here) and, bundled with esbuild, in headless Chromium (SwiftShader). Deno is
// where the f16 tiles are checked: its adapter has `shader-f16`, Dawn's GLES adapter in Node does not.
// (Node's variants: test/backend-webgpu.test.ts runs the full conformance suite per family.)
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, TMP, run } from './_dist.js';
import { demand } from './_require.js';

const DENO = join(ROOT, 'node_modules', '.bin', 'deno');
const haveDeno = existsSync(DENO);
if (!haveDeno) console.log(`[webgpu-variants] skipping: ${DENO} is not installed (npm ci)`);

describe.skipIf(!haveDeno)('webgpu kernel variants under Deno', () => {
  // tiled and f16 tiles only (to keep the suite fast): Node's conformance suite covers both families whole and split
  it('tiled and (where the adapter has shader-f16) f16 tiles match the CPU reference', async () => {
    let stdout = '',
      why = '';
    try {
      ({ stdout } = await run(DENO, ['run', '-A', 'test/_webgpu-variants.ts', 'tiled', 'tiled f16'], { cwd: ROOT, maxBuffer: 16 << 20 }));
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      stdout = err.stdout ?? '';
      why = `${err.message}\n${err.stderr ?? ''}`;
    }
    const line = stdout.split('\n').find((l) => l.startsWith('VARIANTS '));
    if (!line && /no WebGPU adapter|requestAdapter/.test(why)) {
      console.log(`[webgpu-variants] skipped: Deno has no WebGPU adapter here: ${why.split('\n')[0]}`);
      return;
    }
    expect(line, `no VARIANTS line:\n${stdout}\n${why}`).toBeDefined();
    check('deno', line!, ['tiled', 'tiled f16']);
  }, 300_000);
});

// Dawn's Vulkan backend on SwiftShader (the ICD Chromium ships) is the adapter here with `subgroups`: the subgroup
// reductions run and are checked there, with both kernel families (Dawn GLES and Deno's lavapipe lack the feature).
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
describe.skipIf(!existsSync(SWIFTSHADER_ICD) || !existsSync(TSX))('webgpu kernel variants on Dawn Vulkan + SwiftShader (Node)', () => {
  it('subgroup reductions with both kernel families match the CPU reference', async () => {
    const { stdout } = await run(TSX, ['test/_webgpu-variants.ts', 'simple subgroup', 'tiled subgroup'], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
      env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD },
    });
    const line = stdout.split('\n').find((l) => l.startsWith('VARIANTS '));
    expect(line, `no VARIANTS line:\n${stdout}`).toBeDefined();
    const r = JSON.parse(line!.slice(9));
    // the point of this run: SwiftShader through Dawn does expose subgroups, so both variants must have run
    expect(r.features).toContain('subgroups');
    check('node/dawn-vulkan', line!, ['simple subgroup', 'tiled subgroup']);
  }, 300_000);
});

function check(runtime: string, line: string, expected: string[]): void {
  const r = JSON.parse(line.slice(9));
  console.log(
    `[webgpu-variants] ${runtime}: ${r.adapter.split(';')[0]}; features [${r.features}]; auto -> ${r.auto}; variants: ${Object.keys(r.variants).join(', ')}`,
  );
  for (const [v, errs] of Object.entries(r.variants as Record<string, Record<string, number>>))
    console.log(`[webgpu-variants]   ${v}: worst ${Math.max(...Object.values(errs)).toExponential(2)}`);
  expect(r.failures).toEqual([]);
  // 'tiled f16' runs exactly where the adapter has shader-f16, the subgroup variants where it has subgroups
  const needs = (v: string) => (v === 'tiled f16' ? 'shader-f16' : v.endsWith(' subgroup') ? 'subgroups' : '');
  expect(Object.keys(r.variants).sort()).toEqual(expected.filter((v) => !needs(v) || r.features.includes(needs(v))).sort());
  const software = /software adapter/.test(r.adapter);
  expect(r.auto).toBe(software ? 'simple' : 'tiled');
  if (software || !r.features.includes('subgroups')) expect(r.autoReductions).toBe('workgroup');
  if (r.features.includes('subgroups'))
    console.log(
      `[webgpu-variants]   subgroups present; auto reductions: ${r.autoReductions}${r.subgroupNote ? ` (${r.subgroupNote})` : ''}`,
    );
}

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
demand('chromium', haveChromium, `no browser at ${CHROMIUM}`);
if (!haveChromium)
  console.log(`[webgpu-variants] skipping Chromium: no browser at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

describe.skipIf(!haveChromium)('webgpu kernel variants in headless Chromium', () => {
  // The tiled family only: SwiftShader runs it slowly (about a minute here), and test/browser.test.ts already
  // trains on SwiftShader with the simple family (auto's choice there). LATENTLM_VARIANTS_QUERY='?v=simple&v=tiled'
  // picks others.
  it("the same script, bundled, matches the CPU reference on Chromium's WebGPU (tiled kernels)", async () => {
    const dir = join(TMP, 'webgpu-variants-browser');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const { build } = await import('esbuild');
    // splitting keeps the Node-only Dawn loader (never reached in a browser) in its own chunk
    await build({
      entryPoints: [join(ROOT, 'test', '_webgpu-variants.ts')],
      bundle: true,
      format: 'esm',
      splitting: true,
      outdir: dir,
      platform: 'browser',
      target: 'es2022',
      external: ['webgpu', 'node:*'],
      logLevel: 'error',
    });
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><link rel="icon" href="data:,"><script type="module" src="./_webgpu-variants.js"></script>',
    );
    const { serve } = await import('../scripts/demo.mjs');
    const s = await serve({ root: dir, port: 0 });
    const { chromium } = await import('playwright-core');
    const profile = join(tmpdir(), `latentlm-variants-${process.pid}`);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--enable-unsafe-webgpu', '--no-sandbox', '--no-first-run', '--disable-background-networking'],
    });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const line = new Promise<string>((resolve) =>
        page.on('console', (m) => {
          if (m.text().startsWith('VARIANTS ')) resolve(m.text());
        }),
      );
      // the subgroup reductions too, where Chromium's SwiftShader adapter exposes `subgroups`
      const query = process.env.LATENTLM_VARIANTS_QUERY ?? '?v=tiled&v=tiled%20subgroup';
      await page.goto(`${s.url}index.html${query}`);
      const got = await Promise.race([
        line,
        new Promise<string>((r) => setTimeout(() => r(''), 240_000)),
        new Promise<string>((r) => page.on('pageerror', () => r(''))),
      ]);
      if (!got && errors.some((e) => /no WebGPU adapter/.test(e))) {
        console.log(`[webgpu-variants] Chromium skipped: ${errors[0]}`);
        return;
      }
      expect(got, `no VARIANTS line; page errors: ${errors.join('; ')}`).not.toBe('');
      check('chromium', got, new URLSearchParams(query).getAll('v'));
    } finally {
      await context.close();
      await new Promise((r) => s.server.close(r));
      rmSync(profile, { recursive: true, force: true });
    }
  }, 300_000);
});
