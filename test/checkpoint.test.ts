// The typed, versioned checkpoint state (src/train/checkpoint-schema.ts): version-1 checkpoints (no "version", and
// for phase 1 no "kind") still load and resume bit-identically; a newer or malformed one is refused with a message
// naming the file, the field and the version.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Phase1Trainer, type Phase1Options } from '../src/latent/trainer.js';
import { readCheckpointState } from '../src/latent/checkpoint.js';
import { CHECKPOINT_VERSION, parseCheckpointState } from '../src/train/checkpoint-schema.js';
import { Rng } from '../src/data/rng.js';
import { charTok, tinyModel } from './_char-model.js';
import { quietPhase1Options } from './_phase1.js';
import { expectSameWeights } from './_same-weights.js';

const tmp = mkdtempSync(join(tmpdir(), 'latentlm-ckpt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const rows = Array.from({ length: 5 }, (_, i) => ({
  question: `what is ${i + 2}*3?`,
  steps: [`${i + 2}*3 = `, `${(i + 2) * 3}.`],
  final: String((i + 2) * 3),
}));
const head = (name: string) => ({ name, dim: 2, w: [0.5, -1], b: 0.25 });
const phase1V1 = () => ({
  step: 3,
  rng: new Rng(7).state(),
  order: [1, 0, 2],
  cursor: 1,
  epoch: 0,
  heads: { start: head('start'), end: head('end') },
  options: { k: 1 },
});
const rlV1 = () => ({
  kind: 'rl',
  step: 2,
  rng: { data: new Rng(1).state(), sample: new Rng(2).state() },
  order: [0],
  cursor: 0,
  epoch: 1,
  heads: { start: head('start'), end: null },
  options: { condition: 'latent', group: 4, seed: 0, beta: 0, mode: 'full' },
});

describe('checkpoint schema', () => {
  it('reads version 1 (no version field; phase 1 without kind) as the current version, fields unchanged', () => {
    const p = parseCheckpointState(phase1V1(), 'a/state.json');
    expect(p).toEqual({ ...phase1V1(), version: CHECKPOINT_VERSION, kind: 'phase1' });
    const r = parseCheckpointState(rlV1(), 'b/state.json');
    expect(r).toEqual({ ...rlV1(), version: CHECKPOINT_VERSION, kind: 'rl' });
    // the current version reads back as itself
    expect(parseCheckpointState(p, 'a/state.json')).toEqual(p);
  });

  it('refuses a newer version, an unknown kind, and missing or mistyped fields, naming file, field and version', () => {
    expect(() => parseCheckpointState({ ...phase1V1(), version: 3, kind: 'phase1' }, 'x/state.json')).toThrow(
      'x/state.json: written by a newer latentlm: this one reads checkpoint versions 1 to 2 (checkpoint version 3)',
    );
    expect(() => parseCheckpointState({ ...phase1V1(), version: 2 }, 'x/state.json')).toThrow(
      'x/state.json: "kind" must be "phase1" or "rl", got undefined (checkpoint version 2)',
    );
    const { order: _, ...noOrder } = phase1V1();
    expect(() => parseCheckpointState(noOrder, 'x/state.json')).toThrow(
      'x/state.json: field "order" must be an array of non-negative integers, got nothing (phase-1 checkpoint version 1)',
    );
    expect(() => parseCheckpointState({ ...rlV1(), step: -1 }, 'x/state.json')).toThrow(
      'field "step" must be a non-negative integer, got -1 (RL checkpoint version 1)',
    );
    expect(() => parseCheckpointState({ ...phase1V1(), heads: { start: head('start'), end: null } }, 'x/state.json')).toThrow(
      'field "heads.end" must be a head ({ name, dim, w, b }), got null (phase-1 checkpoint version 1)',
    );
    expect(() => parseCheckpointState([], 'x/state.json')).toThrow('x/state.json: not a checkpoint state');
  });

  it('a version-1 phase-1 checkpoint on disk loads, and resuming from it is bit-identical to running straight', async () => {
    const opts = () => quietPhase1Options({ k: 1, steps: 4, seed: 9 });
    const a = new Phase1Trainer(tinyModel(), charTok, rows, rows, opts());
    const straight: number[] = [];
    for (let i = 0; i < 4; i++) straight.push((await a.trainStep()).loss);
    const b1 = new Phase1Trainer(tinyModel(), charTok, rows, rows, opts());
    const resumed: number[] = [];
    for (let i = 0; i < 2; i++) resumed.push((await b1.trainStep()).loss);
    const dir = join(tmp, 'v1');
    await b1.save(dir);
    // what a version-1 writer left: the same state without the two fields version 2 added
    const st = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    expect([st.version, st.kind]).toEqual([2, 'phase1']);
    delete st.version, delete st.kind;
    writeFileSync(join(dir, 'state.json'), JSON.stringify(st));
    expect((await readCheckpointState(dir))?.state).toMatchObject({ version: 2, kind: 'phase1', step: 2 });
    const b2 = new Phase1Trainer(tinyModel(99), charTok, rows, rows, opts());
    expect(await b2.restore(dir)).toBe(true);
    for (let i = 0; i < 2; i++) resumed.push((await b2.trainStep()).loss);
    expect(resumed).toEqual(straight);
    await expectSameWeights(a.model, b2.model);
    expect(b2.startHead.w).toEqual(a.startHead.w);
  });

  it('a phase-1 trainer refuses an RL checkpoint instead of misreading it', async () => {
    const dir = join(tmp, 'rl');
    const b1 = new Phase1Trainer(tinyModel(), charTok, rows, rows, {
      mode: 'full',
      condition: 'latent',
      k: 1,
      steps: 1,
      batchSize: 1,
      lr: 1e-3,
      evalEvery: 0,
      evalRows: 1,
      genRows: 0,
      seed: 0,
    } as Phase1Options);
    await b1.save(dir);
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ ...rlV1(), version: 2 }));
    const b2 = new Phase1Trainer(tinyModel(), charTok, rows, rows, b1.o);
    await expect(b2.restore(dir)).rejects.toThrow(`${dir}: an RL checkpoint, not a phase-1 one`);
  });
});
