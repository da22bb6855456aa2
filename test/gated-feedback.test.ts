// Gated feedback (src/model/gated-feedback.ts): loss, logits, hidden states and every gradient (the gate's and the
// embedding table's included) against the PyTorch reference (scripts/reference/make_fixtures.py make_gated, from
// qwen2_ref.gated_feedback) on tiny tied and untied models with chains of fed-back latents, on every test backend;
// the gate's initial value; incremental decoding through the KV cache; and a bit-identical resume in the trainer.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backend/types.js';
import { Kind, Qwen2 } from '../src/model/qwen2.js';
import { addGateParams, gatedFeedback, gateValues } from '../src/model/gated-feedback.js';
import { GATE_BIAS, GATE_WEIGHT, TOKEN_EMBEDDINGS } from '../src/model/latent-params.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import { Phase1Trainer, type Phase1Options } from '../src/latent/trainer.js';
import { maxRelErr } from './_conformance.js';
import { testBackends } from './_backends.js';
import { charTok, tinyModel } from './_char-model.js';
import { type FixtureCase, kindsOf, readFixtureCase } from './_fixture-case.js';
import { arithRows, quietPhase1Options } from './_phase1.js';
import { expectSameWeights } from './_same-weights.js';

const dir = join(__dirname, 'fixtures', 'gated');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.safetensors'))
  .sort();

/** A reference case with its latent mask as position kinds, and the feedback temperature it was made with. */
type GatedFixture = Omit<FixtureCase, 'meta' | 'latent'> & { tau: number; kind: Uint8Array };

function loadFixture(file: string): GatedFixture {
  const { meta, latent, ...c } = readFixtureCase(dir, file);
  return { ...c, tau: JSON.parse(meta.case).tau, kind: kindsOf(latent) };
}

const validLabels = (f: GatedFixture) => {
  let n = 0;
  for (let i = 0; i < f.B * f.T; i++) if (i % f.T !== 0 && f.labels[i] !== -100) n++;
  return n;
};

async function gradPass(model: Qwen2, f: GatedFixture) {
  model.zeroGrads();
  const r = await model.forward(
    { B: f.B, T: f.T, ids: f.ids, labels: f.labels, kind: f.kind },
    { grad: true, lossScale: 1 / validLabels(f), wantLogits: true, wantHidden: true },
  );
  model.backward();
  const grads = new Map<string, Float32Array>();
  for (const name of model.trainableNames()) grads.set(name, await model.readGrad(name));
  return { r, loss: r.lossSum / r.labelCount, grads };
}

const relLoss = (loss: number, f: GatedFixture) => Math.abs(loss - f.ref.get('loss')![0]) / f.ref.get('loss')![0];

it('the fixtures hold chains of >= 2 fed-back latents, tied and untied heads, the gate parameters and their gradients', () => {
  const fs = files.map(loadFixture);
  expect(fs.map((f) => f.config.tie_word_embeddings).sort()).toEqual([false, true]);
  for (const f of fs) {
    for (let b = 0; b < f.B; b++) {
      let chain = 0,
        longest = 0;
      for (let t = 0; t < f.T; t++) longest = Math.max(longest, (chain = f.kind[b * f.T + t] === Kind.Latent ? chain + 1 : 0));
      expect(longest).toBeGreaterThanOrEqual(2);
    }
    for (const name of [GATE_WEIGHT, GATE_BIAS, TOKEN_EMBEDDINGS]) {
      expect(f.params.has(name), name).toBe(true);
      expect(Math.max(...f.ref.get(`grad.${name}`)!.map(Math.abs)), `grad.${name}`).toBeGreaterThan(1e-4);
    }
  }
});

