// RL keeps the phase-1 latent feedback (src/rl/feedback.ts, src/rl/initial.ts): from a gated and from a scaled
// phase-1 checkpoint (written by the phase-1 trainer itself, so its real state.json fields) the policy and the
// reference feed latents back as phase 1 did, the gate trains under GRPO like latent.embeddings, RL checkpoints
// record the feedback and a resume is bit-identical, and checkpoints whose feedback cannot be restored are refused
// naming the file. Tiny models on the CPU backend (exact, deterministic).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Qwen2 } from '../src/model/qwen2.js';
import { GATE_BIAS, GATE_WEIGHT, LATENT_EMBEDDINGS, TOKEN_EMBEDDINGS } from '../src/model/latent-params.js';
import { gatedFeedback } from '../src/model/gated-feedback.js';
import { parseSafetensors, toFloat32, writeSafetensors } from '../src/io/safetensors.js';
import { Phase1Trainer, type Phase1Options } from '../src/latent/trainer.js';
import { parseCheckpointState } from '../src/train/checkpoint-schema.js';
import { GrpoTrainer, type GrpoOptions, type Task } from '../src/rl/grpo.js';
import { replay } from '../src/rl/policy.js';
import { loadPhase1Checkpoint } from '../src/rl/initial.js';
import type { FeedbackSpec } from '../src/rl/feedback.js';
import type { Checker } from '../src/rl/rewards.js';
import type { Completion } from '../src/generation/decode.js';
import { charTok, EOS, tinyModel } from './_char-model.js';
import { writeTinyModel } from './_tiny-model.js';
import { handCompletion } from './_hand-completion.js';
import { arithRows, quietPhase1Options } from './_phase1.js';
import { expectSameWeights } from './_same-weights.js';

const phase1Options = (feedback: 'gated' | 'scaled'): Phase1Options =>
  quietPhase1Options({
    k: 2,
    steps: 2,
    seed: 5,
    feedback,
    // not the default 1, so that a temperature that is not carried over shows
    ...(feedback === 'gated' ? { feedbackTemperature: 0.7 } : {}),
  });

const tasks: Task[] = [
  { question: 'what is 2*3+4?', gold: '10' },
  { question: 'what is 5*5+1?', gold: '26' },
  { question: 'what is 3*3+3?', gold: '12' },
  { question: 'what is 7*2+2?', gold: '16' },
];
// an untrained model never gets an answer right: a reward that depends on the text alone gives groups variance
const lenient: Checker = (c) => ({ reward: (c.length % 3) / 2, format: c.includes('#'), extracted: null });

const rlOptions = (o: Partial<GrpoOptions> = {}): GrpoOptions => ({
  steps: 4,
  group: 3,
  questionsPerStep: 1,
  lr: 1e-2,
  beta: 0.05,
  eps: 0.2,
  ppoEpochs: 2,
  condition: 'latent',
  maxNewTokens: 6,
  temperature: 1,
  maxLatents: 3,
  latentBudget: 4,
  rewards: { formatReward: 0.1 },
  seed: 3,
  freshStartProb: 0.4,
  freshEndProb: 0.4,
  eosId: EOS,
  ...o,
});

const prompt = Array.from(charTok.encode('what is 2*3+4?\n'));
// two spans of fed-back latents (chains of 3 and 2), text after each, so every later token sees the feedback
const withLatents = handCompletion(prompt, [{ latents: 3 }, ...charTok.encode('6. '), { latents: 2 }, ...charTok.encode('10'), EOS], EOS);
const textOnly = handCompletion(prompt, [...charTok.encode('#### 9'), EOS], EOS);
const scored = (comps: Completion[], rewards: number[]) =>
  comps.map((comp, i) => ({
    task: tasks[0],
    comp,
    score: { reward: rewards[i], correct: rewards[i], format: 0, latents: comp.latents, extracted: null },
  }));

const tokenLogps = async (model: Qwen2, c: Completion) => Array.from((await replay(model, [c])).tokenLogp[0]);
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
const read = async (m: Qwen2, name: string) => Array.from((await m.be.read(m.param(name))) as Float32Array);

