// Phase 2 (GRPO-style RL): the policy-gradient weights and their gradient against finite differences of the clipped
// objective on a 1-layer model, group normalisation by hand values, the reward path, batched sampling vs replay,
// and resume equivalence. CPU backend only (exact, deterministic).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import { Kind, Qwen2, type Qwen2Config } from '../src/model/qwen2.js';
import { LogisticHead } from '../src/latent/heads.js';
import { extraRows } from '../src/latent/sequence.js';
import { actionLoss, clippedTerm, GrpoTrainer, groupAdvantages, k3, policyWeight, type GrpoOptions, type Task } from '../src/rl/grpo.js';
import { canBatch, replay, type ReplayOptions, type ReplayResult } from '../src/rl/policy.js';
import { sampleGroup, type Completion } from '../src/generation/decode.js';
import { shapeReward, wasmChecker, type Checker } from '../src/rl/rewards.js';
import { handCompletion } from './_hand-completion.js';
import { expectSameWeights } from './_same-weights.js';

// ---- a 1-layer model and a character tokenizer -----------------------------------------------------------------
const ALPHABET = '0123456789+=?# \n';
const EOS = ALPHABET.length;
const charTok = {
  encode: (s: string) =>
    Array.from(s, (ch) => {
      const i = ALPHABET.indexOf(ch);
      if (i < 0) throw new Error(`char tokenizer: '${ch}'`);
      return i;
    }),
  decode: (ids: ArrayLike<number>) => Array.from(ids, (i) => (i < ALPHABET.length ? ALPHABET[i] : '')).join(''),
};
const config: Qwen2Config = {
  vocab_size: ALPHABET.length + 1,
  hidden_size: 8,
  intermediate_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
  max_position_embeddings: 256,
};
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
}
function tinyTensors(seed = 1, maxLatents = 4): Map<string, Float32Array> {
  const r = lcg(seed),
    t = new Map<string, Float32Array>();
  const H = config.hidden_size,
    I = config.intermediate_size,
    KV = (H / config.num_attention_heads) * config.num_key_value_heads,
    V = config.vocab_size;
  const rnd = (n: number, s: number, base = 0) => Float32Array.from({ length: n }, () => base + s * r());
  t.set('model.embed_tokens.weight', rnd(V * H, 0.8));
  const p = 'model.layers.0.';
  t.set(p + 'self_attn.q_proj.weight', rnd(H * H, 0.4)), t.set(p + 'self_attn.q_proj.bias', rnd(H, 0.1));
  t.set(p + 'self_attn.k_proj.weight', rnd(KV * H, 0.4)), t.set(p + 'self_attn.k_proj.bias', rnd(KV, 0.1));
  t.set(p + 'self_attn.v_proj.weight', rnd(KV * H, 0.4)), t.set(p + 'self_attn.v_proj.bias', rnd(KV, 0.1));
  t.set(p + 'self_attn.o_proj.weight', rnd(H * H, 0.4));
  t.set(p + 'mlp.gate_proj.weight', rnd(I * H, 0.4)),
    t.set(p + 'mlp.up_proj.weight', rnd(I * H, 0.4)),
    t.set(p + 'mlp.down_proj.weight', rnd(H * I, 0.4));
  t.set(p + 'input_layernorm.weight', rnd(H, 0.1, 1)), t.set(p + 'post_attention_layernorm.weight', rnd(H, 0.1, 1));
  t.set('model.norm.weight', rnd(H, 0.1, 1));
  t.set('latent.embeddings', rnd(extraRows(maxLatents) * H, 0.8));
  return t;
}
const be = new CpuBackend();
afterAll(() => be.destroy?.());
const makeModel = (seed = 1) => Qwen2.fromTensors(be, config, tinyTensors(seed), 'tiny');

/** replay() as one batch where the routing allows it, else one completion at a time (two-trunk with latents). */
async function replayEach(model: Qwen2, comps: Completion[], o: ReplayOptions = {}): Promise<ReplayResult> {
  if (canBatch(model, comps)) return replay(model, comps, o);
  const out: ReplayResult = { tokenLogp: [], decisionHidden: [] };
  for (const c of comps) {
    const r = await replay(model, [c], o);
    out.tokenLogp.push(...r.tokenLogp), out.decisionHidden.push(...r.decisionHidden);
  }
  return out;
}

