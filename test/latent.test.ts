// Latent mode and phase 1 on tiny random models: sequence building, two-trunk routing, classifier heads,
// generation with the caps, the usage probes, and resume equivalence.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Kind } from '../src/model/qwen2.js';
import { buildSequence, removeLatents, EXTRA_BOL, EXTRA_EOL, type SplitRow } from '../src/latent/sequence.js';
import { LogisticHead } from '../src/latent/heads.js';
import { Phase1Trainer, type Phase1Options } from '../src/latent/trainer.js';
import { generate } from '../src/generation/generate.js';
import { latentUsage } from '../src/latent/diagnostics.js';
import { Rng } from '../src/data/rng.js';
import { charTok, EOS, tinyModel } from './_char-model.js';
import { arithRows, quietPhase1Options } from './_phase1.js';
import { expectSameWeights } from './_same-weights.js';

describe('phase-1 sequences', () => {
  const row: SplitRow = { question: 'q?', steps: ['2*3 = ', '6 then 6+1 = ', '7.'], final: '7' };
  it('places <bol> latent x k <eol> at each breakpoint, labels only answer text', () => {
    const s = buildSequence(row, charTok, { condition: 'latent', k: 2, eosId: EOS });
    expect(s.spans.length).toBe(2);
    for (const sp of s.spans) {
      expect(s.kind[sp.bol]).toBe(Kind.Extra);
      expect(s.extra[sp.bol]).toBe(EXTRA_BOL);
      expect(sp.latents.map((p) => s.kind[p])).toEqual([Kind.Latent, Kind.Latent]);
      expect(s.extra[sp.eol]).toBe(EXTRA_EOL);
      for (const p of [sp.bol, ...sp.latents, sp.eol]) expect(s.labels[p]).toBe(-100);
    }
    // question unlabeled; answer text after the first breakpoint starts with the calculator result
    expect(Array.from(s.labels.slice(0, 3))).toEqual([-100, -100, -100]);
    expect(charTok.decode([s.ids[s.afterBreak[0]]])).toBe('6');
    expect(charTok.decode(s.ids.filter((_, t) => s.kind[t] === Kind.Token))).toBe('q?\n2*3 = 6 then 6+1 = 7.\n#### 7');
  });
  it('pause uses learned constants, none has no markers, curriculum stage limits the spans', () => {
    const p = buildSequence(row, charTok, { condition: 'pause', k: 3 });
    expect(p.spans[0].latents.map((t) => p.kind[t])).toEqual([Kind.Extra, Kind.Extra, Kind.Extra]);
    const n = buildSequence(row, charTok, { condition: 'none', k: 3 });
    expect(n.spans.length).toBe(0);
    expect(n.kind.every((k) => k === Kind.Token)).toBe(true);
    expect(buildSequence(row, charTok, { condition: 'latent', k: 1, stage: 1 }).spans.length).toBe(1);
    const removed = removeLatents(buildSequence(row, charTok, { condition: 'latent', k: 2 }));
    expect(Array.from(removed.ids)).toEqual(Array.from(n.ids));
    expect(removed.labelCount).toBe(n.labelCount);
  });
});

describe('two-trunk routing', () => {
  it('frozen language weights never change; text-only sequences never touch the latent trunk', async () => {
    const model = tinyModel();
    const before = await model.exportTensors((n) => n.startsWith('model.'));
    const train = arithRows(6, 1);
    const trainer = new Phase1Trainer(model, charTok, train, arithRows(4, 2), {
      mode: 'two-trunk',
      condition: 'latent',
      k: 2,
      steps: 3,
      batchSize: 2,
      lr: 1e-2,
      evalEvery: 0,
      evalRows: 2,
      genRows: 0,
      seed: 0,
      eosId: EOS,
    } as Phase1Options);
    expect(model.trainableNames().every((n) => n.startsWith('latent.'))).toBe(true);
    // a sequence without latents: gradients reach no latent-trunk weight
    model.zeroGrads();
    const plain = buildSequence(train[0], charTok, { condition: 'none', k: 0 });
    await model.forward(
      { B: 1, T: plain.ids.length, ids: plain.ids, labels: plain.labels, trunk: plain.trunk },
      { grad: true, lossScale: 1 },
    );
    model.backward();
    for (const n of model.trainableNames())
      expect(
        (await model.readGrad(n)).every((x) => x === 0),
        n,
      ).toBe(true);
    // with latents the latent trunk does get gradient (through the K/V that text positions attend to)
    model.zeroGrads();
    const lat = buildSequence(train[0], charTok, { condition: 'latent', k: 2 });
    await model.forward(
      { B: 1, T: lat.ids.length, ids: lat.ids, kind: lat.kind, extra: lat.extra, labels: lat.labels, trunk: lat.trunk },
      { grad: true, lossScale: 1 },
    );
    model.backward();
    const g = await model.readGrad('latent.model.layers.0.self_attn.k_proj.weight');
    expect(g.some((x) => x !== 0)).toBe(true);
    for (let i = 0; i < 3; i++) await trainer.trainStep();
    const after = await model.exportTensors((n) => n.startsWith('model.'));
    for (const [n, t] of before) expect(Array.from(after.get(n)!.data), n).toEqual(Array.from(t.data));
    const latentAfter = await model.exportTensors((n) => n === 'latent.model.layers.0.mlp.up_proj.weight');
    expect(Array.from(latentAfter.values())[0].data).not.toEqual(before.get('model.layers.0.mlp.up_proj.weight')!.data);
    // optimizer state exists only for the latent trunk and markers
    expect([...trainer.opt.m.keys()].every((n) => n.startsWith('latent.'))).toBe(true);
  });
});

