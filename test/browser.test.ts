// End-to-end: the browser demo (examples/browser, built against dist/browser.js) in Debian's headless Chromium,
// driven by playwright-core (never downloads a browser). For WebGPU (SwiftShader in headless Chromium) and gpu.js
// (WebGL2): open the page, train a few steps in the Web Worker on a tiny random model served as an "HF directory
// URL", check that loss values appear on the page and fall, that the latent panels fill, that a typed question
// gets an answer, and that nothing threw. Screenshots go to test/.tmp/demo-<backend>.png.
// With the embedded default model built, one more short WebGPU run uses it (the page's default choice).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { ROOT, TMP, ensureDist } from './_dist.js';
import { writeTinyModel } from './_tiny-model.js';
import { demand } from './_require.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
demand('chromium', haveChromium, `no browser at ${CHROMIUM}`);
if (!haveChromium)
  console.log(`[browser] skipping the demo e2e test: no browser at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
const generated = join(ROOT, 'src', 'generated', 'default-model.ts');
const haveDefaultModel = existsSync(generated) && !/export default null/.test(readFileSync(generated, 'utf8').slice(0, 400));

interface DemoState {
  phase: string;
  backend?: { name: string; info: string };
  steps: { step: number; loss: number; tokPerSec: number }[];
  evals: { step: number; testLoss: number; usage: { gapZeroed?: number }; decoded?: unknown[] }[];
  answers: { question: string; text: string }[];
  errors: string[];
}

let server: import('node:http').Server | undefined;
let base = '';
/** The same demo served without COOP/COEP (not cross-origin isolated: no shared memory, so one WASM thread). */
let plainServer: import('node:http').Server | undefined;
let plainBase = '';
let context: BrowserContext | undefined;
let profile = '';

describe.skipIf(!haveChromium)('browser demo (headless Chromium)', () => {
  beforeAll(async () => {
    await ensureDist();
    const { buildDemo } = await import('../examples/browser/build.mjs');
    const { serve } = await import('../scripts/demo.mjs');
    const demoDir = join(TMP, 'demo');
    await buildDemo(demoDir);
    const tiny = join(TMP, 'browser-tiny-model');
    await writeTinyModel(tiny);
    const s = await serve({ root: demoDir, port: 0, mounts: { '/tiny/': tiny } });
    server = s.server;
    base = s.url;
    const p = await serve({ root: demoDir, port: 0, mounts: { '/tiny/': tiny }, isolated: false });
    plainServer = p.server;
    plainBase = p.url;
    const { chromium } = await import('playwright-core');
    profile = mkdtempSync(join(tmpdir(), 'latentlm-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--enable-unsafe-webgpu',
        '--no-sandbox',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
    mkdirSync(TMP, { recursive: true });
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await new Promise((r) => (server ? server.close(r) : r(null)));
    await new Promise((r) => (plainServer ? plainServer.close(r) : r(null)));
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  async function trainOnPage(backend: string, query: Record<string, string>, at = base) {
    const page: Page = await context!.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      // failed requests are checked by URL below (the console line does not name the URL)
      if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
    });
    // the only request allowed to fail: the optional tokenizer.json probe beside a model (loadModel falls back to
    // the embedded Qwen2 tokenizer)
    page.on('response', (res) => {
      if (res.status() >= 400 && !/\/tokenizer\.json$/.test(res.url())) pageErrors.push(`HTTP ${res.status()} ${res.url()}`);
    });
    const qs = new URLSearchParams({ backend, k: '2', batch: '2', evalRows: '4', genRows: '0', ...query });
    const t0 = performance.now();
    await page.goto(`${at}?${qs}`);
    await page.click('#train');
    await page.waitForFunction(
      () => {
        const s = (globalThis as unknown as { __latentlm: DemoState }).__latentlm;
        return s.phase === 'done' || s.phase === 'error' || s.errors.length > 0;
      },
      undefined,
      { timeout: 480_000, polling: 500 },
    );
    const state = await page.evaluate(() => (globalThis as unknown as { __latentlm: DemoState }).__latentlm);
    const seconds = (performance.now() - t0) / 1000;
    return { page, state, pageErrors, seconds };
  }

  async function askAndShoot(page: Page, name: string) {
    // a typed question gets an answer (the held-out question the page pre-filled)
    const before = await page.locator('.answer').count();
    await page.click('#ask-btn');
    await page.waitForFunction((n) => document.querySelectorAll('.answer').length > n, before, { timeout: 240_000 });
    const answer = await page.locator('.answer .a').first().textContent();
    const shot = join(TMP, `demo-${name}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`[browser] ${name}: screenshot ${shot}`);
    return answer ?? '';
  }

  function checkRun(name: string, r: Awaited<ReturnType<typeof trainOnPage>>, backend: string, steps: number) {
    const { state } = r;
    const losses = state.steps.map((s) => s.loss);
    console.log(
      `[browser] ${name}: backend ${state.backend?.name} (${state.backend?.info}); ${state.steps.length} steps in ${r.seconds.toFixed(1)} s; ` +
        `train loss ${losses.map((l) => l.toFixed(3)).join(' ')}; test loss ${state.evals.map((e) => `@${e.step} ${e.testLoss.toFixed(3)}`).join(', ')}; ` +
        `${Math.round(state.steps[state.steps.length - 1]?.tokPerSec ?? 0)} tokens/s`,
    );
    expect(r.pageErrors).toEqual([]);
    expect(state.errors).toEqual([]);
    expect(state.phase).toBe('done');
    expect(state.backend?.name).toBe(backend);
    expect(state.steps.map((s) => s.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    for (const l of losses) expect(Number.isFinite(l)).toBe(true);
    // loss falls: the last two steps against the first two (single steps are noisy), and held-out loss end vs start
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    expect(mean(losses.slice(-2))).toBeLessThan(mean(losses.slice(0, 2)));
    const first = state.evals[0],
      last = state.evals[state.evals.length - 1];
    expect(first.step).toBe(0);
    expect(last.step).toBe(steps);
    expect(last.testLoss).toBeLessThan(first.testLoss);
    // the latent diagnostics were computed (k = 2): usage gap and decoded latents
    expect(Number.isFinite(last.usage.gapZeroed)).toBe(true);
    expect(last.decoded?.length).toBeGreaterThan(0);
  }

  async function checkPage(page: Page, state: DemoState) {
    // what a person sees: the numbers, the curves, the decoded latents
    const shown = Number(await page.locator('#stat-loss').textContent());
    expect(shown).toBeCloseTo(state.steps[state.steps.length - 1].loss, 3);
    expect(Number(await page.locator('#stat-test').textContent())).toBeCloseTo(state.evals[state.evals.length - 1].testLoss, 3);
    expect(await page.locator('#plot-loss svg path').count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#latents tbody tr .tok').count()).toBeGreaterThan(0);
    expect(await page.locator('#facts').textContent()).toContain('/tiny/');
  }

  const tinyRun = (backend: string) => async () => {
    const r = await trainOnPage(backend, { model: `${base}tiny/`, steps: '8', evalEvery: '4', lr: '0.01' });
    try {
      checkRun(backend, r, backend, 8);
      // the demo server sends COOP/COEP, so the WASM backend runs threaded (on a machine with more than one core)
      if (backend === 'wasm' && availableParallelism() > 1) expect(r.state.backend?.info).toMatch(/\b([2-9]|\d\d+) threads\b/);
      await checkPage(r.page, r.state);
      const answer = await askAndShoot(r.page, backend);
      expect(answer.length).toBeGreaterThan(0);
      expect(r.pageErrors).toEqual([]);
    } finally {
      await r.page.close();
    }
  };

  it('trains on WebGPU (SwiftShader) in the worker: losses appear and fall, a question gets an answer', tinyRun('webgpu'), 600_000);
  it('trains on gpu.js (WebGL2) in the worker: losses appear and fall, a question gets an answer', tinyRun('gpujs'), 600_000);
  it('trains on WebAssembly SIMD in the worker: losses appear and fall, a question gets an answer', tinyRun('wasm'), 600_000);
  it('WebAssembly SIMD on a page without COOP/COEP: one thread, and the backend says why', async () => {
    const r = await trainOnPage('wasm', { model: `${plainBase}tiny/`, steps: '2', evalEvery: '2', lr: '0.01' }, plainBase);
    try {
      expect(r.state.errors).toEqual([]);
      expect(r.state.phase).toBe('done');
      expect(r.state.backend?.info).toMatch(/1 thread\b.*not cross-origin isolated/);
    } finally {
      await r.page.close();
    }
  }, 600_000);

  it.skipIf(!haveDefaultModel)(
    'trains the embedded default model on WebGPU for a few steps',
    async () => {
      const r = await trainOnPage('webgpu', { steps: '4', evalEvery: '0', evalRows: '2' });
      try {
        console.log(
          `[browser] default model on webgpu: ${r.state.steps.length} steps in ${r.seconds.toFixed(1)} s, loss ${r.state.steps.map((s) => s.loss.toFixed(3)).join(' ')}`,
        );
        expect(r.pageErrors).toEqual([]);
        expect(r.state.errors).toEqual([]);
        expect(r.state.steps.length).toBe(4);
        for (const s of r.state.steps) expect(Number.isFinite(s.loss)).toBe(true);
        expect(await r.page.locator('#facts').textContent()).toContain('embedded default');
        const answer = await askAndShoot(r.page, 'default-webgpu');
        console.log(`[browser] default model answers: ${JSON.stringify(answer)}`);
        expect(answer.trim().length).toBeGreaterThan(0);
      } finally {
        await r.page.close();
      }
    },
    600_000,
  );
});
