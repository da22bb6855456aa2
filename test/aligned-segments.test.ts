// Aligned segments (src/model/qwen2.ts, ForwardOptions.alignSegments): attention with per-sequence query starts and
// rows (qStarts, qRows) against one call per sequence in the plain layout, bit for bit, on the CPU reference, WASM
// (1 and 3 threads), WebGPU (both kernel families; where an adapter exists) and gpu.js; the layout checks; the probes'
// shared forwards (forwardEach) against one forward per sequence; and that a backend without the capability refuses
// the arguments instead of ignoring them.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import type { Backend, Tensor } from '../src/backend/types.js';
import { createWasmBackend } from '../src/backend/wasm.js';
import { createGpujsBackend } from '../src/backend/gpujs.js';
import { createWebGPUBackend } from '../src/backend/webgpu.js';
import { forwardEach } from '../src/latent/batch.js';
import { Qwen2 } from '../src/model/qwen2.js';
import { inputOf } from '../src/latent/diagnostics.js';
import { buildSequence } from '../src/latent/sequence.js';
import { charTok, EOS, tinyModel } from './_char-model.js';
import { randn } from './_conformance.js';
import { webgpuUnavailable } from './_backends.js';

const noWebGPU = await webgpuUnavailable('aligned-segments: WebGPU cases skipped');

const Hq = 4,
  Hkv = 2,
  D = 8,
  kvCap = 14;
/** Three sequences at their own positions with their own numbers of rows (the second has none). */
const starts = [6, 0, 10],
  lens = [5, 0, 3];
const first = [0, 5, 5, 8];
const B = 3,
  R = 8;

/** Attention forward + backward in the aligned layout, and the same per sequence as B = 1 calls (plain layout). */
async function compare(be: Backend) {
  const q = randn(R * Hq * D, 1),
    g = randn(R * Hq * D, 2);
  const kc = randn(B * kvCap * Hkv * D, 3),
    vc = randn(B * kvCap * Hkv * D, 4);
  const T = (data: Float32Array | Int32Array | number, dtype: 'f32' | 'i32' = 'f32') => {
    const t = be.alloc(typeof data === 'number' ? data : data.length, dtype);
    if (typeof data !== 'number') be.upload(t, data);
    return t;
  };
  const read = async (t: Tensor) => Array.from((await be.read(t)) as Float32Array);
  // aligned: one call
  const a = { q: T(q), dOut: T(g), kCache: T(kc), vCache: T(vc), out: T(R * Hq * D), lse: T(R * Hq) };
  const grads = { dq: T(R * Hq * D), dkCache: T(kc.length), dvCache: T(vc.length) };
  const shape = { B, Tq: R, Hq, Hkv, D, qStart: Math.max(...starts), kvCap };
  const qs = { qStarts: T(Int32Array.from(starts), 'i32'), qRows: T(Int32Array.from(first), 'i32') };
  be.attention({ ...a, ...shape, ...qs });
  be.attentionBackward({ ...a, ...grads, ...shape, ...qs });
  const got = {
    out: await read(a.out),
    lse: await read(a.lse),
    dq: await read(grads.dq),
    dk: await read(grads.dkCache),
    dv: await read(grads.dvCache),
  };
  // per sequence: B = 1 calls over that sequence's rows and cache
  const want = { out: [] as number[], lse: [] as number[], dq: [] as number[], dk: [] as number[], dv: [] as number[] };
  const kvN = kvCap * Hkv * D;
  for (let b = 0; b < B; b++) {
    const n = lens[b],
      rows = (x: Float32Array) => x.slice(first[b] * Hq * D, (first[b] + n) * Hq * D);
    if (n === 0) {
      want.dk.push(...new Array(kvN).fill(0));
      want.dv.push(...new Array(kvN).fill(0));
      continue;
    }
    const o = { q: T(rows(q)), dOut: T(rows(g)), kCache: T(kc.slice(b * kvN, (b + 1) * kvN)), vCache: T(vc.slice(b * kvN, (b + 1) * kvN)) };
    const s = { B: 1, Tq: n, Hq, Hkv, D, qStart: starts[b], kvCap };
    const out = T(n * Hq * D),
      lse = T(n * Hq),
      dq = T(n * Hq * D),
      dk = T(kvN),
      dv = T(kvN);
    be.attention({ ...o, out, lse, ...s });
    be.attentionBackward({ ...o, out, lse, dq, dkCache: dk, dvCache: dv, ...s });
    want.out.push(...(await read(out)));
    want.lse.push(...(await read(lse)));
    want.dq.push(...(await read(dq)));
    want.dk.push(...(await read(dk)));
    want.dv.push(...(await read(dv)));
  }
  return { got, want };
}