describe('classifier heads', () => {
  it('a logistic head learns a linearly separable toy task and reports P/R/F1', () => {
    const rng = new Rng(3);
    const head = new LogisticHead(8, 'toy', 5e-2);
    const make = (n: number) => {
      const xs: Float32Array[] = [],
        ys: number[] = [];
      for (let i = 0; i < n; i++) {
        const x = Float32Array.from({ length: 8 }, () => rng.normal());
        xs.push(x);
        ys.push(x[0] + 0.5 * x[3] > 0.8 ? 1 : 0);
      }
      return { xs, ys };
    };
    const tr = make(400),
      te = make(200);
    const before = head.evaluate(te.xs, te.ys);
    for (let e = 0; e < 200; e++) head.step(tr.xs, tr.ys, 2);
    const m = head.evaluate(te.xs, te.ys);
    expect(m.f1).toBeGreaterThan(0.8);
    expect(m.f1).toBeGreaterThan(before.f1);
    expect(LogisticHead.fromJSON(head.toJSON()).prob(te.xs[0])).toBeCloseTo(head.prob(te.xs[0]), 6);
  });
});

describe('generation', () => {
  it('never exceeds maxLatents in a span, marks spans, and returns the latent vectors', async () => {
    const model = tinyModel(5);
    const trainer = new Phase1Trainer(model, charTok, arithRows(4, 1), arithRows(2, 2), {
      mode: 'full',
      condition: 'latent',
      k: 2,
      steps: 1,
      batchSize: 1,
      lr: 1e-3,
      evalEvery: 0,
      evalRows: 1,
      genRows: 0,
      seed: 0,
      maxLatents: 3,
    } as Phase1Options);
    await trainer.init();
    const always = new LogisticHead(model.H, 'start');
    always.b = 50; // always start
    const never = new LogisticHead(model.H, 'end');
    never.b = -50; // never stop: the cap must
    const g = await generate(model, charTok, 'what is 2*3?\n', {
      maxNewTokens: 6,
      condition: 'latent',
      startHead: always,
      endHead: never,
      maxLatents: 3,
      latentBudget: 100,
    });
    expect(g.spans.length).toBeGreaterThan(0);
    for (const s of g.spans) {
      expect(s.count).toBe(3);
      expect(s.vectors.length).toBe(3);
      expect(s.vectors[0].length).toBe(model.H);
    }
    expect(g.text).toContain('⟨3 latents⟩');
    const budgeted = await generate(model, charTok, 'what is 2*3?\n', {
      maxNewTokens: 6,
      condition: 'latent',
      startHead: always,
      endHead: never,
      maxLatents: 3,
      latentBudget: 4,
    });
    expect(budgeted.spans.reduce((a, s) => a + s.count, 0)).toBeLessThanOrEqual(4);
  });
});

describe('usage probes', () => {
  it('zeroed / swapped / removed losses differ from normal when latents carry information', async () => {
    const model = tinyModel(7);
    const trainer = new Phase1Trainer(model, charTok, arithRows(4, 1), arithRows(4, 2), {
      mode: 'full',
      condition: 'latent',
      k: 2,
      steps: 1,
      batchSize: 1,
      lr: 1e-3,
      evalEvery: 0,
      evalRows: 4,
      genRows: 0,
      seed: 0,
    } as Phase1Options);
    await trainer.init();
    const seqs = arithRows(4, 2).map((r) => trainer.sequence(r, Infinity));
    const u = await latentUsage(model, seqs);
    expect(u.zeroed && u.swapped && u.removed).toBeTruthy();
    // a random model's latents are arbitrary vectors: replacing them changes the loss
    expect(Math.abs(u.gapZeroed!)).toBeGreaterThan(1e-4);
    expect(Number.isFinite(u.normal.postBreakLoss)).toBe(true);
  });
});

