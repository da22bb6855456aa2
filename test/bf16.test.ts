// bf16 weight storage: on WebGPU a bf16 tensor really takes 2 bytes per element (packed pairs, unpacked by the
// kernels' accessors); the host backends keep bf16-rounded f32. Either way every op reading a bf16 tensor must give
// exactly what it gives on f32 tensors holding the same rounded values.
import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import type { Backend, Tensor } from '../src/backend/types.js';
import { Kind, Qwen2, qwen2ParamShapes, type Qwen2Config } from '../src/model/qwen2.js';
import { roundToBf16 } from '../src/io/safetensors.js';
import { maxRelErr, randn } from './_conformance.js';
import { testBackends } from './_backends.js';

const withSplit = {
  name: 'webgpu (512-byte chunks)',
  make: async () => (await import('../src/backend/webgpu.js')).createWebGPUBackend({ maxBindingBytes: 512 } as never),
};

for (const { name, make } of [...testBackends(), ...(testBackends().some((b) => b.name === 'webgpu') ? [withSplit] : [])]) {
  describe(`bf16 storage on ${name}`, () => {
    let be: Backend | null = null;
    const get = async () => (be ??= await make());
    afterAll(() => be?.destroy());

    it('upload rounds to nearest even; read returns the rounded values (odd sizes, offsets)', async () => {
      const b = await get();
      const data = randn(301, 1, 3);
      const t = b.alloc(301, 'bf16', 'w');
      b.upload(t, data);
      expect(Array.from(await b.read(t))).toEqual(Array.from(roundToBf16(data)));
      expect(Array.from(await b.read(t, 7, 100))).toEqual(Array.from(roundToBf16(data).slice(7, 107)));
      expect(Array.from(await b.read(t, 300, 1))).toEqual([roundToBf16(data)[300]]);
      b.free(t);
    });

    it('matmul (B and bias bf16, both layouts), embedding, rmsNorm and copy2d read bf16 inputs exactly', async () => {
      const b = await get(),
        ref = new CpuBackend();
      const M = 5,
        N = 37,
        K = 29,
        V = 41,
        H = 29;
      const A = randn(M * K, 2),
        W = randn(N * K, 3),
        bias = randn(N, 4),
        E = randn(V * H, 5),
        g = randn(H, 6);
      const ids = new Int32Array([3, 40, 0, 3, 17]);
      const run = async (be: Backend, wdt: 'bf16' | 'f32') => {
        const mk = (d: Float32Array | Int32Array, dt: 'bf16' | 'f32' | 'i32') => {
          const t = be.alloc(d.length, dt);
          be.upload(t, dt === 'f32' && wdt === 'f32' && d instanceof Float32Array && d !== A ? roundToBf16(d) : d);
          return t;
        };
        const a = mk(A, 'f32'),
          w = mk(W, wdt),
          bi = mk(bias, wdt),
          e = mk(E, wdt),
          gw = mk(g, wdt),
          id = mk(ids, 'i32');
        const c1 = be.alloc(M * N),
          c2 = be.alloc(M * K),
          emb = be.alloc(M * H),
          y = be.alloc(M * H),
          r = be.alloc(M),
          cp = be.alloc(2 * N);
        be.matmul({ a, b: w, c: c1, M, N, K, transB: true, bias: bi });
        be.matmul({ a: c1, b: w, c: c2, M, N: K, K: N }); // dX = dY @ W with W [N, K] not transposed
        be.embedding({ ids: id, table: e, out: emb, rows: M, dim: H });
        be.rmsNorm({ x: emb, w: gw, y, rstd: r, rows: M, dim: H, eps: 1e-6 });
        be.copy2d({ src: w, dst: cp, rows: 2, cols: N, srcOff: 3, srcStride: K, dstStride: N });
        const out: Record<string, Float32Array> = {};
        for (const [k, t] of Object.entries({ c1, c2, emb, y, cp } as Record<string, Tensor>)) out[k] = (await be.read(t)) as Float32Array;
        return out;
      };
      const got = await run(b, 'bf16'),
        want = await run(ref, 'f32');
      for (const k of Object.keys(want)) expect(maxRelErr(got[k], want[k]), k).toBeLessThan(1e-5);
    });
  });
}

describe('a model with its frozen weights stored as bf16', () => {
  const config: Qwen2Config = {
    vocab_size: 50,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: true,
    max_position_embeddings: 64,
  };
  const tensors = () => {
    const m = new Map<string, Float32Array>();
    let seed = 1;
    for (const [n, sh] of qwen2ParamShapes(config))
      m.set(
        n,
        n.includes('norm')
          ? new Float32Array(sh.reduce((a, b) => a * b)).fill(1)
          : randn(
              sh.reduce((a, b) => a * b),
              seed++,
              0.3,
            ),
      );
    return m;
  };
  for (const { name, make } of testBackends()) {
    it(`${name}: two-trunk training with a bf16 language trunk equals f32 with pre-rounded weights`, async () => {
      const be = await make();
      const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 7) % 50),
        kind = new Uint8Array(12),
        trunk = new Uint8Array(12);
      kind[5] = kind[6] = Kind.Latent;
      trunk[5] = trunk[6] = 1;
      const inp = { B: 1, T: 12, ids, labels: ids, kind, trunk };
      const lossAndGrad = async (bf16: boolean) => {
        const t = tensors();
        if (!bf16) for (const [k, v] of t) t.set(k, roundToBf16(v));
        const m = Qwen2.fromTensors(be, config, t);
        if (bf16) {
          // the latent trunk must start from the same (rounded) weights: convert first, then copy
          m.setTrainable(() => false);
          expect(await m.storeFrozenAs('bf16')).toBeGreaterThan(0);
        }
        m.enableTwoTrunk();
        if (bf16) for (const n of m.trainableNames()) expect(m.param(n).dtype).toBe('f32');
        if (bf16) expect(m.param('model.layers.0.mlp.up_proj.weight').dtype).toBe('bf16');
        m.zeroGrads();
        const r = await m.forward(inp, { grad: true, lossScale: 1 / 11 });
        m.backward();
        const g = await m.readGrad('latent.model.layers.0.self_attn.q_proj.weight');
        m.destroy();
        return { loss: r.lossSum / r.labelCount, g };
      };
      const a = await lossAndGrad(true),
        b = await lossAndGrad(false);
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5);
      expect(maxRelErr(a.g, b.g)).toBeLessThan(1e-4);
      be.destroy();
    });
  }
});
