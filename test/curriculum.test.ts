// The sub-step curriculum (src/latent/curriculum.ts): which positions are latents / pause slots / scratch text at
// each stage, step-decoding targets, the stage schedule and mixing, and the serial preset's expansion coverage.
import { describe, expect, it } from 'vitest';
import { Kind } from '../src/model/qwen2.js';
import {
  buildCurriculumSequence,
  curriculumStage,
  mixedStage,
  plainForm,
  scratchForm,
  scratchText,
  substepResult,
  type SubstepRow,
} from '../src/latent/curriculum.js';
import { EXTRA_BOL, EXTRA_EOL, EXTRA_PAUSE0 } from '../src/latent/sequence.js';
import { withSubsteps } from '../src/latent/substeps.js';
import { expandAnnotation } from '../src/data/expand.js';
import { generateProblems, SYNTH_PRESETS } from '../src/data/synth.js';
import { splitRow } from '../src/setup/loaders.js';

// one token per character: positions are easy to count
const tok = { encode: (s: string) => Int32Array.from([...s].map((c) => c.charCodeAt(0))) };
const decode = (ids: ArrayLike<number>) => String.fromCharCode(...Array.from(ids));

const row: SubstepRow = {
  question: 'Q?',
  steps: ['a 48 * 37 = ', '1776 b, 1776 + 5 = ', '1781 c.'],
  final: '1781',
  substeps: [['48*30 = 1440', '48*7 = 336', '1440 + 336 = 1776'], ['1776 + 5 = 1781']],
};

/** Kinds between the end of steps[i] and its result, as a compact string: B/E markers, L latent, P pause, t text. */
function layout(seq: ReturnType<typeof buildCurriculumSequence>, i: number): string {
  let s = '';
  for (let p = seq.beforeBreak[i] + 1; p < seq.afterBreak[i]; p++) {
    if (seq.kind[p] === Kind.Latent) s += 'L';
    else if (seq.kind[p] === Kind.Extra) s += seq.extra[p] === EXTRA_BOL ? 'B' : seq.extra[p] === EXTRA_EOL ? 'E' : 'P';
    else s += 't';
  }
  return s;
}
const textBetween = (seq: ReturnType<typeof buildCurriculumSequence>, i: number) =>
  decode(
    Array.from(seq.ids.slice(seq.beforeBreak[i] + 1, seq.afterBreak[i])).filter(
      (_, j) => seq.kind[seq.beforeBreak[i] + 1 + j] === Kind.Token,
    ),
  );