describe('checkpoint and resume', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'latentlm-resume-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  it('N steps straight equal N/2 + save + resume + N/2 (same losses, same weights)', async () => {
    const opts = (out?: string) => quietPhase1Options({ k: 1, steps: 4, seed: 9, outDir: out });
    const train = arithRows(5, 1),
      test = arithRows(2, 2);
    const a = new Phase1Trainer(tinyModel(), charTok, train, test, opts());
    const straight: number[] = [];
    for (let i = 0; i < 4; i++) straight.push((await a.trainStep()).loss);
    const b1 = new Phase1Trainer(tinyModel(), charTok, train, test, opts());
    const first: number[] = [];
    for (let i = 0; i < 2; i++) first.push((await b1.trainStep()).loss);
    await b1.save(join(tmp, 'ckpt'));
    const b2 = new Phase1Trainer(tinyModel(99), charTok, train, test, opts());
    expect(await b2.restore(join(tmp, 'ckpt'))).toBe(true);
    for (let i = 0; i < 2; i++) first.push((await b2.trainStep()).loss);
    expect(first).toEqual(straight);
    await expectSameWeights(a.model, b2.model);
  });
  it('a NaN loss stops training with a message naming the step', async () => {
    const model = tinyModel();
    const tr = new Phase1Trainer(model, charTok, arithRows(3, 1), arithRows(1, 2), {
      mode: 'full',
      condition: 'none',
      k: 0,
      steps: 2,
      batchSize: 1,
      lr: 1e-3,
      evalEvery: 0,
      evalRows: 1,
      genRows: 0,
      seed: 0,
    } as Phase1Options);
    const emb = model.param('model.embed_tokens.weight');
    model.be.upload(emb, new Float32Array(emb.size).fill(NaN));
    await expect(tr.trainStep()).rejects.toThrow(/step 1: loss is NaN/);
  });
});

describe('latent feedback variants', () => {
  it('scaled feedback: gradients through the chain match finite differences', async () => {
    const { scaledFeedback } = await import('../src/model/qwen2.js');
    const model = tinyModel(11);
    model.feedback = scaledFeedback(0.37);
    const seq = buildSequence(arithRows(1, 3)[0], charTok, { condition: 'latent', k: 2 });
    const inp = { B: 1, T: seq.ids.length, ids: seq.ids, kind: seq.kind, labels: seq.labels, extra: seq.extra };
    model.addParam(
      'latent.embeddings',
      [4, model.H],
      Float32Array.from({ length: 4 * model.H }, (_, i) => Math.sin(i)),
    );
    model.zeroGrads();
    const r = await model.forward(inp, { grad: true, lossScale: 1 / seq.labelCount });
    model.backward();
    const name = 'model.layers.1.mlp.down_proj.weight';
    const P = (model.param(name) as unknown as { data: Float32Array }).data,
      G = await model.readGrad(name);
    const loss = async () => {
      const x = await model.forward(inp);
      return x.lossSum / x.labelCount;
    };
    expect(r.lossSum / r.labelCount).toBeCloseTo(await loss(), 5);
    for (const i of [3, 77, 200]) {
      const o = P[i],
        h = 1e-2;
      P[i] = o + h;
      const lp = await loss();
      P[i] = o - h;
      const lm = await loss();
      P[i] = o;
      expect(Math.abs((lp - lm) / (2 * h) - G[i])).toBeLessThan(2e-3 + 0.02 * Math.abs(G[i]));
    }
  });
});

describe('latent supervision', () => {
  it("labels latent j's output with the j-th token after the span; training excludes them from the reported loss", async () => {
    const row: SplitRow = { question: 'q?', steps: ['2*3 = ', '6 then 6+1 = ', '7.'], final: '7' };
    const s = buildSequence(row, charTok, { condition: 'latent', k: 2, superviseLatents: true });
    const sp = s.spans[0];
    // output of latent 0 is read at latent 1, output of latent 1 at <eol>: targets '6' and ' '
    expect(s.auxLabels).toEqual([sp.latents[1], sp.eol, s.spans[1].latents[1], s.spans[1].eol]);
    expect(charTok.decode([s.labels[sp.latents[1]], s.labels[sp.eol]])).toBe('6 ');
    expect(buildSequence(row, charTok, { condition: 'latent', k: 2 }).auxLabels).toBeUndefined();
    const model = tinyModel(3);
    const base = {
      mode: 'full',
      condition: 'latent',
      k: 2,
      steps: 1,
      batchSize: 2,
      lr: 0,
      evalEvery: 0,
      evalRows: 1,
      genRows: 0,
      seed: 0,
    } as Phase1Options;
    const a = await new Phase1Trainer(model, charTok, arithRows(2, 1), arithRows(1, 2), base).trainStep();
    const b = await new Phase1Trainer(model, charTok, arithRows(2, 1), arithRows(1, 2), { ...base, latentSupervision: 0.5 }).trainStep();
    expect(b.loss).toBeCloseTo(a.loss, 5); // same text loss (lr 0), the aux terms only add gradient
    expect(b.gradNorm).not.toBeCloseTo(a.gradNorm, 5);
  });
});