describe('attention with per-sequence query starts and rows', () => {
  const backends: [string, () => Promise<Backend>][] = [
    ['cpu', async () => new CpuBackend()],
    ['wasm, 1 thread', () => createWasmBackend({ threads: 1 })],
    ['wasm, 3 threads', () => createWasmBackend({ threads: 3, parallelThreshold: 0 })],
    ['gpujs', () => createGpujsBackend()],
    // a kernel slice small enough that attention runs in query-row chunks
    ['gpujs, 210-element slices', () => createGpujsBackend({ maxSpan: 210 })],
    ...(noWebGPU
      ? []
      : ([
          ['webgpu, simple kernels', () => createWebGPUBackend({ kernels: 'simple' })],
          ['webgpu, tiled kernels (flash attention)', () => createWebGPUBackend({ kernels: 'tiled' })],
        ] as [string, () => Promise<Backend>][])),
  ];
  for (const [name, make] of backends)
    it(`equals one call per sequence, bit for bit (${name})`, async () => {
      const be = await make();
      const { got, want } = await compare(be);
      for (const k of Object.keys(got) as (keyof typeof got)[]) expect(got[k], k).toEqual(want[k]);
      // the comparison is not vacuous: every sequence with rows has output, and gradient reaches both caches
      expect(got.out.some((x) => x !== 0) && got.dk.some((x) => x !== 0) && got.dv.some((x) => x !== 0)).toBe(true);
      be.destroy();
    });

  it('refuses a layout that does not fit, naming the tensor and the sequence', async () => {
    // (WebGPU cannot check: the values live on the device; the model builds them, and out-of-range indices are
    // clamped by WebGPU's bounds checks, so they cannot reach other memory)
    for (const be of [new CpuBackend(), await createWasmBackend({ threads: 1 }), await createGpujsBackend()]) {
      const t = (n: number) => be.alloc(n);
      const i = (v: number[]) => {
        const x = be.alloc(v.length, 'i32', 'layout');
        be.upload(x, Int32Array.from(v));
        return x;
      };
      const base = { q: t(R * Hq * D), kCache: t(B * kvCap * Hkv * D), vCache: t(B * kvCap * Hkv * D), out: t(R * Hq * D), lse: t(R * Hq) };
      const shape = { B, Tq: R, Hq, Hkv, D, qStart: 10, kvCap };
      const call = (qStarts: number[], qRows: number[]) => () => be.attention({ ...base, ...shape, qStarts: i(qStarts), qRows: i(qRows) });
      expect(call([6, 0, 11], first), be.name).toThrow(/qStarts.*11.*outside \[0, 10\]/);
      expect(call([6, 0, 10], [0, 5, 5, 9]), be.name).toThrow(/qRows must run from 0 to Tq = 8/);
      expect(call([6, 0, 10], [0, 2, 2, 8]), be.name).toThrow(/sequence 2: 6 query rows from position 10 do not fit kvCap 14/);
      be.destroy();
    }
  });

  it('a backend without the capability refuses qStarts instead of ignoring them', () => {
    const be = new CpuBackend();
    Object.defineProperty(be, 'queryStarts', { value: false });
    const t = (n: number) => be.alloc(n);
    const qStarts = be.alloc(B, 'i32');
    const call = () =>
      be.attention({
        q: t(R * Hq * D),
        kCache: t(B * kvCap * Hkv * D),
        vCache: t(B * kvCap * Hkv * D),
        out: t(R * Hq * D),
        lse: t(R * Hq),
        B,
        Tq: 2,
        Hq,
        Hkv,
        D,
        qStart: 0,
        kvCap,
        qStarts,
      });
    expect(call).toThrow(/per-sequence query starts and rows \(qStarts, qRows\) not supported by this backend/);
  });
});

describe('forwardEach: the probes in shared aligned forwards', () => {
  it('gives each sequence the losses and hidden states of its own forward', async () => {
    const rows = [
      { question: 'what is 12*3+4?', steps: ['12*3 = ', '36. 36+4 = ', '40.'], final: '40' },
      { question: 'what is 7*8?', steps: ['7*8 = ', '56.'], final: '56' },
      { question: 'how much is 9+90+900 in all??', steps: ['9+90 = ', '99. 99+900 = ', '999.'], final: '999' },
      { question: 'no steps here', steps: ['just text.'], final: '1' },
    ];
    const seqs = rows.map((r) => buildSequence(r, charTok, { condition: 'latent', k: 2, stage: Infinity, eosId: EOS }));
    const ref = tinyModel(1, 0.2);
    const weights = new Map([...(await ref.exportTensors())].map(([k, v]) => [k, v.data]));
    // the begin/end markers the latent sequences use
    weights.set('latent.embeddings', randn(8 * ref.H, 9, 0.1));
    for (const be of [new CpuBackend(), await createWasmBackend({ threads: 2 })]) {
      const m = Qwen2.fromTensors(be, ref.config, weights);
      const shared = await forwardEach(
        m,
        seqs.map((seq) => ({ seq })),
        { wantHidden: true },
      );
      for (const [i, seq] of seqs.entries()) {
        const own = await m.forward(inputOf(seq, false), { wantHidden: true });
        expect(Array.from(shared[i].lossAt), `${be.name} lossAt ${i}`).toEqual(Array.from(own.lossAt!));
        expect(Array.from(shared[i].hidden!), `${be.name} hidden ${i}`).toEqual(Array.from(own.hidden!));
        expect(shared[i].lossSum, `${be.name} lossSum ${i}`).toBe(own.lossSum);
        expect(shared[i].labelCount).toBe(own.labelCount);
      }
      m.destroy();
      be.destroy();
    }
  });
});