describe('sub-step curriculum layouts', () => {
  it('stage 0 writes every sub-step as labelled text and no slots', () => {
    const seq = buildCurriculumSequence(row, tok, { fill: 'latent', c: 2, stage: 0 });
    expect(seq.spans).toEqual([]);
    expect(seq.kind.includes(Kind.Latent)).toBe(false);
    expect(textBetween(seq, 0)).toBe(row.substeps[0].map(scratchText).join(''));
    expect(textBetween(seq, 1)).toBe(scratchText('1776 + 5 = 1781'));
    expect(seq.reasoningPositions).toEqual([row.substeps[0].map(scratchText).join('').length, scratchText('1776 + 5 = 1781').length]);
    // scratch text is trained on (labels present), the question is not
    for (let p = seq.beforeBreak[0] + 1; p < seq.afterBreak[0]; p++) expect(seq.labels[p]).toBe(seq.ids[p]);
    expect(seq.labels[0]).toBe(-100);
    expect(decode(seq.ids.slice(seq.afterBreak[0], seq.afterBreak[0] + 4))).toBe('1776');
  });

  it('stage s replaces the first s sub-steps of every breakpoint by c latents each', () => {
    const s1 = buildCurriculumSequence(row, tok, { fill: 'latent', c: 2, stage: 1 });
    expect(layout(s1, 0)).toBe('BLLE' + 't'.repeat(scratchText('48*7 = 336').length + scratchText('1440 + 336 = 1776').length));
    expect(textBetween(s1, 0)).toBe(scratchText('48*7 = 336') + scratchText('1440 + 336 = 1776'));
    expect(layout(s1, 1)).toBe('BLLE'); // its only sub-step is replaced
    const s2 = buildCurriculumSequence(row, tok, { fill: 'latent', c: 2, stage: 2 });
    expect(layout(s2, 0)).toBe('BLLLLE' + 't'.repeat(scratchText('1440 + 336 = 1776').length));
    const sAll = buildCurriculumSequence(row, tok, { fill: 'latent', c: 2, stage: Infinity });
    expect(layout(sAll, 0)).toBe('BLLLLLLE');
    expect(layout(sAll, 1)).toBe('BLLE');
    expect(sAll.reasoningPositions).toEqual([8, 4]);
    expect(sAll.spans.map((s) => s.latents.length)).toEqual([6, 2]);
    // slots and markers never carry labels (the text after them does)
    for (const sp of sAll.spans)
      for (const p of [sp.bol, ...sp.latents, sp.eol]) expect(sp.latents.includes(p) || p === sp.bol || p === sp.eol).toBe(true);
    for (const sp of sAll.spans) for (const p of [sp.bol, ...sp.latents, sp.eol]) expect(sAll.labels[p]).toBe(-100);
    // the text outside the breakpoints is the same at every stage
    const outside = (seq: typeof s1) =>
      decode(
        Array.from(seq.ids).filter((_, p) => seq.kind[p] === Kind.Token && !seq.afterBreak.some((a, i) => p > seq.beforeBreak[i] && p < a)),
      );
    expect(outside(s1)).toBe(outside(sAll));
    expect(outside(s2)).toBe(outside(buildCurriculumSequence(row, tok, { fill: 'latent', c: 1, stage: 0 })));
  });

  it('pause on the same schedule fills exactly the same positions with pause rows', () => {
    for (const stage of [0, 1, 2, 3, Infinity]) {
      const lat = buildCurriculumSequence(row, tok, { fill: 'latent', c: 2, stage });
      const pau = buildCurriculumSequence(row, tok, { fill: 'pause', c: 2, stage, maxPause: 4 });
      expect(pau.ids.length).toBe(lat.ids.length);
      expect(pau.spans).toEqual(lat.spans);
      for (let p = 0; p < lat.ids.length; p++) {
        if (lat.kind[p] === Kind.Latent) {
          expect(pau.kind[p]).toBe(Kind.Extra);
          expect(pau.extra[p]).toBeGreaterThanOrEqual(EXTRA_PAUSE0);
          expect(pau.extra[p]).toBeLessThan(EXTRA_PAUSE0 + 4);
        } else expect([pau.kind[p], pau.ids[p], pau.labels[p]]).toEqual([lat.kind[p], lat.ids[p], lat.labels[p]]);
      }
    }
  });

  it('step decoding asks each group of c slots for the result of the sub-step it replaced', () => {
    expect(substepResult('1440 + 336 = 1776')).toBe('1776');
    const seq = buildCurriculumSequence(row, tok, { fill: 'latent', c: 2, stage: Infinity, stepDecode: true });
    const sp = seq.spans[0];
    // group j = slots [2j, 2j+1]; the output at slot p predicts labels[p+1]
    const target = (p: number) => String.fromCharCode(seq.labels[p + 1]);
    expect([target(sp.latents[0]), target(sp.latents[1])]).toEqual(['1', '4']); // 1440
    expect([target(sp.latents[2]), target(sp.latents[3])]).toEqual(['3', '3']); // 336
    expect([target(sp.latents[4]), target(sp.latents[5])]).toEqual(['1', '7']); // 1776
    expect(seq.auxLabels).toHaveLength(8);
    for (const p of seq.auxLabels!) expect(seq.kind[p]).not.toBe(Kind.Token);
    const plain = buildCurriculumSequence(row, tok, { fill: 'latent', c: 2, stage: Infinity });
    expect(plain.auxLabels).toBeUndefined();
    expect(seq.labelCount - seq.auxLabels!.length).toBe(plain.labelCount);
  });

  it('rejects rows whose sub-steps do not match their breakpoints', () => {
    expect(() => buildCurriculumSequence({ ...row, substeps: [row.substeps[0]] }, tok, { fill: 'latent', c: 1, stage: 0 })).toThrow(
      /2 breakpoints but 1 sub-step/,
    );
    expect(() => buildCurriculumSequence(row, tok, { fill: 'latent', c: 0, stage: 0 })).toThrow(/positive integer/);
  });
});

describe('stage schedule and mixing', () => {
  it('advances every stageSteps and ends with every sub-step replaced', () => {
    expect([0, 9, 10, 19, 20, 29, 30, 500].map((s) => curriculumStage(s, 4, 10))).toEqual([0, 0, 1, 1, 2, 2, Infinity, Infinity]);
    expect(curriculumStage(0, 1, 10)).toBe(Infinity);
  });
  it('mixes in earlier stages at the requested share, deterministically', () => {
    const stages = Array.from({ length: 4000 }, (_, i) => mixedStage(2, 0.25, 3, Math.floor(i / 8), i % 8, 3));
    expect(stages.every((s) => s === 2 || s === 0 || s === 1)).toBe(true);
    expect(stages.every((s, i) => mixedStage(2, 0.25, 3, Math.floor(i / 8), i % 8, 3) === s)).toBe(true);
    const earlier = stages.filter((s) => s !== 2).length;
    expect(earlier / 4000).toBeGreaterThan(0.2);
    expect(earlier / 4000).toBeLessThan(0.3);
    expect(stages.filter((s) => s === 0).length).toBeGreaterThan(0.3 * earlier);
    expect(mixedStage(0, 0.5, 0, 1, 1, 3)).toBe(0);
    expect(mixedStage(Infinity, 0, 0, 1, 1, 3)).toBe(Infinity);
    const fromFinal = new Set(Array.from({ length: 200 }, (_, i) => mixedStage(Infinity, 0.99, 1, i, 0, 3)));
    expect([...fromFinal].every((s) => s === Infinity || (s >= 0 && s < 3))).toBe(true);
  });
});

