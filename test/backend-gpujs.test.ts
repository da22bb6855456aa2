// The gpu.js backend: the op-by-op conformance suite against CpuBackend in gpu.js's auto-selected mode (WebAssembly
// in Node without the `gl` package) and in its plain-JS 'cpu' mode, plus the tiling/chunking paths that the suite's
// small shapes never reach at the default 2^22-element slice size: run with a tiny `maxSpan`, every matmul is tiled
// in M, N and K, embeddings read the table in chunks, attention processes a few query rows at a time, and so on.
// Where a Chromium binary exists, the conformance suite also runs inside headless Chromium, where gpu.js compiles
// the kernels to WebGL2 shaders (SwiftShader on these machines) — the path browsers without WebGPU take.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import { createGpujsBackend, type GpujsBackend } from '../src/backend/gpujs.js';
import type { AttentionShape, Backend, Tensor } from '../src/backend/types.js';
import { backendConformance, both, maxRelErr, randn } from './_conformance.js';
import { demand } from './_require.js';

backendConformance('gpujs (auto mode)', () => createGpujsBackend());
backendConformance('gpujs (cpu mode)', () => createGpujsBackend({ mode: 'cpu' }));
// The conformance shapes again with slices small enough that attention runs in query-row chunks and the
// Qwen2-like matmul is tiled.
backendConformance('gpujs (auto mode, 1200-element slices)', () => createGpujsBackend({ maxSpan: 1200 }));

/** Runs `op` on `dut` and a fresh CpuBackend with the same inputs; the relative error of each output. */
async function compare(
  dut: Backend,
  inputs: Record<string, Float32Array | Int32Array | number>,
  op: (b: Backend, t: Record<string, Tensor>) => void,
  outputs: string[],
) {
  const res = await both(new CpuBackend(), dut, inputs, op, outputs);
  return outputs.map((k) => ({ k, err: maxRelErr(res[k][0], res[k][1]) }));
}

