// The threaded WASM backend (src/backend/wasm-threads.ts): the op-by-op conformance suite with every op forced
// through a 3-thread pool (odd shapes, so parts are uneven and some threads get nothing) and through 2 threads with
// 4 parts each (partsPerThread), bit-identical training for 1, 2 and 3 threads with 1 or 4
// parts per thread in both builds (plain and FMA), and the one-thread fallback where shared memory is missing.
import { describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/types.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm.js';
import { Qwen2, qwen2ParamShapes, type Qwen2Config } from '../src/model/qwen2.js';
import { AdamW } from '../src/train/adamw.js';
import { backendConformance, randn } from './_conformance.js';

backendConformance('wasm (3 threads, every op threaded)', () => createWasmBackend({ threads: 3, parallelThreshold: 0 }));
backendConformance('wasm (3 threads, plain build without FMA)', () => createWasmBackend({ threads: 3, parallelThreshold: 0, fma: false }));
backendConformance('wasm (2 threads, 4 parts each)', () => createWasmBackend({ threads: 2, parallelThreshold: 0, partsPerThread: 4 }));

const config: Qwen2Config = {
  vocab_size: 203,
  hidden_size: 72,
  intermediate_size: 136,
  num_hidden_layers: 2,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
  max_position_embeddings: 256,
};

/** Three AdamW steps on a batch of 3 sequences; returns every loss and every parameter after the last step. */
async function train(be: Backend): Promise<{ losses: number[]; params: Float32Array[] }> {
  const tensors = new Map<string, Float32Array>();
  let seed = 7;
  for (const [name, shape] of qwen2ParamShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    tensors.set(name, name.includes('norm') ? new Float32Array(n).fill(1) : randn(n, seed++, 0.08));
  }
  const model = Qwen2.fromTensors(be, config, tensors);
  const opt = new AdamW(model);
  const B = 3,
    T = 45;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 11) % config.vocab_size);
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    model.zeroGrads();
    const r = await model.forward({ B, T, ids, labels: ids }, { grad: true, lossScale: 1 / (B * (T - 1)) });
    model.backward();
    await opt.update(3e-3);
    losses.push(r.lossSum);
  }
  const params = [...(await model.exportTensors()).values()].map((t) => t.data);
  opt.destroy();
  model.destroy();
  return { losses, params };
}

describe('wasm threads: results do not depend on the thread count', () => {
  for (const fma of [false, true]) {
    it(`training losses and parameters are bit-identical for 1, 2 and 3 threads, 1 or 4 parts per thread (${fma ? 'FMA' : 'plain'} build)`, async () => {
      const runs: Awaited<ReturnType<typeof train>>[] = [];
      for (const [threads, partsPerThread] of [[1], [2], [2, 4], [3], [3, 4]]) {
        const be = (await createWasmBackend({ threads, fma, parallelThreshold: 0, partsPerThread })) as WasmBackend;
        expect(be.threads).toBe(threads);
        runs.push(await train(be));
        be.destroy();
      }
      expect(runs[0].losses.every(Number.isFinite)).toBe(true);
      expect(runs[0].losses[2]).toBeLessThan(runs[0].losses[0]); // it trains
      for (const r of runs.slice(1)) {
        expect(r.losses).toEqual(runs[0].losses);
        r.params.forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(runs[0].params[i].buffer)), `param ${i}`).toBe(true));
      }
    });
  }
});

describe('wasm FMA build', () => {
  it('is picked where relaxed SIMD validates, and really fuses (its matmul differs from the plain build in the last bits)', async () => {
    const fused = (await createWasmBackend({ threads: 1 })) as WasmBackend,
      plain = (await createWasmBackend({ threads: 1, fma: false })) as WasmBackend;
    expect(plain.fma).toBe(false);
    // Node 20 (the engines field's minimum) gets the V8 flag at runtime, so FMA must be on in every supported Node
    expect(fused.fma).toBe(true);
    const M = 16,
      N = 24,
      K = 300,
      av = randn(M * K, 1),
      bv = randn(N * K, 2);
    const run = async (be: Backend) => {
      const a = be.alloc(M * K),
        b = be.alloc(N * K),
        c = be.alloc(M * N);
      be.upload(a, av);
      be.upload(b, bv);
      be.matmul({ a, b, c, M, N, K, transB: true });
      return be.read(c);
    };
    const [x, y] = [await run(fused), await run(plain)];
    let differ = 0;
    for (let i = 0; i < x.length; i++) {
      expect(Math.abs(x[i] - y[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(y[i])));
      if (x[i] !== y[i]) differ++;
    }
    expect(differ).toBeGreaterThan(0);
    fused.destroy();
    plain.destroy();
  });
});

describe('wasm threads: options and fallback', () => {
  it('rejects a bad thread count, naming the option', async () => {
    await expect(createWasmBackend({ threads: 0 })).rejects.toThrow(/threads must be an integer/);
    await expect(createWasmBackend({ threads: 2, partsPerThread: 0 })).rejects.toThrow(/partsPerThread must be an integer in 1..64, got 0/);
    await expect(createWasmBackend({ threads: 1.5 })).rejects.toThrow(/threads/);
  });

  it('falls back to one thread, and says why, where shared memory is unavailable (a page without COOP/COEP)', async () => {
    const RealMemory = WebAssembly.Memory;
    const g = globalThis as { crossOriginIsolated?: boolean };
    const hadIsolated = 'crossOriginIsolated' in g;
    // What a browser does without cross-origin isolation: no shared WebAssembly.Memory.
    (WebAssembly as { Memory: unknown }).Memory = function Memory(d: WebAssembly.MemoryDescriptor) {
      if (d.shared) throw new TypeError('shared memory needs cross-origin isolation');
      return new RealMemory(d);
    };
    g.crossOriginIsolated = false;
    let be: WasmBackend;
    try {
      be = (await createWasmBackend({ threads: 4 })) as WasmBackend;
    } finally {
      (WebAssembly as { Memory: unknown }).Memory = RealMemory;
      if (!hadIsolated) delete g.crossOriginIsolated;
    }
    expect(be.threads).toBe(1);
    expect(be.info).toMatch(/not cross-origin isolated/);
    // and it still computes
    const a = be.alloc(5);
    be.upload(a, new Float32Array([1, 2, 3, 4, 5]));
    be.scale({ x: a, s: 2, n: 5 });
    expect(Array.from(await be.read(a))).toEqual([2, 4, 6, 8, 10]);
    be.destroy();
  });
});

describe('bench/cpu-train.ts paired thread ratio', () => {
  it('alternates 1-thread and 2-thread steps and reports the geometric mean ratio inside its 95% interval (no timing asserted)', async () => {
    const { pairedThreadRatio } = await import('../bench/cpu-train.js');
    const r = await pairedThreadRatio('small', 2, 3);
    expect(r.pairs).toBe(3);
    for (const x of [r.ratio, r.lo, r.hi, r.median, r.ms1, r.msT]) expect(Number.isFinite(x) && x > 0).toBe(true);
    expect(r.lo).toBeLessThanOrEqual(r.ratio);
    expect(r.ratio).toBeLessThanOrEqual(r.hi);
  });
});