const fdParams: [string, number[]][] = [
  ['model.embed_tokens.weight', [0, 9, 37, 70, 101]],
  ['model.layers.0.self_attn.q_proj.weight', [3, 20, 51]],
  ['model.layers.0.self_attn.v_proj.weight', [1, 17]],
  ['model.layers.0.mlp.down_proj.weight', [5, 44, 99]],
  ['model.layers.0.input_layernorm.weight', [2, 6]],
  ['model.norm.weight', [0, 4]],
  ['latent.embeddings', [1, 10]],
];

/** Central finite difference of f(model) w.r.t. one parameter entry. */
async function fd(model: Qwen2, name: string, i: number, f: () => Promise<number>, h = 1e-2): Promise<number> {
  const p = model.param(name);
  const base = (await be.read(p)) as Float32Array;
  const x = base.slice();
  x[i] = base[i] + h;
  be.upload(p, x);
  const up = await f();
  x[i] = base[i] - h;
  be.upload(p, x);
  const dn = await f();
  be.upload(p, base);
  return (up - dn) / (2 * h);
}

const relClose = (got: number, want: number, what: string, tol = 2e-2) =>
  expect(Math.abs(got - want), `${what}: got ${got}, finite difference ${want}`).toBeLessThanOrEqual(tol * Math.max(Math.abs(want), 1e-2));