describe('serial preset', () => {
  it('puts a multi-sub-step 2-digit x 2-digit product at almost every breakpoint', () => {
    const rows = generateProblems({ ...SYNTH_PRESETS.serial, seed: 0, count: 150, split: 'test' }).map(splitRow);
    const { rows: sub, coverage } = withSubsteps(rows, expandAnnotation);
    expect(coverage.annotations).toBe(150);
    expect(coverage.failed).toEqual({});
    // products by a multiple of 10 are one step; the rest take two partial products and their sum
    expect(coverage.multiStep / coverage.annotations).toBeGreaterThan(0.8);
    expect(coverage.meanSubsteps).toBeGreaterThan(2.5);
    for (const r of sub) expect(r.substeps).toHaveLength(r.steps.length - 1);
    // the last sub-step of each breakpoint states the calculator's result
    for (const r of sub) r.substeps.forEach((s, i) => expect(substepResult(s[s.length - 1])).toBe(r.annotations![i].result));
    expect(generateProblems({ ...SYNTH_PRESETS.serial, seed: 0, count: 500, split: 'test' })).toHaveLength(500); // the grid's held-out set
  });
});

describe('Phase1Trainer with a sub-step schedule', () => {
  it('advances stages, resets the optimizer, trains with both objectives and evaluates the final layout', async () => {
    const { Phase1Trainer } = await import('../src/latent/trainer.js');
    const { tinyModel, config } = await import('./_char-model.js');
    // the char model's shape over this file's one-token-per-character code points (vocabulary 128)
    const model = tinyModel(3, 0.2, { ...config, vocab_size: 128 });
    const charTok = { ...tok, decode };
    const mk = (a: number, b: number): SubstepRow => {
      const e = expandAnnotation({ expr: `${a}*${b}`, result: String(a * b) });
      if (!e.ok) throw new Error(e.detail);
      return { question: `${a}*${b}?`, steps: [`${a} * ${b} = `, `${a * b}.`], final: String(a * b), substeps: [e.steps] };
    };
    const train = [mk(23, 45), mk(31, 72), mk(56, 19), mk(44, 67)],
      test = [mk(12, 34)];
    expect(train[0].substeps[0]).toHaveLength(3);
    const trainer = new Phase1Trainer(model, charTok, train, test, {
      mode: 'full',
      condition: 'latent',
      k: 3,
      steps: 3,
      batchSize: 1,
      lr: 1e-3,
      evalEvery: 0,
      evalRows: 1,
      genRows: 0,
      seed: 0,
      substeps: { kind: 'internalize', c: 1, stages: 3, stageSteps: 1, resetOptimizer: true, stepDecode: 1, distill: 1 },
    });
    const recs = [];
    for (let i = 0; i < 3; i++) {
      recs.push(await trainer.trainStep());
      expect(trainer.opt.step).toBe(1); // a fresh optimizer at every stage change (each stage lasts one step here)
    }
    expect(recs.map((r) => r.stage)).toEqual([0, 1, -1]);
    expect(recs[0].distillLoss).toBe(0); // stage 0 has no slots to distil into
    expect(recs[1].distillLoss!).toBeGreaterThan(0);
    expect(recs.every((r) => Number.isFinite(r.loss))).toBe(true);
    const e = await trainer.evaluate(false);
    expect(e.reasoningPositions).toBe(5); // <bol>, three latents, <eol>
    expect(e.resultTokenAccuracy).toBeGreaterThanOrEqual(0);
    expect(e.usage.gapSwapped).toBeDefined();
    model.destroy();
  });
});

describe('text pieces tokenize as the whole text does', () => {
  // A sequence is encoded piece by piece (question, steps, sub-steps), but a model is pretrained on whole texts: where
  // a piece boundary splits what the pre-tokenizer would join (the last step's "." and the "\n" of "#### N" are one
  // token, '.\n'), fine-tuning would teach token pairs that whole-text tokenization never produces.
  it('scratch (stage 0) and plain (k = 0) sequences equal the whole text through the real Qwen2 tokenizer', async () => {
    const { Tokenizer } = await import('../src/text/tokenizer.js');
    const { buildSequence } = await import('../src/latent/sequence.js');
    const full = await Tokenizer.load();
    const rows = withSubsteps(
      [
        ...generateProblems({ ...SYNTH_PRESETS.serial, seed: 3, count: 20, split: 'train' }),
        ...generateProblems({ ...SYNTH_PRESETS.default, seed: 3, count: 20, split: 'train' }),
      ].map(splitRow),
      expandAnnotation,
    ).rows;
    for (const r of rows) {
      // the whole texts as examples/pretrain.ts writes them
      const seq = buildCurriculumSequence(r, full, { fill: 'latent', c: 1, stage: 0 });
      expect(Array.from(seq.ids)).toEqual(Array.from(full.encode(scratchForm(r)), Number));
      const p = buildSequence(r, full, { condition: 'none', k: 0 });
      expect(Array.from(p.ids)).toEqual(Array.from(full.encode(plainForm(r)), Number));
    }
  });
});
