// WebGPU backend: the op-by-op conformance suite against the CPU reference, as is and with tensors split into
// tiny chunks (so every chunk-aware code path runs), targeted checks that the ops required to handle split
// tensors really do (no merge fallback, rows straddling chunk boundaries), and error reporting.
// Where no WebGPU adapter exists the file skips with the reason (CI installs Mesa, so it runs there).
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import { BackendError, type Backend, type Tensor } from '../src/backend/types.js';
import { createWebGPUBackend } from '../src/backend/webgpu.js';
import { backendConformance, both, maxRelErr, randn } from './_conformance.js';
import { MATMUL_TILES, TILED_NEEDS, chooseKernels, chooseReductions, subgroupLevels } from '../src/backend/webgpu-kernels.js';
import { webgpuUnavailable } from './_backends.js';

const unavailable = await webgpuUnavailable('backend-webgpu: skipped');
describe.skipIf(!!unavailable)('webgpu', () => {
  backendConformance('webgpu', () => createWebGPUBackend());
  backendConformance('webgpu (tensors split at 4 KiB)', () => createWebGPUBackend({ maxBindingBytes: 4096 }));
  // 1 KiB = 256 elements: most conformance tensors are split, while every row of every op still fits a chunk.
  backendConformance('webgpu (tensors split at 1 KiB)', () => createWebGPUBackend({ maxBindingBytes: 1024 }));
  backendConformance('webgpu (naive matmul kernel)', async () => {
    const be = await createWebGPUBackend();
    be.matmulKernel = 'naive';
    return be;
  });
  // Each kernel family forced, whatever the adapter (auto picks 'simple' on the software adapters here).
  backendConformance('webgpu (tiled kernels)', () => createWebGPUBackend({ kernels: 'tiled' }));
  backendConformance('webgpu (tiled kernels, tensors split at 1 KiB)', () =>
    createWebGPUBackend({ kernels: 'tiled', maxBindingBytes: 1024 }),
  );
  backendConformance('webgpu (simple kernels)', () => createWebGPUBackend({ kernels: 'simple' }));

  for (const kernels of ['simple', 'tiled'] as const)
    describe(`split tensors, ${kernels} kernels (256-byte chunks: 64 elements, rows straddle chunk boundaries)`, () => {
      const ref = new CpuBackend();
      /** Runs op on both backends; checks the outputs agree and that the webgpu run needed no merge fallback. */
      async function same(
        inputs: Record<string, Float32Array | Int32Array>,
        op: (b: Backend, t: Record<string, Tensor>) => void,
        outputs: string[],
        expectSplit: string[],
      ) {
        const be = await createWebGPUBackend({ maxBindingBytes: 256, kernels });
        try {
          const res: Record<string, Float32Array | Int32Array>[] = [];
          for (const b of [ref, be] as Backend[]) {
            const t: Record<string, Tensor> = {};
            for (const [k, v] of Object.entries(inputs)) {
              t[k] = b.alloc(v.length, v instanceof Int32Array ? 'i32' : 'f32', k);
              b.upload(t[k], v);
            }
            if (b === be) for (const k of expectSplit) expect(be.chunkCount(t[k]), `${k} is split`).toBeGreaterThan(1);
            const merged = be.stats.merged;
            op(b, t);
            if (b === be) expect(be.stats.merged, 'merge fallback used').toBe(merged);
            const r: Record<string, Float32Array | Int32Array> = {};
            for (const k of outputs) r[k] = await b.read(t[k]);
            res.push(r);
          }
          for (const k of outputs) expect(maxRelErr(res[1][k], res[0][k]), k).toBeLessThanOrEqual(1e-5);
        } finally {
          be.destroy();
        }
      }

      it('embedding and embeddingBackward on a split table (dim 10: rows 6, 12, 19 straddle)', async () => {
        const V = 23,
          H = 10,
          rows = 6; // out/dOut (60 elements) fit one chunk: only the table must split
        const ids = new Int32Array([6, 12, 22, 6, -1, 19]);
        await same(
          { ids, table: randn(V * H, 1), out: randn(rows * H, 2), dOut: randn(rows * H, 3), dTable: randn(V * H, 4) },
          (b, t) => {
            b.embedding({ ids: t.ids, table: t.table, out: t.out, rows, dim: H });
            b.embeddingBackward({ ids: t.ids, dOut: t.dOut, dTable: t.dTable, rows, dim: H });
          },
          ['out', 'dTable'],
          ['table', 'dTable'],
        );
      });

      for (const [transA, transB] of [
        [false, false],
        [false, true],
        [true, false],
        [true, true],
      ] as const) {
        it(`matmul transA=${transA} transB=${transB} with A, B and C all split, offsets, bias, accumulate`, async () => {
          const M = 19,
            N = 23,
            K = 29;
          await same(
            { a: randn(M * K + 5, 5), b: randn(N * K + 3, 6), c: randn(M * N + 7, 7), bias: randn(N, 8) },
            (be, t) => {
              be.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transA, transB, bias: t.bias, aOff: 5, bOff: 3, cOff: 7 });
              be.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transA, transB, accumulate: true, aOff: 5, bOff: 3, cOff: 7 });
            },
            ['c'],
            ['a', 'b', 'c'],
          );
        });
      }

      it('matmul with vec4-aligned shapes (lm_head-like transB and dW = dY^T X) on split tensors', async () => {
        const M = 12,
          N = 40,
          K = 16;
        await same(
          { x: randn(M * K, 9), w: randn(N * K, 10), y: randn(M * N, 11), dy: randn(M * N, 12), dw: randn(N * K, 13) },
          (be, t) => {
            be.matmul({ a: t.x, b: t.w, c: t.y, M, N, K, transB: true }); // logits = X W^T, W [N, K] split along N
            be.matmul({ a: t.dy, b: t.x, c: t.dw, M: N, N: K, K: M, transA: true, accumulate: true }); // dW [N, K] += dY^T X, split along rows
          },
          ['y', 'dw'],
          ['w', 'y', 'dw'],
        );
      });

      it('adamw, sumSquares, elementwise maps, zero, copy2d, upload and read across chunks', async () => {
        const n = 300;
        await same(
          {
            p: randn(n, 14),
            g: randn(n, 15),
            m: randn(n, 16, 0.1),
            v: randn(n, 17, 0.1).map(Math.abs),
            out: new Float32Array(3),
            a: randn(n, 18),
            y: randn(n + 50, 19),
            d: randn(n, 20),
            dg: randn(n, 21),
            du: randn(n, 22),
            c: randn(400, 23),
          },
          (b, t) => {
            b.adamw({
              param: t.p,
              grad: t.g,
              m: t.m,
              v: t.v,
              n,
              lr: 1e-2,
              beta1: 0.9,
              beta2: 0.95,
              eps: 1e-8,
              weightDecay: 0.1,
              step: 3,
              gradScale: 0.5,
            });
            b.sumSquares({ x: t.g, n, out: t.out, outIndex: 1 });
            b.sumSquares({ x: t.p, n: n - 7, out: t.out, outIndex: 1 });
            b.add({ a: t.a, b: t.g, out: t.a, n });
            b.axpy({ alpha: 0.3, x: t.g, y: t.y, n: 250, xOff: 17, yOff: 45 });
            b.scale({ x: t.a, s: 1.5, n: n - 1 });
            b.swiglu({ gate: t.g, up: t.a, out: t.d, n });
            b.swigluBackward({ dOut: t.d, gate: t.g, up: t.a, dGate: t.dg, dUp: t.du, n });
            b.zero(t.c, 60, 10);
            b.copy2d({ src: t.a, dst: t.c, rows: 7, cols: 30, srcOff: 5, srcStride: 41, dstOff: 100, dstStride: 37 });
            b.copy2d({ src: t.y, dst: t.c, rows: 4, cols: 20, srcOff: 3, srcStride: 70, dstOff: 1, dstStride: 66, accumulate: true });
            b.upload(t.c, randn(90, 24), 120);
          },
          ['p', 'm', 'v', 'out', 'a', 'y', 'd', 'dg', 'du', 'c'],
          ['p', 'g', 'm', 'v', 'a', 'y', 'c'],
        );
        const be = await createWebGPUBackend({ maxBindingBytes: 256, kernels });
        const t = be.alloc(200);
        const data = randn(200, 25);
        be.upload(t, data);
        expect(Array.from(await be.read(t, 50, 100))).toEqual(Array.from(data.slice(50, 150)));
        be.destroy();
      });

      it('an op that cannot split refuses a row longer than a chunk with a clear error', async () => {
        const be = await createWebGPUBackend({ maxBindingBytes: 256, kernels });
        const a = be.alloc(4 * 100),
          b = be.alloc(8 * 100),
          c = be.alloc(32);
        expect(() => be.matmul({ a, b, c, M: 4, N: 8, K: 100, transB: true })).toThrow(/rows of 100 elements .* exceed one binding/);
        be.destroy();
      });
    });

  describe('kernel variants', () => {
    it('auto picks by adapter kind; an option or LATENTLM_WEBGPU_KERNELS forces a family; unknown names are refused', async () => {
      const auto = await createWebGPUBackend({ kernels: 'auto' });
      const software = /software adapter/.test(auto.info);
      expect(auto.kernels).toBe(software ? 'simple' : 'tiled');
      expect(auto.matmulKernel).toBe(software ? 'blocked' : 'tiled');
      auto.destroy();
      const tiled = await createWebGPUBackend({ kernels: 'tiled' });
      expect([tiled.kernels, tiled.matmulKernel]).toEqual(['tiled', 'tiled']);
      expect(tiled.info).toMatch(/tiled kernels/);
      tiled.destroy();
      const saved = process.env.LATENTLM_WEBGPU_KERNELS;
      try {
        process.env.LATENTLM_WEBGPU_KERNELS = 'tiled';
        const env = await createWebGPUBackend();
        expect(env.kernels).toBe('tiled');
        env.destroy();
        const opt = await createWebGPUBackend({ kernels: 'simple' }); // an explicit option wins over the variable
        expect(opt.kernels).toBe('simple');
        opt.destroy();
        process.env.LATENTLM_WEBGPU_KERNELS = 'fast';
        await expect(createWebGPUBackend()).rejects.toThrow(/LATENTLM_WEBGPU_KERNELS=fast.*tiled, simple, auto/);
      } finally {
        if (saved === undefined) delete process.env.LATENTLM_WEBGPU_KERNELS;
        else process.env.LATENTLM_WEBGPU_KERNELS = saved;
      }
    });

    it('auto takes the simple family where the limits cannot hold the tiles; forcing tiled there is refused', () => {
      const compat = { maxComputeInvocationsPerWorkgroup: 128, maxComputeWorkgroupStorageSize: 16384 };
      expect(chooseKernels('auto', false, TILED_NEEDS)).toBe('tiled');
      expect(chooseKernels('auto', true, TILED_NEEDS)).toBe('simple');
      expect(chooseKernels('auto', false, compat)).toBe('simple');
      expect(chooseKernels('simple', false, compat)).toBe('simple');
      expect(() => chooseKernels('tiled', false, compat)).toThrow(/tiled kernels need more .*maxComputeInvocationsPerWorkgroup 128 < 256/);
    });

    it('reductions: auto takes subgroups only on a hardware adapter that has them and passes the probe; forcing them elsewhere is refused', async () => {
      expect(chooseReductions('auto', false, '')).toBe('subgroup');
      expect(chooseReductions('auto', true, '')).toBe('workgroup');
      expect(chooseReductions('auto', false, 'no feature')).toBe('workgroup');
      expect(chooseReductions('workgroup', false, '')).toBe('workgroup');
      expect(() => chooseReductions('subgroup', false, 'the adapter has no `subgroups` feature')).toThrow(
        /subgroup reductions are unavailable here: the adapter has no/,
      );
      // levels of the subgroup library: 256 = 4^4 = 32^2 (rounded up: 128 at 32 is still 2 levels)
      expect([
        subgroupLevels(256, 4),
        subgroupLevels(256, 32),
        subgroupLevels(128, 32),
        subgroupLevels(128, 128),
        subgroupLevels(256, 64),
      ]).toEqual([4, 2, 2, 1, 2]);
      const auto = await createWebGPUBackend();
      const software = /software adapter/.test(auto.info);
      if (software || !auto.features.has('subgroups')) expect(auto.reductions).toBe('workgroup');
      expect(auto.info).toContain(`${auto.reductions} reductions`);
      const hasSubgroups = auto.features.has('subgroups');
      auto.destroy();
      if (!hasSubgroups) {
        await expect(createWebGPUBackend({ reductions: 'subgroup' })).rejects.toThrow(
          /subgroup reductions are unavailable here: the adapter has no `subgroups` feature/,
        );
        console.log(
          'backend-webgpu: this adapter has no subgroups; subgroup reductions are tested on SwiftShader (test/webgpu-variants.test.ts)',
        );
      }
      const saved = process.env.LATENTLM_WEBGPU_REDUCTIONS;
      try {
        process.env.LATENTLM_WEBGPU_REDUCTIONS = 'warp';
        await expect(createWebGPUBackend()).rejects.toThrow(/LATENTLM_WEBGPU_REDUCTIONS=warp.*workgroup, subgroup, auto/);
      } finally {
        if (saved === undefined) delete process.env.LATENTLM_WEBGPU_REDUCTIONS;
        else process.env.LATENTLM_WEBGPU_REDUCTIONS = saved;
      }
    });

    // Several tiles in every dimension with ragged edges, all transpose forms, bias then accumulate, per tile shape.
    const ref = new CpuBackend();
    for (const [tileName, tile] of Object.entries(MATMUL_TILES)) {
      it(`tiled matmul ${tileName} over several tiles (M=130, N=140, K=70), all transposes`, async () => {
        const be = await createWebGPUBackend({ kernels: 'tiled' });
        be.matmulTile = tile;
        try {
          const M = 130,
            N = 140,
            K = 70;
          for (const [transA, transB] of [
            [false, false],
            [false, true],
            [true, false],
            [true, true],
          ] as const) {
            const res = await both(
              ref,
              be,
              { a: randn(M * K, 1), b: randn(N * K, 2), c: randn(M * N, 3), bias: randn(N, 4) },
              (b, t) => {
                b.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transA, transB, bias: t.bias });
                b.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transA, transB, accumulate: true });
              },
              ['c'],
            );
            expect(maxRelErr(...res.c), `transA=${transA} transB=${transB}`).toBeLessThanOrEqual(1e-5);
          }
        } finally {
          be.destroy();
        }
      });
    }

    for (const kernels of ['simple', 'tiled'] as const) {
      it(`crossEntropy over Qwen2's 151,936 classes with the fused gradient (${kernels} kernels)`, async () => {
        const be = await createWebGPUBackend({ kernels });
        try {
          const rows = 3,
            V = 151936;
          const res = await both(
            ref,
            be,
            { x: randn(rows * V, 7, 12), labels: new Int32Array([5, 151935, 70000]), w: new Float32Array([1, 0.5, 2]), l: rows },
            (b, t) => {
              b.crossEntropy({ logits: t.x, labels: t.labels, losses: t.l, rows, V, weights: t.w });
            },
            ['x', 'l'],
          );
          expect(maxRelErr(...res.l), 'losses').toBeLessThanOrEqual(1e-5);
          expect(maxRelErr(...res.x), 'gradient').toBeLessThanOrEqual(1e-4);
        } finally {
          be.destroy();
        }
      });
    }

    it('f16 tiles (shader-f16): products of half-rounded inputs, f32 accumulation; refused without the feature', async () => {
      const probe = await createWebGPUBackend({ kernels: 'tiled' });
      const hasF16 = probe.features.has('shader-f16');
      probe.destroy();
      if (!hasF16) {
        await expect(createWebGPUBackend({ kernels: 'tiled', matmulF16: true })).rejects.toThrow(
          /matmulF16 needs the 'shader-f16' feature/,
        );
        console.log('backend-webgpu: this adapter has no shader-f16; f16 tiles are tested under Deno (test/webgpu-variants.test.ts)');
        return;
      }
      const be = await createWebGPUBackend({ kernels: 'tiled', matmulF16: true });
      try {
        const M = 70,
          N = 68,
          K = 96;
        const a = randn(M * K, 5),
          b = randn(N * K, 6);
        const res = await both(ref, be, { a, b, c: M * N }, (x, t) => x.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transB: true }), ['c']);
        // Half rounding of the inputs (relative 2^-11 each) bounds the error; an f32 kernel would be ~1e-7.
        const err = maxRelErr(...res.c);
        expect(err).toBeLessThanOrEqual(5e-3);
        expect(err).toBeGreaterThan(1e-6); // the f16 path really ran
      } finally {
        be.destroy();
      }
    });
  });

  describe('dispatch economy counters', () => {
    it('count dispatches, submits, creations and readback bytes; repeated work creates nothing', async () => {
      const be = await createWebGPUBackend();
      try {
        const a = be.alloc(64 * 32),
          b = be.alloc(48 * 32),
          c = be.alloc(64 * 48);
        be.upload(a, randn(64 * 32, 1));
        be.upload(b, randn(48 * 32, 2));
        const work = async () => {
          be.matmul({ a, b, c, M: 64, N: 48, K: 32, transB: true });
          be.scale({ x: c, s: 0.5, n: 64 * 48 });
          await be.read(c, 10, 25);
        };
        await work(); // first time: pipelines, bind groups, a readback buffer
        const s0 = { ...be.stats };
        await work();
        const d = (k: keyof typeof s0) => be.stats[k] - s0[k];
        expect(d('dispatches')).toBe(2);
        expect(d('submits')).toBe(1);
        expect(d('buffersCreated') + d('bindGroupsCreated')).toBe(0);
        expect([d('reads'), d('readBytes')]).toEqual([1, 100]);
      } finally {
        be.destroy();
      }
    });
  });

  describe('errors and reporting', () => {
    it('reports which adapter it uses and why', async () => {
      const be = await createWebGPUBackend();
      console.log(`webgpu adapter: ${be.info}`);
      expect(be.name).toBe('webgpu');
      expect(be.info).toMatch(/^(Dawn (Vulkan|GLES compat)|navigator\.gpu) \(.+\)/);
      expect(be.info).toMatch(/max binding \d+ MiB/);
      expect(be.maxBindingBytes).toBeGreaterThanOrEqual(128 * 1024 * 1024);
      be.destroy();
    });

    it('splits a tensor beyond the binding size and refuses one beyond maxTensorBytes', async () => {
      const be = await createWebGPUBackend({ maxBindingBytes: 4096, maxTensorBytes: 64 * 1024 });
      const t = be.alloc(10_000, 'f32', 'big');
      expect(be.chunkCount(t)).toBe(10);
      expect(() => be.alloc(20_000, 'f32', 'huge')).toThrow(BackendError);
      expect(() => be.alloc(20_000, 'f32', 'huge')).toThrow(/'huge': 80000 bytes exceed maxTensorBytes/);
      expect(() => be.alloc(-1)).toThrow(/non-negative integer/);
      be.destroy();
    });

    it('a clear error when reading after destroy or reading a freed tensor', async () => {
      const be = await createWebGPUBackend();
      const t = be.alloc(8, 'f32', 'x');
      const u = be.alloc(8, 'f32', 'freed one');
      be.free(u);
      await expect(be.read(u)).rejects.toThrow(/'freed one' was freed/);
      be.destroy();
      await expect(be.read(t)).rejects.toThrow(BackendError);
      await expect(be.read(t)).rejects.toThrow(/after destroy/);
      expect(() => be.add({ a: t, b: t, out: t, n: 8 })).toThrow(/after destroy/);
    });

    it('a lost device becomes a BackendError on the next read, not a hang', async () => {
      const be = await createWebGPUBackend();
      const t = be.alloc(8, 'f32', 'x');
      await be.sync();
      (be as unknown as { device: GPUDevice }).device.destroy(); // simulate loss behind the backend's back
      await new Promise((r) => setTimeout(r, 50));
      await expect(be.read(t)).rejects.toThrow(/device lost/i);
    });

    it('out-of-range reads and uploads name the tensor', async () => {
      const be = await createWebGPUBackend();
      const t = be.alloc(8, 'f32', 'small');
      await expect(be.read(t, 4, 5)).rejects.toThrow(/'small'/);
      expect(() => be.upload(t, new Float32Array(9))).toThrow(/'small'/);
      be.destroy();
    });
  });
});
