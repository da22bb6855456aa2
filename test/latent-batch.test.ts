// Batched phase-1 forwards (src/latent/batch.ts): several latent sequences with different lengths and latent
// layouts in one forward give the losses and gradients of one forward each (up to float summation order; both cut
// rules, on CPU, WASM, gpu.js and WebGPU where an adapter exists), the trainer's steps match with batching on and
// off, and batched steps are bit-identical for any WASM thread count.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import type { Backend } from '../src/backend/types.js';
import { createWasmBackend } from '../src/backend/wasm.js';
import { createGpujsBackend } from '../src/backend/gpujs.js';
import { createWebGPUBackend } from '../src/backend/webgpu.js';
import { webgpuUnavailable } from './_backends.js';
import { Kind, Qwen2, qwen2ParamShapes } from '../src/model/qwen2.js';
import { charTok, config, EOS } from './_char-model.js';
import { batchGroups, packSequences } from '../src/latent/batch.js';
import { inputOf } from '../src/latent/diagnostics.js';
import { buildSequence, type SplitRow } from '../src/latent/sequence.js';
import { Phase1Trainer, type Phase1Options } from '../src/latent/trainer.js';
import { Rng } from '../src/data/rng.js';
import type { SubstepRow } from '../src/latent/curriculum.js';
import { expandAnnotation } from '../src/data/expand.js';

const noWebGPU = await webgpuUnavailable('latent-batch: WebGPU cases skipped');

/** The shared tiny model's weights on any backend (test/_char-model.ts builds it on the CPU backend only). */
function tinyModel(be: Backend, seed = 1): Qwen2 {
  const rng = new Rng(seed);
  const t = new Map<string, Float32Array>();
  for (const [n, sh] of qwen2ParamShapes(config))
    t.set(
      n,
      Float32Array.from({ length: sh.reduce((a, b) => a * b) }, () => (n.includes('norm') ? 1 : 0.2 * rng.normal())),
    );
  return Qwen2.fromTensors(be, config, t);
}

/** Problems of different lengths and step counts, so latent positions differ between rows. */
function rows(n: number, seed: number): SplitRow[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const a = rng.int(2, 99),
      b = rng.int(2, 9),
      c = rng.int(2, 999);
    const steps = [`${a}*${b} = `, `${a * b}. ${a * b}+${c} = `, `${a * b + c}.`];
    if (i % 2) steps.splice(2, 0, `${a * b + c}. ${a * b + c}-${b} = `, `${a * b + c - b}. so `);
    return {
      question: `what is ${a}*${b}+${c}${i % 2 ? `-${b}` : ''}${'?'.repeat(1 + i)}`,
      steps,
      final: String(i % 2 ? a * b + c - b : a * b + c),
    };
  });
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  expect(a.length, what).toBe(b.length);
  let scale = 0,
    err = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    err = Math.max(err, Math.abs(a[i] - b[i]));
  }
  expect(err, what).toBeLessThanOrEqual(tol * Math.max(1, scale));
};