for (const { name: beName, make } of testBackends()) {
  describe(`gated feedback against the PyTorch reference on ${beName}`, () => {
    let be: Backend | null = null;
    const get = async () => (be ??= await make());
    afterAll(() => be?.destroy());
    for (const file of files)
      it(`${file}: loss, logits, hidden, every gradient (gate and embeddings included)`, async () => {
        const f = loadFixture(file);
        const model = Qwen2.fromTensors(await get(), f.config, f.params, file);
        model.feedback = gatedFeedback({ temperature: f.tau });
        const { r, loss, grads } = await gradPass(model, f);
        expect(relLoss(loss, f)).toBeLessThan(1e-4);
        expect(maxRelErr(r.logits!, f.ref.get('logits')!), 'logits').toBeLessThan(1e-3);
        expect(maxRelErr(r.hidden!, f.ref.get('hidden')!), 'hidden').toBeLessThan(1e-3);
        expect([...grads.keys()].sort()).toEqual([...f.params.keys()].sort());
        for (const [name, g] of grads) expect(maxRelErr(g, f.ref.get(`grad.${name}`)!), `grad.${name}`).toBeLessThan(1e-3);

        // the comparison can fail: another gate bias, or another temperature, or no gate at all, moves the numbers
        const bias = f.params.get(GATE_BIAS)!;
        model.be.upload(
          model.param(GATE_BIAS),
          bias.map((x) => x + 0.5),
        );
        const moved = await gradPass(model, f);
        expect(maxRelErr(moved.grads.get(GATE_WEIGHT)!, f.ref.get(`grad.${GATE_WEIGHT}`)!)).toBeGreaterThan(1e-2);
        expect(relLoss(moved.loss, f)).toBeGreaterThan(1e-4);
        model.be.upload(model.param(GATE_BIAS), bias);
        model.feedback = gatedFeedback({ temperature: f.tau * 1.5 });
        expect(maxRelErr((await gradPass(model, f)).grads.get(TOKEN_EMBEDDINGS)!, f.ref.get(`grad.${TOKEN_EMBEDDINGS}`)!)).toBeGreaterThan(
          1e-3,
        );
        model.feedback = gatedFeedback({ temperature: f.tau });
        expect(relLoss((await gradPass(model, f)).loss, f)).toBeLessThan(1e-4); // restored: the fixture's numbers again
        model.destroy();
      });
  });
}

describe('gated feedback on the CPU reference backend', () => {
  it('starts near the embedding manifold: W_g = 0 and g = 0.95, so a latent is 0.95 ê + 0.05 h', async () => {
    const f = loadFixture(files[0]);
    const params = new Map([...f.params].filter(([n]) => !n.startsWith('latent.')));
    const model = Qwen2.fromTensors(new (await import('../src/backend/cpu.js')).CpuBackend(), f.config, params, 'init');
    addGateParams(model);
    model.feedback = gatedFeedback();
    const H = model.H,
      V = model.V;
    const h = Float32Array.from({ length: 2 * H }, (_, i) => Math.sin(1.3 * i + 0.2) * 2);
    const fed = await model.applyFeedback(h);
    const E = f.params.get(TOKEN_EMBEDDINGS)!;
    expect((await gateValues(model, h)).mean).toBeCloseTo(0.95, 6);
    for (let r = 0; r < 2; r++) {
      // host reference in f64: π = softmax(E h) (tied), ê = πᵀ E
      const z = Array.from({ length: V }, (_, v) => E.subarray(v * H, (v + 1) * H).reduce((a, e, j) => a + e * h[r * H + j], 0));
      const mx = Math.max(...z),
        ex = z.map((x) => Math.exp(x - mx)),
        sum = ex.reduce((a, b) => a + b);
      for (let j = 0; j < H; j++) {
        let ehat = 0;
        for (let v = 0; v < V; v++) ehat += (ex[v] / sum) * E[v * H + j];
        expect(fed[r * H + j]).toBeCloseTo(0.95 * ehat + 0.05 * h[r * H + j], 5);
      }
    }
    model.destroy();
  });

  it('incremental decoding (KV cache, latents fed from its last hidden state) equals the full pass', async () => {
    const f = loadFixture(files.find((x) => x.includes('untied')) ?? files[0]);
    const model = Qwen2.fromTensors(new (await import('../src/backend/cpu.js')).CpuBackend(), f.config, f.params, 'decode');
    model.feedback = gatedFeedback({ temperature: f.tau });
    const T = f.T,
      V = model.V;
    const ids = f.ids.subarray(0, T),
      kind = f.kind.subarray(0, T);
    expect([...kind].filter((k) => k === Kind.Latent).length).toBeGreaterThanOrEqual(2);
    const full = await model.forward({ B: 1, T, ids, kind }, { wantLogits: true });
    const cache = model.createCache(1, T);
    const first = [...kind].indexOf(Kind.Latent);
    // the prompt up to the first latent in one call, then one position per call: each latent reads cache.lastHidden
    let res = await model.forward(
      { B: 1, T: first, ids: ids.subarray(0, first), kind: kind.subarray(0, first) },
      { cache, wantLastLogits: true },
    );
    expect(maxRelErr(res.lastLogits!, full.logits!.subarray((first - 1) * V, first * V))).toBeLessThan(1e-5);
    for (let t = first; t < T; t++) {
      res = await model.forward(
        { B: 1, T: 1, ids: ids.subarray(t, t + 1), kind: kind.subarray(t, t + 1) },
        { cache, wantLastLogits: true },
      );
      expect(maxRelErr(res.lastLogits!, full.logits!.subarray(t * V, (t + 1) * V)), `position ${t}`).toBeLessThan(1e-5);
    }
    // with identity feedback the latents' logits differ: the decode really went through the gate
    model.feedback = (await import('../src/model/qwen2.js')).identityFeedback;
    const plain = await model.forward({ B: 1, T, ids, kind }, { wantLogits: true });
    expect(maxRelErr(plain.logits!.subarray((first + 1) * V), full.logits!.subarray((first + 1) * V))).toBeGreaterThan(1e-3);
    model.freeCache(cache);
    model.destroy();
  });
});