/** Rewrites a checkpoint's model.safetensors without the named tensors. */
function dropTensors(dir: string, names: string[]): void {
  const file = join(dir, 'model.safetensors');
  const st = parseSafetensors(new Uint8Array(readFileSync(file)), file);
  const kept = [...st.tensors.values()]
    .filter((e) => !names.includes(e.name))
    .map((e) => ({ name: e.name, dtype: 'F32' as const, shape: e.shape, data: toFloat32(e) }));
  writeFileSync(file, writeSafetensors(kept, st.metadata));
}

function editState(dir: string, edit: (s: Record<string, unknown>) => void): void {
  const file = join(dir, 'state.json');
  const s = JSON.parse(readFileSync(file, 'utf8'));
  edit(s);
  writeFileSync(file, JSON.stringify(s));
}

describe('RL keeps the phase-1 latent feedback', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'latentlm-rl-feedback-'));
  const p1: Record<'gated' | 'scaled', { dir: string; trainer: Phase1Trainer; spec: FeedbackSpec }> = {} as never;
  beforeAll(async () => {
    for (const kind of ['gated', 'scaled'] as const) {
      const trainer = new Phase1Trainer(tinyModel(3), charTok, arithRows(5, 1), arithRows(2, 2), phase1Options(kind));
      for (let i = 0; i < 2; i++) await trainer.trainStep();
      const dir = join(tmp, `p1-${kind}`);
      await trainer.save(dir);
      const st = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
      // what the phase-1 trainer wrote, in its own fields
      const spec: FeedbackSpec =
        kind === 'gated' ? { kind, temperature: st.options.feedbackTemperature } : { kind, scale: st.feedbackScale };
      p1[kind] = { dir, trainer, spec };
    }
  });
  afterAll(() => {
    for (const { trainer } of Object.values(p1)) trainer.model.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** A fresh base model (another seed: every weight must come from the checkpoint) with the phase-1 checkpoint over it. */
  const fromPhase1 = async (kind: 'gated' | 'scaled') => {
    const model = tinyModel(91);
    const start = await loadPhase1Checkpoint(p1[kind].dir, model);
    return { model, start };
  };

  for (const kind of ['gated', 'scaled'] as const)
    it(`from a ${kind} phase-1 checkpoint the policy and the reference feed latents back as phase 1 did`, async () => {
      const { trainer: phase1, spec } = p1[kind];
      expect(phase1.model.feedback.name).toMatch(kind);
      expect(spec.kind === 'gated' ? spec.temperature : spec.kind === 'scaled' ? spec.scale : NaN).toBeGreaterThan(0);
      const { model, start } = await fromPhase1(kind);
      expect(start.feedback).toEqual(spec);
      const want = await tokenLogps(phase1.model, withLatents);
      const tr = new GrpoTrainer(model, charTok, tasks, lenient, rlOptions({ feedback: start.feedback, ppoEpochs: 1 }), start.heads);
      expect(tr.feedback).toEqual(spec);
      // the policy's log-probs of a completion with latents are phase 1's, bit for bit
      expect(await tokenLogps(model, withLatents)).toEqual(want);
      // and identity feedback on the same weights gives others: the comparison can tell the feedbacks apart
      const plain = (await fromPhase1(kind)).model;
      expect(maxDiff(await tokenLogps(plain, withLatents), want)).toBeGreaterThan(1e-4);
      // the reference (made at the first update, beta > 0) feeds back the same way: at the first update the policy
      // is the reference, so the k3 KL of every action is 0 (with identity feedback in the reference it is not)
      const u = await tr.update(scored([withLatents, textOnly, withLatents], [1, 0, 0]));
      expect(u.replayed).toBe(3);
      expect(Math.abs(u.kl)).toBeLessThan(1e-9);
      tr.destroy();
      plain.destroy();
      model.destroy();
    });

  for (const mode of ['full', 'two-trunk'] as const)
    it(`GRPO trains the gate like latent.embeddings (${mode})`, async () => {
      const { model, start } = await fromPhase1('gated');
      if (mode === 'two-trunk') model.enableTwoTrunk();
      const tr = new GrpoTrainer(
        model,
        charTok,
        tasks,
        lenient,
        rlOptions({ feedback: start.feedback, beta: 0, ppoEpochs: 1 }),
        start.heads,
      );
      for (const name of [GATE_WEIGHT, GATE_BIAS]) expect(model.isTrainable(name), name).toBe(model.isTrainable(LATENT_EMBEDDINGS));
      const before = new Map<string, number[]>();
      for (const name of [GATE_WEIGHT, GATE_BIAS, LATENT_EMBEDDINGS, TOKEN_EMBEDDINGS]) before.set(name, await read(model, name));
      await tr.update(scored([withLatents, textOnly, withLatents], [1, 0, 0]));
      for (const name of [GATE_WEIGHT, GATE_BIAS, LATENT_EMBEDDINGS]) {
        expect(await read(model, name), name).not.toEqual(before.get(name));
        expect(tr.opt.m.has(name), `${name} has Adam moments (so they are saved and resumed)`).toBe(true);
      }
      // two-trunk: the language trunk (its embedding table is what the gate mixes) stays frozen
      if (mode === 'two-trunk') expect(await read(model, TOKEN_EMBEDDINGS)).toEqual(before.get(TOKEN_EMBEDDINGS));
      tr.destroy();
      model.destroy();
    });

  it('gated RL: N steps straight == N/2 + save + resume + N/2, bit for bit; the checkpoint records the feedback', async () => {
    const ck = join(tmp, 'rl-gated');
    const fresh = async () => {
      const a = await fromPhase1('gated'),
        ref = await fromPhase1('gated');
      return { ...a, reference: ref.model };
    };
    const s = await fresh();
    const o = rlOptions({ feedback: s.start.feedback });
    const gate0 = await read(s.model, GATE_WEIGHT);
    const straight = new GrpoTrainer(s.model, charTok, tasks, lenient, o, {}, s.reference);
    for (let i = 0; i < 4; i++) await straight.trainStep();
    const a = straight.records.map((r) => r.losses);
    // the run must use latents and move the gate for the comparison to mean anything
    expect(straight.records.some((r) => r.latentsPerAnswer > 0)).toBe(true);
    expect(a.flat().some((x) => x !== 0)).toBe(true);
    expect(await read(s.model, GATE_WEIGHT)).not.toEqual(gate0);

    const f = await fresh();
    const first = new GrpoTrainer(f.model, charTok, tasks, lenient, o, {}, f.reference);
    for (let i = 0; i < 2; i++) await first.trainStep();
    await first.save(ck);
    const state = JSON.parse(readFileSync(join(ck, 'state.json'), 'utf8'));
    expect(state.feedback).toEqual({ kind: 'gated', temperature: 0.7 });
    const saved = parseSafetensors(new Uint8Array(readFileSync(join(ck, 'model.safetensors'))), 'rl');
    expect(saved.tensors.has(GATE_WEIGHT) && saved.tensors.has(GATE_BIAS)).toBe(true);
    // resumed by a trainer given no feedback at all: the checkpoint's is restored into the policy and the reference
    const r = await fresh();
    const second = new GrpoTrainer(r.model, charTok, tasks, lenient, { ...o, feedback: undefined }, {}, r.reference);
    expect(second.feedback).toEqual({ kind: 'identity' });
    expect(await second.restore(ck)).toBe(true);
    expect(second.feedback).toEqual({ kind: 'gated', temperature: 0.7 });
    expect(r.model.feedback.name).toBe('gated(τ=0.7)');
    expect(r.reference.feedback.name).toBe('gated(τ=0.7)');
    for (let i = 0; i < 2; i++) await second.trainStep();
    expect([...first.records, ...second.records].map((x) => x.losses)).toEqual(a);
    await expectSameWeights(s.model, r.model);
    for (const t of [straight, first, second]) t.destroy();
    for (const m of [s.model, f.model, r.model]) m.destroy();
  });

  describe('refusals name the file and what is missing', () => {
    it('a gated phase-1 checkpoint without the gate tensors', async () => {
      const dir = join(tmp, 'p1-gated-nogate');
      await cp(p1.gated.dir, dir, { recursive: true });
      dropTensors(dir, [GATE_BIAS]);
      const model = tinyModel(91);
      await expect(loadPhase1Checkpoint(dir, model)).rejects.toThrow(
        `${dir}/model.safetensors: gated feedback needs the gate's parameters (${GATE_WEIGHT}, ${GATE_BIAS}), but '${GATE_BIAS}' is missing`,
      );
      model.destroy();
    });

    it('a scaled phase-1 checkpoint without its scale; an unknown feedback', async () => {
      const dir = join(tmp, 'p1-scaled-noscale');
      await cp(p1.scaled.dir, dir, { recursive: true });
      editState(dir, (s) => delete s.feedbackScale);
      const model = tinyModel(91);
      await expect(loadPhase1Checkpoint(dir, model)).rejects.toThrow(
        `${dir}/state.json: the run used scaled feedback but "feedbackScale" is missing`,
      );
      editState(dir, (s) => ((s.options as Record<string, unknown>).feedback = 'hyper'));
      await expect(loadPhase1Checkpoint(dir, model)).rejects.toThrow(`${dir}/state.json: "options.feedback" is "hyper"`);
      model.destroy();
    });

    it('an RL checkpoint whose gate tensors are gone, or whose model has no gate to train; a malformed feedback record', async () => {
      const { model, start } = await fromPhase1('gated');
      const tr = new GrpoTrainer(model, charTok, tasks, lenient, rlOptions({ feedback: start.feedback, beta: 0 }));
      await tr.trainStep();
      const dir = join(tmp, 'rl-nogate');
      await tr.save(dir);
      tr.destroy();
      model.destroy();
      // the gate tensors dropped from the RL checkpoint: refused before any weight is loaded
      const broken = join(tmp, 'rl-nogate-broken');
      await cp(dir, broken, { recursive: true });
      dropTensors(broken, [GATE_WEIGHT, GATE_BIAS]);
      const b = await fromPhase1('gated');
      const resumer = new GrpoTrainer(b.model, charTok, tasks, lenient, rlOptions({ feedback: b.start.feedback, beta: 0 }));
      const embBefore = await read(b.model, LATENT_EMBEDDINGS);
      await expect(resumer.restore(broken)).rejects.toThrow(
        `${broken}/model.safetensors: gated feedback needs the gate's parameters (${GATE_WEIGHT}, ${GATE_BIAS}), but '${GATE_WEIGHT}' is missing and '${GATE_BIAS}' is missing`,
      );
      expect(resumer.step).toBe(0);
      expect(await read(b.model, LATENT_EMBEDDINGS)).toEqual(embBefore);
      resumer.destroy();
      b.model.destroy();
      // a model without gate parameters (not started from the gated phase-1 checkpoint) cannot continue a gated run
      const plain = tinyModel(91);
      const other = new GrpoTrainer(plain, charTok, tasks, lenient, rlOptions({ beta: 0 }));
      await expect(other.restore(dir)).rejects.toThrow(
        `${dir}/state.json records gated(τ=0.7) feedback; the policy model: gated feedback needs the gate's parameters`,
      );
      other.destroy();
      plain.destroy();
      // the schema refuses a feedback record it cannot rebuild
      const st = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
      expect(() => parseCheckpointState({ ...st, feedback: { kind: 'scaled' } }, 'x/state.json')).toThrow(
        /x\/state.json: field "feedback" must be .*got \{"kind":"scaled"\} \(RL checkpoint version 2\)/,
      );
      expect(parseCheckpointState({ ...st, feedback: undefined }, 'x/state.json').kind).toBe('rl');
    });

    it('the trainer: gated feedback without gate parameters; a feedback set on the model but not named', () => {
      const plain = tinyModel(91);
      expect(() => new GrpoTrainer(plain, charTok, tasks, lenient, rlOptions({ feedback: { kind: 'gated', temperature: 1 } }))).toThrow(
        `rl: the policy model: gated feedback needs the gate's parameters (${GATE_WEIGHT}, ${GATE_BIAS}), but '${GATE_WEIGHT}' is missing and '${GATE_BIAS}' is missing`,
      );
      plain.feedback = gatedFeedback();
      expect(() => new GrpoTrainer(plain, charTok, tasks, lenient, rlOptions())).toThrow(/'gated' feedback; pass it as options.feedback/);
      plain.destroy();
    });
  });
});