describe('gpujs backend with 64-element kernel slices (every op tiled or chunked)', () => {
  const make = () => createGpujsBackend({ maxSpan: 64 });

  it('reports the mode gpu.js runs and the slice size', async () => {
    const be = (await make()) as GpujsBackend;
    expect(be.name).toBe('gpujs');
    expect(['webasm', 'headlessgl', 'webgl2', 'webgl', 'cpu']).toContain(be.mode);
    expect(be.info).toContain(be.mode);
    expect(be.maxBindingBytes).toBe(64 * 4);
    be.destroy();
  });

  for (const [transA, transB] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ] as const) {
    it(`matmul tiled in M, N and K (transA=${transA} transB=${transB})`, async () => {
      const be = await make();
      const M = 13,
        N = 11,
        K = 150; // K > 64 forces K tiles; M*N > 64 forces output tiles
      for (const { k, err } of await compare(
        be,
        { a: randn(M * K + 3, 1), b: randn(N * K + 2, 2), c: randn(M * N + 5, 3), bias: randn(N, 4) },
        (b, t) => {
          b.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transA, transB, bias: t.bias, aOff: 3, bOff: 2, cOff: 5 });
          b.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transA, transB, accumulate: true, bias: t.bias, aOff: 3, bOff: 2, cOff: 5 });
        },
        ['c'],
      ))
        expect(err, k).toBeLessThan(1e-5);
      be.destroy();
    });
  }

  it('embedding reads the table in chunks; backward sums repeated ids', async () => {
    const be = await make();
    const V = 40,
      H = 7,
      rows = 12;
    const ids = new Int32Array([39, 0, 12, 39, -1, 25, 3, 12, 39, 8, -1, 31]);
    for (const { k, err } of await compare(
      be,
      { ids, table: randn(V * H, 5), out: randn(rows * H, 6), dOut: randn(rows * H, 7), dTable: randn(V * H, 8) },
      (b, t) => {
        b.embedding({ ids: t.ids, table: t.table, out: t.out, rows, dim: H });
        b.embeddingBackward({ ids: t.ids, dOut: t.dOut, dTable: t.dTable, rows, dim: H });
      },
      ['out', 'dTable'],
    ))
      expect(err, k).toBeLessThan(1e-6);
    be.destroy();
  });

  it('elementwise ops, sumRows, sumSquares and adamw over many chunks', async () => {
    const be = await make();
    const n = 300;
    for (const { k, err } of await compare(
      be,
      {
        a: randn(n, 9),
        b: randn(n, 10),
        y: randn(n + 7, 11),
        g: randn(n, 12, 3),
        u: randn(n, 13),
        o: n,
        dg: randn(n, 14),
        du: randn(n, 15),
        p: randn(n, 16),
        m: randn(n, 17, 0.1),
        v: randn(n, 18, 0.1).map(Math.abs),
        sq: 2,
        db: randn(20, 19),
      },
      (b, t) => {
        b.add({ a: t.a, b: t.b, out: t.a, n });
        b.axpy({ alpha: -0.7, x: t.b, y: t.y, n, yOff: 7 });
        b.scale({ x: t.b, s: 1.25, n });
        b.swiglu({ gate: t.g, up: t.u, out: t.o, n });
        b.swigluBackward({ dOut: t.a, gate: t.g, up: t.u, dGate: t.dg, dUp: t.du, n });
        b.sumRows({ dY: t.y, dBias: t.db, rows: 15, cols: 20 });
        b.sumSquares({ x: t.y, n, out: t.sq, outIndex: 1 });
        b.adamw({
          param: t.p,
          grad: t.g,
          m: t.m,
          v: t.v,
          n,
          lr: 1e-3,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: 0.01,
          step: 7,
          gradScale: 0.3,
        });
      },
      ['a', 'b', 'y', 'o', 'dg', 'du', 'db', 'sq', 'p', 'm', 'v'],
    ))
      expect(err, k).toBeLessThan(1e-5);
    be.destroy();
  });

  it('rmsNorm, rope and crossEntropy in row chunks', async () => {
    const be = await make();
    const rows = 9,
      dim = 20,
      heads = 2,
      D = 10,
      V = 30;
    const pos = new Int32Array([0, 5, 17, 300, 2, 9, 4095, 1, 64]);
    const labels = new Int32Array([3, -100, 29, 0, 7, 7, 12, -100, 1, 5]);
    for (const { k, err } of await compare(
      be,
      {
        x: randn(rows * dim, 20),
        w: randn(dim, 21),
        y: rows * dim,
        rstd: rows,
        dy: randn(rows * dim, 22),
        dx: randn(rows * dim, 23),
        dw: randn(dim, 24),
        r: randn(rows * heads * D, 25),
        pos,
        logits: randn(rows * V + 4, 26, 5),
        labels,
        wts: randn(10, 27),
        loss: rows + 1,
      },
      (b, t) => {
        b.rmsNorm({ x: t.x, w: t.w, y: t.y, rstd: t.rstd, rows, dim, eps: 1e-5 });
        b.rmsNormBackward({ dy: t.dy, x: t.x, w: t.w, rstd: t.rstd, dx: t.dx, dw: t.dw, rows, dim });
        b.rope({ x: t.r, pos: t.pos, rows, heads, D, theta: 1e6 });
        b.crossEntropy({
          logits: t.logits,
          labels: t.labels,
          losses: t.loss,
          rows,
          V,
          weights: t.wts,
          logitsOff: 4,
          labelOff: 1,
          lossOff: 1,
        });
      },
      ['y', 'rstd', 'dx', 'dw', 'r', 'logits', 'loss'],
    ))
      expect(err, k).toBeLessThan(1e-4);
    be.destroy();
  });

  it('attention one query row per chunk (GQA 6:2, KV prefix, two sequences)', async () => {
    const be = await createGpujsBackend({ maxSpan: 120 }); // 12 keys x 2 kv heads x 4 = 96 fits; 6 heads x 12 keys = 72 forces 1-row chunks
    const s: AttentionShape = { B: 2, Tq: 5, Hq: 6, Hkv: 2, D: 4, qStart: 7, kvCap: 13 };
    const nq = 2 * 5 * 6 * 4,
      nkv = 2 * 13 * 2 * 4;
    for (const { k, err } of await compare(
      be,
      {
        q: randn(nq, 30, 2),
        k: randn(nkv, 31, 2),
        v: randn(nkv, 32),
        out: nq,
        lse: 2 * 6 * 5,
        dOut: randn(nq, 33),
        dq: randn(nq, 34),
        dk: randn(nkv, 35),
        dv: randn(nkv, 36),
      },
      (b, t) => {
        b.attention({ q: t.q, kCache: t.k, vCache: t.v, out: t.out, lse: t.lse, ...s });
        b.attentionBackward({
          dOut: t.dOut,
          q: t.q,
          kCache: t.k,
          vCache: t.v,
          out: t.out,
          lse: t.lse,
          dq: t.dq,
          dkCache: t.dk,
          dvCache: t.dv,
          ...s,
        });
      },
      ['out', 'lse', 'dq', 'dk', 'dv'],
    ))
      expect(err, k).toBeLessThan(1e-4);
    be.destroy();
  });
});