describe('gated feedback in the phase-1 trainer', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'latentlm-gated-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const opts = (o: Partial<Phase1Options> = {}) => quietPhase1Options({ k: 2, steps: 4, seed: 5, feedback: 'gated', ...o });
  const train = arithRows(5, 1),
    test = arithRows(2, 2);

  it('trains the gate with the other parameters; N steps straight equal N/2 + save + resume + N/2, bit for bit', async () => {
    const a = new Phase1Trainer(tinyModel(3), charTok, train, test, opts());
    const straight: number[] = [];
    for (let i = 0; i < 4; i++) straight.push((await a.trainStep()).loss);
    expect(a.model.feedback.name).toBe('gated');
    expect(a.model.isTrainable(GATE_WEIGHT) && a.model.isTrainable(GATE_BIAS)).toBe(true);
    expect(a.opt.m.has(GATE_WEIGHT) && a.opt.m.has(GATE_BIAS)).toBe(true);
    // the gate moved off its init (W_g = 0, b_g = logit 0.95)
    const W = (await a.model.be.read(a.model.param(GATE_WEIGHT))) as Float32Array;
    expect(Math.max(...W.map(Math.abs))).toBeGreaterThan(1e-4);
    const b1 = new Phase1Trainer(tinyModel(3), charTok, train, test, opts());
    const resumed: number[] = [];
    for (let i = 0; i < 2; i++) resumed.push((await b1.trainStep()).loss);
    await b1.save(join(tmp, 'ckpt'));
    const saved = parseSafetensors(new Uint8Array(readFileSync(join(tmp, 'ckpt', 'model.safetensors'))), 'ckpt');
    expect(saved.tensors.has(GATE_WEIGHT) && saved.tensors.has(GATE_BIAS)).toBe(true);
    const b2 = new Phase1Trainer(tinyModel(99), charTok, train, test, opts());
    expect(await b2.restore(join(tmp, 'ckpt'))).toBe(true);
    for (let i = 0; i < 2; i++) resumed.push((await b2.trainStep()).loss);
    expect(resumed).toEqual(straight);
    await expectSameWeights(a.model, b2.model);
    expect(b2.trajectoryOptions()).toMatchObject({ feedback: 'gated', feedbackTemperature: 1, gateInit: 0.95 });
    // an evaluation reports the mean gate over the held-out latents
    const ev = await b2.evaluate(false);
    expect(ev.gateMean).toBeGreaterThan(0.5);
    expect(ev.gateMean).toBeLessThan(1);
  });

  it('refuses a condition without latents, and identity runs keep their trajectory options', () => {
    expect(() => new Phase1Trainer(tinyModel(3), charTok, train, test, opts({ condition: 'pause' }))).toThrow(/gated.*'pause' has none/);
    const plain = new Phase1Trainer(tinyModel(3), charTok, train, test, opts({ feedback: 'identity' }));
    expect(plain.trajectoryOptions()).not.toHaveProperty('feedbackTemperature');
    expect(plain.model.params.has(GATE_WEIGHT)).toBe(false);
  });

  it('the train command accepts --feedback gated only with latents; the sweep has a gated row', async () => {
    const { trainMain } = await import('../src/cli/train-main.js');
    const { CONDITIONS } = await import('../src/sweep/grid.js');
    await expect(trainMain(['--feedback', 'gated', '--baseline', 'pause'])).rejects.toThrow(/--feedback gated .*'pause' has none/);
    await expect(trainMain(['--feedback', 'gated', '--latents', '0'])).rejects.toThrow(/--feedback gated .*'none' has none/);
    await expect(trainMain(['--feedback', 'bogus'])).rejects.toThrow(/identity, scaled or gated/);
    expect(CONDITIONS.gated).toEqual({ flags: ['--feedback', 'gated'], usesK: true });
  });

  it('two-trunk mode trains the gate with the latent trunk and leaves the language trunk frozen', async () => {
    const tr = new Phase1Trainer(tinyModel(4), charTok, train, test, opts({ mode: 'two-trunk', steps: 1 }));
    const before = await tr.model.exportTensors();
    await tr.trainStep();
    expect(tr.model.isTrainable(GATE_WEIGHT)).toBe(true);
    expect(tr.model.isTrainable(TOKEN_EMBEDDINGS)).toBe(false);
    const after = await tr.model.exportTensors();
    expect(Array.from(after.get(TOKEN_EMBEDDINGS)!.data)).toEqual(Array.from(before.get(TOKEN_EMBEDDINGS)!.data));
    expect(Array.from(after.get(GATE_WEIGHT)!.data)).not.toEqual(Array.from(before.get(GATE_WEIGHT)!.data));
  });
});