describe('batched latent forwards', () => {
  const seqs = rows(5, 3).map((r) => buildSequence(r, charTok, { condition: 'latent', k: 2, stage: Infinity, eosId: EOS }));

  it('the rows differ in length and latent positions (what the test is about)', () => {
    expect(new Set(seqs.map((s) => s.ids.length)).size).toBeGreaterThan(2);
    const layouts = seqs.map((s) => [...s.kind].flatMap((k, t) => (k === Kind.Latent ? [t] : [])).join(','));
    expect(new Set(layouts).size).toBe(seqs.length);
  });

  it('one sequence packs to exactly its own input', () => {
    const { input, T } = packSequences([seqs[0]], false);
    const own = inputOf(seqs[0], false);
    expect(T).toBe(own.T);
    expect(Array.from(input.ids)).toEqual(Array.from(own.ids));
    expect(Array.from(input.kind!)).toEqual(Array.from(own.kind));
    expect(Array.from(input.extra!)).toEqual(Array.from(own.extra));
    expect(Array.from(input.labels!)).toEqual(Array.from(own.labels));
    expect(input.labelWeights).toBeUndefined();
  });

  it('groups stay within the row budget, in order; two-trunk groups share routing', () => {
    const lens = seqs.map((s) => s.ids.length),
      T = Math.max(...lens);
    expect(batchGroups(seqs, 1e9, false)).toEqual([[0, 1, 2, 3, 4]]);
    expect(batchGroups(seqs, 0, false)).toEqual([[0], [1], [2], [3], [4]]);
    for (const g of batchGroups(seqs, 2 * T, false)) expect(g.length * Math.max(...g.map((i) => lens[i]))).toBeLessThanOrEqual(2 * T);
    expect(batchGroups(seqs, 2 * T, false).flat()).toEqual([0, 1, 2, 3, 4]);
    // two-trunk: latent positions are routed to the latent trunk, so rows with different layouts never share
    expect(batchGroups(seqs, 1e9, true)).toEqual([[0], [1], [2], [3], [4]]);
    expect(batchGroups([seqs[0], seqs[0], seqs[1]], 1e9, true)).toEqual([[0, 1], [2]]);
  });

  const backends: [string, () => Promise<Backend>][] = [
    ['CPU', async () => new CpuBackend()],
    ['WASM', () => createWasmBackend({ threads: 1 })],
    ['gpu.js', () => createGpujsBackend()],
    ...(noWebGPU ? [] : ([['WebGPU', () => createWebGPUBackend()]] as [string, () => Promise<Backend>][])),
  ];
  const layouts: [string, boolean][] = [
    ['cut at the union of latent positions', false],
    ['aligned segments', true],
  ];
  for (const [bn, mk] of backends)
    for (const [ln, alignSegments] of layouts)
      it(`losses and gradients equal one forward per sequence (${bn}, ${ln})`, async () => {
        const be = await mk();
        const model = tinyModel(be);
        model.addParam(
          'latent.embeddings',
          [8, config.hidden_size],
          Float32Array.from({ length: 8 * config.hidden_size }, (_, i) => Math.sin(i) * 0.1),
        );
        model.setTrainable(() => true);
        const N = seqs.reduce((a, s) => a + s.labelCount, 0);
        const grads = async () =>
          new Map(await Promise.all([...model.grads].map(async ([n, g]) => [n, (await be.read(g)) as Float32Array] as const)));

        model.zeroGrads();
        const { input, T } = packSequences(seqs, false);
        const rb = await model.forward(input, { grad: true, lossScale: 1 / N, wantHidden: true, alignSegments });
        model.backward();
        const gb = await grads();

        model.zeroGrads();
        let lossSum = 0;
        for (const [b, s] of seqs.entries()) {
          const r = await model.forward(inputOf(s, false), { grad: true, lossScale: 1 / N, wantHidden: true });
          model.backward();
          lossSum += r.lossSum;
          close(rb.lossAt!.subarray(b * T, b * T + s.ids.length), r.lossAt!, 1e-6, `lossAt of sequence ${b}`);
          close(rb.hidden!.subarray(b * T * 16, (b * T + s.ids.length) * 16), r.hidden!, 1e-6, `hidden of sequence ${b}`);
          // the padded tail adds nothing
          expect(Array.from(rb.lossAt!.subarray(b * T + s.ids.length, (b + 1) * T)).every((x) => x === 0)).toBe(true);
        }
        expect(rb.labelCount).toBe(N);
        expect(rb.lossSum).toBeCloseTo(lossSum, 4);
        const gs = await grads();
        expect([...gb.keys()].sort()).toEqual([...gs.keys()].sort());
        for (const [n, g] of gs) close(gb.get(n)!, g, 1e-5, `grad ${n}`);
        // the latent chain carries gradient (otherwise the comparison above would not test the feedback path)
        expect(gs.get('latent.embeddings')!.some((x) => x !== 0)).toBe(true);
        model.destroy();
        be.destroy();
      });

  const trainerOpts = (batchForward: boolean, extra: Partial<Phase1Options> = {}) =>
    ({
      mode: 'full',
      condition: 'latent',
      k: 2,
      steps: 3,
      batchSize: 4,
      lr: 1e-2,
      evalEvery: 0,
      evalRows: 2,
      genRows: 0,
      seed: 5,
      eosId: EOS,
      batchForward,
      ...extra,
    }) as Phase1Options;

  it('trainer steps with batchForward on match steps with it off (loss, heads, weights)', async () => {
    for (const extra of [{}, { latentSupervision: 0.5 }, { mode: 'two-trunk' as const }]) {
      const run = async (batched: boolean) => {
        const tr = new Phase1Trainer(tinyModel(new CpuBackend()), charTok, rows(9, 1), rows(2, 2), trainerOpts(batched, extra));
        const recs = [];
        for (let i = 0; i < 3; i++) recs.push(await tr.trainStep());
        const w = await tr.model.exportTensors();
        tr.model.destroy();
        return { recs, w };
      };
      const a = await run(true),
        b = await run(false);
      for (let i = 0; i < 3; i++) {
        const what = `${JSON.stringify(extra)} step ${i + 1}`;
        expect(a.recs[i].tokens, what).toBe(b.recs[i].tokens);
        expect(a.recs[i].loss, what).toBeCloseTo(b.recs[i].loss, 5);
        expect(a.recs[i].gradNorm, what).toBeCloseTo(b.recs[i].gradNorm, 4);
        expect(a.recs[i].startLoss!, what).toBeCloseTo(b.recs[i].startLoss!, 5);
        expect(a.recs[i].endLoss!, what).toBeCloseTo(b.recs[i].endLoss!, 5);
      }
      for (const [n, t] of b.w)
        close(a.w.get(n)!.data as Float32Array, t.data as Float32Array, 1e-4, `${JSON.stringify(extra)} weight ${n}`);
    }
  });

  it('with sub-step distillation and step decoding too (hidden-state gradients placed per sequence)', async () => {
    const mk = (a: number, b: number, pad: number): SubstepRow => {
      const e = expandAnnotation({ expr: `${a}*${b}`, result: String(a * b) });
      if (!e.ok) throw new Error(e.detail);
      return {
        question: `what is ${a}*${b}${'?'.repeat(pad)}`,
        steps: [`${a} * ${b} = `, `${a * b}.`],
        final: String(a * b),
        substeps: [e.steps],
      };
    };
    const train = [mk(23, 45, 1), mk(31, 72, 4), mk(56, 19, 2), mk(44, 67, 6)];
    const run = async (batched: boolean) => {
      const tr = new Phase1Trainer(tinyModel(new CpuBackend(), 4), charTok, train, [mk(12, 34, 1)], {
        ...trainerOpts(batched),
        k: 3,
        batchSize: 4,
        substeps: { kind: 'internalize', c: 1, stages: 3, stageSteps: 1, stepDecode: 1, distill: 1 },
      });
      const recs = [];
      for (let i = 0; i < 3; i++) recs.push(await tr.trainStep());
      tr.model.destroy();
      return recs;
    };
    const a = await run(true),
      b = await run(false);
    expect(b[1].distillLoss!).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) {
      expect(a[i].loss, `step ${i + 1}`).toBeCloseTo(b[i].loss, 5);
      expect(a[i].distillLoss!, `step ${i + 1}`).toBeCloseTo(b[i].distillLoss!, 6);
      expect(a[i].gradNorm, `step ${i + 1}`).toBeCloseTo(b[i].gradNorm, 4);
    }
  });

  it('batched steps are bit-identical on 1 and 3 WASM threads', async () => {
    const run = async (threads: number) => {
      const be = await createWasmBackend({ threads, parallelThreshold: 0 });
      const tr = new Phase1Trainer(tinyModel(be), charTok, rows(9, 1), rows(2, 2), trainerOpts(true));
      const losses = [];
      for (let i = 0; i < 3; i++) losses.push((await tr.trainStep()).loss);
      const w = await tr.model.exportTensors();
      be.destroy();
      return { losses, w };
    };
    const a = await run(1),
      b = await run(3);
    expect(a.losses).toEqual(b.losses);
    for (const [n, t] of a.w) expect(Array.from(b.w.get(n)!.data), n).toEqual(Array.from(t.data));
  });
});