// ---------------------------------------------------------------------------------------------------------------
describe('group normalisation', () => {
  it('matches hand values; zero-variance groups get A = 0 and are flagged', () => {
    const g = groupAdvantages([1, 0, 0, 0, 1, 1, 1, 1, 2, 0, 1, 1], 4);
    // group 0: mean 0.25, sample std sqrt((0.5625 + 3 * 0.0625) / 3) = 0.5 -> 0.75 / 0.5001, -0.25 / 0.5001
    expect(g.mean[0]).toBeCloseTo(0.25, 12);
    expect(g.std[0]).toBeCloseTo(0.5, 12);
    expect(g.adv[0]).toBeCloseTo(1.4997000599880024, 12);
    expect(g.adv[1]).toBeCloseTo(-0.499900019996, 12);
    // group 1: all equal
    expect(g.zeroVariance).toEqual([false, true, false]);
    expect(Array.from(g.adv.slice(4, 8))).toEqual([0, 0, 0, 0]);
    // group 2: mean 1, std sqrt(2/3) = 0.816496580927726 -> +-1 / 0.816596580927726 = 1.2245948897605
    expect(g.adv[8]).toBeCloseTo(1.2245948897605, 9);
    expect(g.adv[9]).toBeCloseTo(-1.2245948897605, 9);
    expect(g.adv[10]).toBe(0);
    // unscaled (Dr. GRPO): r - mean
    expect(Array.from(groupAdvantages([3, 1], 2, { scale: false }).adv)).toEqual([1, -1]);
    expect(() => groupAdvantages([1, 2, 3], 2)).toThrow(/groups of 2/);
  });

  it('clipped term, k3 and the label weight follow the formulas (hand values)', () => {
    // A > 0, r = e^0.1 = 1.1051709 inside [0.8, 1.2]: unclipped, weight r A
    let t = clippedTerm(-1, -1.1, 0.7, 0.2);
    expect(t.clipped).toBe(false);
    expect(t.coef).toBeCloseTo(0.7 * 1.1051709180756477, 12);
    expect(policyWeight(t, 0, -1)).toBeCloseTo(0.7736196426529534, 12);
    // A > 0, r = e^0.5 = 1.6487 > 1.2: clipped, J = 1.2 A, weight 0
    t = clippedTerm(-1, -1.5, 0.7, 0.2);
    expect(t.clipped).toBe(true);
    expect(t.obj).toBeCloseTo(0.84, 12);
    expect(t.coef).toBe(0);
    // A < 0, r = e^-0.5 = 0.6065 < 0.8: clipped (min picks 0.8 A)
    t = clippedTerm(-1.5, -1, -0.7, 0.2);
    expect(t.clipped).toBe(true);
    expect(t.obj).toBeCloseTo(-0.56, 12);
    // A < 0, r = 1.6487 > 1.2: NOT clipped (min picks r A, the pessimistic bound)
    t = clippedTerm(-1, -1.5, -0.7, 0.2);
    expect(t.clipped).toBe(false);
    expect(t.coef).toBeCloseTo(-0.7 * 1.6487212707001282, 12);
    // higher upper clip (epsHigh 0.28): r = 1.2586 (logp diff 0.23) passes with A > 0
    expect(clippedTerm(-1, -1.23, 1, 0.2, 0.28).clipped).toBe(false);
    expect(clippedTerm(-1, -1.23, 1, 0.2, 0.2).clipped).toBe(true);
    // k3: ref - logp = 0.3: e^0.3 - 0.3 - 1 = 0.0498588; d/dlogp = 1 - e^0.3
    const k = k3(-1, -0.7);
    expect(k.kl).toBeCloseTo(Math.exp(0.3) - 1.3, 12);
    expect(k.dlogp).toBeCloseTo(1 - Math.exp(0.3), 12);
    // weight with KL: c + beta (e^(ref - logp) - 1) = 0.7 + 0.1 * 0.3498588
    t = clippedTerm(-1, -1, 0.7, 0.2);
    expect(policyWeight(t, 0.1, -1, -0.7)).toBeCloseTo(0.7 + 0.1 * (Math.exp(0.3) - 1), 12);
    expect(actionLoss(t, 0.1, -1, -0.7)).toBeCloseTo(-0.7 + 0.1 * (Math.exp(0.3) - 1.3), 12);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('policy-gradient loss and gradient (1-layer model, G = 2, CPU)', () => {
  const prompt = charTok.encode('12+3=');
  const c0 = handCompletion(prompt, [1, { latents: 2 }, 5, 13, EOS], EOS); // "1 <2 latents> 5#" eos
  const c1 = handCompletion(prompt, [4, 14, 7, EOS], EOS);

  it('labelWeights path == finite difference of the clipped objective with KL (clipped and unclipped tokens)', async () => {
    const model = makeModel(3);
    const comps = [c0, c1];
    // hand advantages for rewards [1, 0]: +-0.5 / (sqrt(0.5) + 1e-4)
    const A = [0.5 / (Math.sqrt(0.5) + 1e-4), -0.5 / (Math.sqrt(0.5) + 1e-4)];
    expect(Array.from(groupAdvantages([1, 0], 2).adv)).toEqual(A);
    const cur = (await replay(model, comps)).tokenLogp;
    // old log-probs chosen so that some ratios fall outside [0.8, 1.2]: offsets (logp - old) per token
    const offsets = [
      [0.05, 0.5, -0.1, -0.6],
      [0.3, -0.02, -0.5, 0.1],
    ];
    const old = cur.map((lp, b) => lp.map((x, t) => x - offsets[b][t]));
    const ref = cur.map((lp, b) => lp.map((x, t) => x + 0.2 * (t - 1.5) + 0.1 * b));
    const beta = 0.1,
      eps = 0.2;
    const N = comps.reduce((a, c) => a + c.actions.length, 0); // tokens + decisions
    const terms = cur.map((lp, b) => Array.from(lp, (x, t) => clippedTerm(x, old[b][t], A[b], eps)));
    // which tokens are clipped is what the offsets were chosen for
    expect(terms.map((ts) => ts.map((t) => t.clipped))).toEqual([
      [false, true, false, false],
      [false, false, true, false],
    ]);
    const weights = terms.map((ts, b) => Float64Array.from(ts, (t, j) => policyWeight(t, beta, cur[b][j], ref[b][j])));
    // the weights by hand: clipped -> beta (e^(ref - logp) - 1) only; unclipped -> r A + that
    expect(weights[0][1]).toBeCloseTo(beta * (Math.exp(0.2 * (1 - 1.5)) - 1), 6);
    expect(weights[0][0]).toBeCloseTo(Math.exp(0.05) * A[0] + beta * (Math.exp(0.2 * -1.5) - 1), 6);
    expect(weights[1][2]).toBeCloseTo(beta * (Math.exp(0.2 * 0.5 + 0.1) - 1), 6);
    model.zeroGrads();
    await replay(model, comps, { grad: true, lossScale: 1 / N, weights });
    model.backward();
    const objective = async () => {
      const lp = (await replay(model, comps)).tokenLogp;
      let L = 0;
      lp.forEach((x, b) => x.forEach((v, t) => (L += actionLoss(clippedTerm(v, old[b][t], A[b], eps), beta, v, ref[b][t]))));
      return L / N;
    };
    for (const [name, idx] of fdParams) {
      const g = await model.readGrad(name);
      for (const i of idx) relClose(g[i], await fd(model, name, i, objective), `${name}[${i}]`);
    }
    model.destroy();
  });

  for (const mode of ['full', 'two-trunk'] as const)
    it(`trainer.update (${mode}, on-policy, r = 1): model gradient == finite difference; head gradient == finite difference`, async () => {
      const model = makeModel(5);
      if (mode === 'two-trunk') model.enableTwoTrunk();
      const t0 = await model.exportTensors();
      const start = new LogisticHead(config.hidden_size, 'start'),
        end = new LogisticHead(config.hidden_size, 'end');
      const r = lcg(9);
      for (const h of [start, end]) h.w.set(Float32Array.from({ length: h.dim }, () => r())), (h.b = 0.3 * r());
      const opts: GrpoOptions = {
        steps: 1,
        group: 2,
        questionsPerStep: 1,
        lr: 1e-3,
        beta: 0,
        eps: 0.2,
        ppoEpochs: 1,
        condition: 'latent',
        maxNewTokens: 8,
        temperature: 1,
        maxLatents: 4,
        latentBudget: 8,
        rewards: {},
        seed: 1,
        headLr: 1e-3,
      };
      const tr = new GrpoTrainer(model, charTok, [{ question: '12+3', gold: '15' }], () => ({ reward: 0, format: 0 }), opts, {
        start,
        end,
      });
      const scored = [c0, c1].map((comp, i) => ({
        task: { question: '12+3', gold: '15' },
        comp,
        score: { reward: 1 - i, correct: 1 - i, format: 0, latents: comp.latents, extracted: null },
      }));
      // the hidden states the heads see, and the head weights, before the update
      const headsBefore = { start: LogisticHead.fromJSON(start.toJSON()), end: LogisticHead.fromJSON(end.toJSON()) };
      const u = await tr.update(scored);
      const N = c0.actions.length + c1.actions.length;
      expect(u.N).toBe(N);
      const A = Array.from(u.advantages.adv);
      // model gradient (left in model.grads by the update) vs FD of the token part at the pre-update weights
      const ref = Qwen2.fromTensors(be, config, new Map([...t0].map(([k, v]) => [k, v.data])), 'pre-update');
      ref.twoTrunk = model.twoTrunk;
      const old = (await replayEach(ref, [c0, c1])).tokenLogp;
      const objective = async () => {
        const lp = (await replayEach(ref, [c0, c1])).tokenLogp;
        let L = 0;
        lp.forEach((x, b) => x.forEach((v, t) => (L -= clippedTerm(v, old[b][t], A[b], 0.2).obj)));
        return L / N;
      };
      // two-trunk: only the latent trunk and the marker embeddings learn; the language trunk gets no gradient at all
      const params =
        mode === 'full'
          ? fdParams
          : fdParams
              .filter(([n]) => n !== 'model.embed_tokens.weight')
              .map(([n, i]) => [n.startsWith('model.') ? `latent.${n}` : n, i] as [string, number[]]);
      if (mode === 'two-trunk') await expect(model.readGrad('model.layers.0.mlp.down_proj.weight')).rejects.toThrow(/no gradient/);
      for (const [name, idx] of params) {
        const g = await model.readGrad(name);
        for (const i of idx) relClose(g[i], await fd(ref, name, i, objective), `${name}[${i}]`);
      }
      // head gradient vs FD over the head parameters, hidden states fixed (the heads are detached from the trunk)
      const hs = (await replayEach(ref, [c0, c1], { wantHidden: true })).decisionHidden;
      const headObjective = (which: 'start' | 'end', head: LogisticHead) => {
        let L = 0;
        [c0, c1].forEach((c, b) => {
          let d = 0;
          for (const a of c.actions) {
            if (a.type === 'token') continue;
            const h = hs[b][d++];
            if (a.type !== which) continue;
            const p = head.prob(h),
              yes = a.type === 'start' ? a.take : a.stop;
            const lp = Math.log(yes ? p : 1 - p);
            // on-policy: old = current at the pre-update head, so J = A * exp(lp - lp0)
            const p0 = headsBefore[which].prob(h),
              lp0 = Math.log(yes ? p0 : 1 - p0);
            L -= clippedTerm(lp, lp0, A[b], 0.2).obj;
          }
        });
        return L / N;
      };
      for (const which of ['start', 'end'] as const) {
        const g = (which === 'start' ? tr.startOpt : tr.endOpt)!.lastGrad!;
        const h0 = headsBefore[which];
        for (const i of [0, 3, 7, h0.dim]) {
          const probe = LogisticHead.fromJSON(h0.toJSON());
          const e = 1e-4;
          const bump = (d: number) => (i === h0.dim ? (probe.b = h0.b + d) : (probe.w[i] = h0.w[i] + d));
          bump(e);
          const up = headObjective(which, probe);
          bump(-e);
          const dn = headObjective(which, probe);
          relClose(g[i], (up - dn) / (2 * e), `${which} head [${i}]`, 5e-3);
        }
      }
      ref.destroy();
      tr.destroy();
      model.destroy();
    });

  it('zero-variance groups: reported, no replay; filtered out of N with filterZeroVariance', async () => {
    const model = makeModel(5);
    const base: GrpoOptions = {
      steps: 1,
      group: 2,
      questionsPerStep: 2,
      lr: 1e-3,
      beta: 0,
      eps: 0.2,
      ppoEpochs: 1,
      condition: 'none',
      maxNewTokens: 8,
      temperature: 1,
      maxLatents: 4,
      latentBudget: 0,
      rewards: {},
      seed: 1,
    };
    const task = { question: '12+3', gold: '15' };
    const c2 = handCompletion(prompt, [4, 4, EOS], EOS),
      c3 = handCompletion(prompt, [7, EOS], EOS);
    const mk = (c: Completion, reward: number) => ({
      task,
      comp: c,
      score: { reward, correct: reward, format: 0, latents: 0, extracted: null },
    });
    const text = (c: Completion) => c.actions.filter((a) => a.type === 'token').length;
    for (const filter of [false, true]) {
      const tr = new GrpoTrainer(model, charTok, [task], () => ({ reward: 0, format: 0 }), { ...base, filterZeroVariance: filter });
      const u = await tr.update([mk(c1, 1), mk(c2, 0), mk(c3, 1), mk(c1, 1)]);
      expect(u.advantages.zeroVariance).toEqual([false, true]);
      expect(u.replayed).toBe(2);
      expect(u.N).toBe(filter ? text(c1) + text(c2) : text(c1) + text(c2) + text(c3) + text(c1));
      tr.destroy();
    }
    model.destroy();
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('reward shaping', () => {
  // A test double with the described checker contract (`#### n` line, else the last number when not strict)
  const double: Checker = (completion, gold, opts) => {
    const m = /#### *(-?[\d,]+)/.exec(completion);
    const last = completion.match(/-?\d+/g)?.pop() ?? null;
    const extracted = m ? m[1].replace(/,/g, '') : opts?.strict ? null : last;
    return { reward: extracted === gold ? 1 : 0, format: !!m, extracted };
  };
  it('correctness + format reward - latent cost', () => {
    expect(shapeReward(double, '3+4=7\n#### 7\n', '7', 0)).toEqual({ reward: 1, correct: 1, format: 1, latents: 0, extracted: '7' });
    expect(shapeReward(double, '3+4=7\n#### 7\n', '7', 5, { formatReward: 0.1, latentCost: 0.01 }).reward).toBeCloseTo(1 + 0.1 - 0.05, 12);
    expect(shapeReward(double, '3+4=8\n#### 8\n', '7', 2, { formatReward: 0.1, latentCost: 0.01 }).reward).toBeCloseTo(0.1 - 0.02, 12);
    expect(shapeReward(double, 'so 7', '7', 0, { formatReward: 0.1 })).toMatchObject({ reward: 1, format: 0 });
    expect(shapeReward(double, 'so 7', '7', 0, { strict: true })).toMatchObject({ reward: 0, format: 0, extracted: null });
    expect(shapeReward(double, 'no answer', '7', 3, { latentCost: 0.1 }).reward).toBeCloseTo(-0.3, 12);
    expect(() => shapeReward(double, '', '7', -1)).toThrow(/latents/);
  });

  it('the WASM checker (src/data/grade.ts) through the shaping: right / wrong / missing answers', () => {
    const checker = wasmChecker;
    const o = { formatReward: 0.1, latentCost: 0.01 };
    expect(shapeReward(checker, 'She has 3 + 4 = 7 apples.\n#### 7', '7', 2, o)).toMatchObject({ correct: 1, format: 1 });
    expect(shapeReward(checker, 'She has 3 + 4 = 7 apples.\n#### 7', '7', 2, o).reward).toBeCloseTo(1.08, 12);
    expect(shapeReward(checker, 'Total: $1,200.\n#### 1,200', '1200', 0, o)).toMatchObject({ correct: 1, reward: 1.1 });
    expect(shapeReward(checker, 'So 3 + 4 = 8.\n#### 8', '7', 0, o)).toMatchObject({ correct: 0, format: 1 });
    expect(shapeReward(checker, 'I do not know.', '7', 1, o)).toMatchObject({ correct: 0, format: 0 });
    expect(shapeReward(checker, 'I do not know.', '7', 1, o).reward).toBeCloseTo(-0.01, 12);
    // no `####`: the last number counts unless strict; the format reward is not paid either way
    expect(shapeReward(checker, 'the answer is 7', '7', 0, o)).toMatchObject({ correct: 1, format: 0, reward: 1, extracted: '7' });
    expect(shapeReward(checker, 'the answer is 7', '7', 0, { ...o, strict: true })).toMatchObject({
      correct: 0,
      format: 0,
      reward: 0,
      extracted: null,
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('sampling with the KV cache', () => {
  const tasks: Task[] = [
    { question: '12+3', gold: '15' },
    { question: '4+4', gold: '8' },
    { question: '20+1', gold: '21' },
    { question: '9+9', gold: '18' },
  ];
  const opts = (o: Partial<GrpoOptions> = {}): GrpoOptions => ({
    steps: 4,
    group: 4,
    questionsPerStep: 1,
    lr: 1e-2,
    beta: 0,
    eps: 0.2,
    ppoEpochs: 1,
    condition: 'latent',
    maxNewTokens: 8,
    temperature: 1,
    maxLatents: 3,
    latentBudget: 5,
    rewards: { formatReward: 0.1 },
    seed: 11,
    freshStartProb: 0.3,
    freshEndProb: 0.4,
    ...o,
  });

  for (const [twoTrunk, condition] of [
    [false, 'latent'],
    [true, 'latent'],
    [false, 'pause'],
  ] as const)
    it(`batched group sampling (${condition}, markers, padding${twoTrunk ? ', two-trunk mixed steps' : ''}) agrees with replay`, async () => {
      const model = makeModel(7);
      if (twoTrunk) model.enableTwoTrunk();
      const start = new LogisticHead(config.hidden_size, 'start'),
        end = new LogisticHead(config.hidden_size, 'end');
      (start.b = 0), (end.b = -0.5);
      const r = lcg(4);
      const rng = { float: () => (r() + 1) / 2 };
      const comps = await sampleGroup(
        model,
        charTok.encode('12+3\n'),
        6,
        {
          condition,
          startHead: start,
          endHead: condition === 'latent' ? end : null,
          latentsPerSpan: condition === 'pause' ? 2 : undefined,
          maxNewTokens: 10,
          temperature: 1,
          topP: 1,
          maxLatents: 3,
          latentBudget: 5,
          eosId: EOS,
        },
        rng,
      );
      expect(comps.some((c) => c.latents > 0)).toBe(true);
      // one padded batch (where the routing allows it) == one at a time
      const batched = await replayEach(model, comps),
        single: ReplayResult[] = [];
      for (const c of comps) single.push(await replay(model, [c])); // sequential: forwards on one model must not interleave
      comps.forEach((_, b) => batched.tokenLogp[b].forEach((x, t) => expect(Math.abs(x - single[b].tokenLogp[0][t])).toBeLessThan(1e-5)));
      for (const c of comps) {
        expect(c.latents).toBeLessThanOrEqual(5);
        for (const s of c.spans) expect(s.count).toBeLessThanOrEqual(condition === 'pause' ? 2 : 3);
        if (condition === 'pause') expect(c.seq.kind.includes(Kind.Latent)).toBe(false);
        // one at a time (no padding, no mixing): sampled token logp == replayed logp; decision p == head(hidden)
        const rp = await replay(model, [c], { wantHidden: true });
        const toks = c.actions.filter((a) => a.type === 'token'),
          dec = c.actions.filter((a) => a.type !== 'token');
        toks.forEach((a, t) => expect(Math.abs(a.logp - rp.tokenLogp[0][t])).toBeLessThan(1e-4));
        dec.forEach((a, d) =>
          expect(Math.abs((a as { p: number }).p - (a.type === 'start' ? start : end).prob(rp.decisionHidden[0][d]))).toBeLessThan(1e-4),
        );
      }
      model.destroy();
    });

  it('resume: N steps straight == N/2 + save + resume + N/2 (identical losses and weights)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latentlm-rl-'));
    try {
      const init = tinyTensors(13);
      const fresh = () => Qwen2.fromTensors(be, config, new Map([...init].map(([k, v]) => [k, v.slice()])), 'tiny');
      // an untrained model never writes `#### n`: grade "mentions the gold's last digit" so groups have variance
      const lenient: Checker = (c, gold) => ({ reward: c.includes(gold.slice(-1)) ? 1 : 0, format: c.includes('#'), extracted: null });
      const o = opts({ beta: 0.05, ppoEpochs: 2, eosId: EOS, epsHigh: 0.28, rewards: { formatReward: 0.1, latentCost: 0.05 } });
      const straightModel = fresh(),
        straightRef = fresh();
      const straight = new GrpoTrainer(straightModel, charTok, tasks, lenient, o, {}, straightRef);
      for (let s = 0; s < 4; s++) await straight.trainStep();
      const a = straight.records.map((r) => r.losses);
      expect(straight.records.some((r) => r.latentsPerAnswer > 0)).toBe(true);
      // the updates must do something for the comparison to mean anything
      expect(a.flat().some((x) => x !== 0)).toBe(true);
      expect(straight.records.some((r) => r.clipFrac > 0 || r.kl > 0)).toBe(true);
      console.log('resume test losses per step [epoch 0, epoch 1]:', JSON.stringify(a));

      const m1 = fresh(),
        r1 = fresh();
      const first = new GrpoTrainer(m1, charTok, tasks, lenient, o, {}, r1);
      for (let s = 0; s < 2; s++) await first.trainStep();
      await first.save(join(dir, 'ckpt'));
      const m2 = fresh(),
        r2 = fresh(); // resumes into a freshly initialised model: everything must come from the checkpoint
      const second = new GrpoTrainer(m2, charTok, tasks, lenient, o, {}, r2);
      expect(await second.restore(join(dir, 'ckpt'))).toBe(true);
      expect(second.step).toBe(2);
      for (let s = 0; s < 2; s++) await second.trainStep();
      const b = [...first.records, ...second.records].map((r) => r.losses);
      expect(b).toEqual(a);
      await expectSameWeights(straightModel, m2);
      expect(Array.from(second.startHead!.w)).toEqual(Array.from(straight.startHead!.w));
      expect(second.endHead!.b).toBe(straight.endHead!.b);
      for (const t of [straight, first, second]) t.destroy();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