describe('the rl command with --init a gated phase-1 run', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'latentlm-rl-feedback-cli-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const quiet = async <T>(f: () => Promise<T>): Promise<{ value: T; out: string; err: string }> => {
    const log = console.log,
      err = console.error,
      lines: string[] = [],
      errors: string[] = [];
    console.log = (...a: unknown[]) => void lines.push(a.join(' '));
    console.error = (...a: unknown[]) => void errors.push(a.join(' '));
    try {
      return { value: await f(), out: lines.join('\n'), err: errors.join('\n') };
    } finally {
      console.log = log;
      console.error = err;
    }
  };
  const stepRecords = (out: string) =>
    readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.type === 'step')
      .map(({ tokPerSec: _t, genSec: _g, trainSec: _s, ...r }) => r);

  it('runs the checkpoint feedback, records it, and resumes (the reference reloaded with it) as the straight run', async () => {
    const tiny = join(tmp, 'tiny'),
      p1 = join(tmp, 'p1');
    await writeTinyModel(tiny, { hidden: 16, layers: 1 });
    const { trainMain } = await import('../src/cli/train-main.js');
    const { rlMain } = await import('../src/cli/rl.js');
    const trained = await quiet(() =>
      trainMain(
        ['--model', tiny, '--backend', 'cpu', '--feedback', 'gated', '--steps', '2', '--batch', '2', '--eval-every', '0'].concat([
          '--eval-rows',
          '1',
          '--gen-rows',
          '0',
          '--out',
          p1,
        ]),
      ),
    );
    expect(trained.value, trained.out).toBe(0);
    const rl = (out: string, steps: number) =>
      ['--model', tiny, '--init', join(p1, 'checkpoint'), '--backend', 'cpu', '--steps', String(steps), '--group', '2'].concat([
        '--questions',
        '1',
        '--max-new',
        '6',
        '--beta',
        '0.05',
        '--eval-rows',
        '0',
        '--sample-every',
        '0',
        '--out',
        out,
      ]);
    const straight = join(tmp, 'rl-straight'),
      resumed = join(tmp, 'rl-resumed');
    const a = await quiet(() => rlMain(rl(straight, 3)));
    expect(a.value, a.out).toBe(0);
    expect(a.out).toMatch(/feedback gated\(τ=1\)/);
    const st = JSON.parse(readFileSync(join(straight, 'checkpoint', 'state.json'), 'utf8'));
    expect(st.feedback).toEqual({ kind: 'gated', temperature: 1 });
    expect(st.trajectory.feedback).toEqual({ kind: 'gated', temperature: 1 });
    expect((await quiet(() => rlMain(rl(resumed, 2)))).value).toBe(0);
    // a 2-step run continued to 3: --resume-anyway, and the only difference it lists is --steps
    const b = await quiet(() => rlMain([...rl(resumed, 3), '--resume', '--resume-anyway']));
    expect(b.value, b.out).toBe(0);
    expect(b.err).toMatch(/steps: 2 in the checkpoint, 3 now/);
    expect(b.err).not.toMatch(/feedback/);
    expect(b.out).toMatch(/resumed from .* at step 2/);
    // the sampled completions went through the gate (latents were sampled), before and after the resume
    expect(stepRecords(straight).some((r) => r.latentsPerAnswer > 0)).toBe(true);
    expect(stepRecords(resumed)).toEqual(stepRecords(straight));
  }, 120_000);
});