describe('gpujs backend errors', () => {
  it('names the tensor on out-of-range access and rejects freed tensors', async () => {
    const be = await createGpujsBackend();
    const a = be.alloc(10, 'f32', 'small-a'),
      c = be.alloc(4, 'f32', 'small-c');
    expect(() => be.matmul({ a, b: a, c, M: 2, N: 2, K: 6 })).toThrow(/small-a/);
    expect(() => be.upload(a, new Float32Array(11))).toThrow(/small-a/);
    const ids = be.alloc(1, 'i32', 'ids');
    be.upload(ids, new Int32Array([3]));
    expect(() => be.embedding({ ids, table: a, out: c, rows: 1, dim: 4 })).toThrow(/id 3 .*small-a/);
    be.free(a);
    expect(() => be.scale({ x: a, s: 2, n: 1 })).toThrow(/freed/);
    be.destroy();
  });

  it('refuses a mode gpu.js cannot run here instead of silently degrading', async () => {
    // No WebGL in Node; gpu.js would otherwise fall back without saying so.
    await expect(createGpujsBackend({ mode: 'webgl2' })).rejects.toThrow(/webgl2/);
  });
});

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
demand('chromium', haveChromium, `no browser at ${CHROMIUM}`);
if (!haveChromium)
  console.log(`[backend-gpujs] skipping the WebGL2 (headless Chromium) run: no browser at ${CHROMIUM} (set CHROMIUM_PATH)`);

describe.skipIf(!haveChromium)('gpujs backend in headless Chromium (gpu.js WebGL2 kernels)', () => {
  it('passes the conformance suite at the default and at 1200-element slices', async () => {
    const { build } = await import('esbuild');
    const { chromium } = await import('playwright-core');
    const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
    // Bundle the suite for the page; 'vitest' becomes a small shim, 'gpu.js' resolves to its browser build.
    const out = await build({
      entryPoints: [here('./_gpujs-browser-entry.ts')],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'iife',
      alias: { vitest: here('./_gpujs-browser-shim.ts') },
      logLevel: 'silent',
    });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--use-angle=swiftshader',
        '--enable-unsafe-swiftshader',
      ],
    });
    try {
      const page = await browser.newPage();
      await page.setContent('<html><body></body></html>');
      await page.addScriptTag({ content: out.outputFiles[0].text });
      const { infos, results } = await page.evaluate(() =>
        (globalThis as unknown as { __gpujsConformance: () => Promise<{ infos: string[]; results: string[] }> }).__gpujsConformance(),
      );
      console.log(`[backend-gpujs] in Chromium: ${infos[0]}`);
      expect(infos.length).toBe(2);
      for (const info of infos) expect(info).toMatch(/^gpu\.js webgl2 kernels/);
      expect(results.length).toBeGreaterThan(30);
      expect(results.filter((r) => !r.startsWith('PASS'))).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
