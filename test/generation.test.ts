// The one latent-span decoder (src/generation/) against the two it replaced: generate() is now sampleGroup() with
// G = 1, and must give exactly what the old standalone B = 1 loop gave (kept below, verbatim, as the reference) —
// same text, tokens, spans, fed-back vectors, replayable sequence and decision events — for every condition,
// thresholded and sampled decisions, greedy and nucleus text, and the two-trunk model. generateMany() (several prompts
// in one cache, each at its own position) gives every prompt the answer it gets alone.
import { describe, expect, it } from 'vitest';
import { Kind, Qwen2 } from '../src/model/qwen2.js';
import { createWasmBackend } from '../src/backend/wasm.js';
import type { Backend } from '../src/backend/types.js';
import { createWebGPUBackend } from '../src/backend/webgpu.js';
import { webgpuUnavailable } from './_backends.js';
import { EXTRA_BOL, EXTRA_EOL, EXTRA_PAUSE0, type Condition } from '../src/model/latent-params.js';
import { LogisticHead } from '../src/latent/heads.js';
import { Phase1Trainer, type Phase1Options } from '../src/latent/trainer.js';
import { generate, generateMany, type Decoder, type GenerateOptions, type GenEvent, type Generation } from '../src/generation/generate.js';
import { sampleToken } from '../src/generation/sample.js';
import { DecodeInterrupted } from '../src/generation/decode.js';
import { Rng } from '../src/data/rng.js';
import { charTok, config, EOS, tinyModel } from './_char-model.js';

async function tinyLatentModel(mode: 'full' | 'two-trunk', seed: number): Promise<Qwen2> {
  const model = tinyModel(seed, 0.3);
  // the trainer adds and fills the marker/pause table (and the latent trunk in two-trunk mode)
  const row = { question: 'what is 2*3?', steps: ['2*3 = ', '6.'], final: '6' };
  await new Phase1Trainer(model, charTok, [row], [row], {
    mode,
    condition: 'latent',
    k: 2,
    steps: 1,
    batchSize: 1,
    lr: 1e-3,
    evalEvery: 0,
    evalRows: 1,
    genRows: 0,
    seed: 0,
    maxLatents: 4,
  } as Phase1Options).init();
  return model;
}

/** A head whose probability varies across positions around 0.5 (so both outcomes occur), shifted by `bias`. */
function randomHead(name: string, seed: number, bias: number): LogisticHead {
  const h = new LogisticHead(config.hidden_size, name);
  const rng = new Rng(seed);
  for (let i = 0; i < h.dim; i++) h.w[i] = 1.5 * rng.normal();
  h.b = bias;
  return h;
}

// ---- the reference: src/latent/generate.ts as it was before the decoders were merged ----
async function referenceGenerate(model: Qwen2, tok: Decoder, prompt: string, o: GenerateOptions = {}): Promise<Generation> {
  const maxNew = o.maxNewTokens ?? 128;
  const condition = o.condition ?? 'latent';
  const maxLatents = o.maxLatents ?? 8;
  const perSpan = Math.min(o.latentsPerSpan ?? maxLatents, maxLatents);
  const budget = o.latentBudget ?? 64;
  const rng = o.rng ?? new Rng(0);
  const promptIds = Array.from(tok.encode(prompt), Number);
  const cap = promptIds.length + maxNew + budget + 64;
  const cache = model.createCache(1, cap);
  const seq = { ids: [...promptIds], kind: promptIds.map(() => Kind.Token as number), extra: promptIds.map(() => -1) };
  const events: GenEvent[] = [];
  const tokenIds: number[] = [];
  const spans: Generation['spans'] = [];
  const pieces: (number[] | string)[] = [];
  let cur: number[] = [];
  const trunkOf = (k: number) => (model.twoTrunk && k !== Kind.Token ? 1 : 0);
  const step = async (ids: number[], kind: number[], extra: number[]) => {
    const inp = {
      B: 1,
      T: ids.length,
      ids: Int32Array.from(ids),
      kind: Uint8Array.from(kind),
      extra: Int32Array.from(extra),
      trunk: model.twoTrunk ? Uint8Array.from(kind.map(trunkOf)) : undefined,
    };
    return model.forward(inp, { cache, wantLastLogits: true });
  };
  try {
    let res = await step(seq.ids, seq.kind, seq.extra);
    let latentsUsed = 0;
    for (let n = 0; n < maxNew; n++) {
      if (seq.ids.length + maxLatents + 3 >= cap) break;
      // ---- start decision ----
      if (condition !== 'none' && o.startHead && latentsUsed < budget && n > 0) {
        const p = o.startHead.prob(res.lastHidden!);
        const take = o.sampleDecisions ? rng.float() < p : p > 0.5;
        events.push({ type: 'start', take, p, pos: seq.ids.length - 1 });
        if (take) {
          pieces.push(cur), (cur = []);
          const span = { at: tokenIds.length, count: 0, vectors: [] as Float32Array[] };
          res = await step([0], [Kind.Extra], [EXTRA_BOL]);
          seq.ids.push(0), seq.kind.push(Kind.Extra), seq.extra.push(EXTRA_BOL);
          const limit = Math.min(perSpan, budget - latentsUsed);
          for (let j = 0; j < limit; j++) {
            const fed = res.lastHidden!.slice();
            if (condition === 'latent') res = await step([0], [Kind.Latent], [-1]);
            else res = await step([0], [Kind.Extra], [EXTRA_PAUSE0 + j]);
            seq.ids.push(0),
              seq.kind.push(condition === 'latent' ? Kind.Latent : Kind.Extra),
              seq.extra.push(condition === 'latent' ? -1 : EXTRA_PAUSE0 + j);
            span.vectors.push(fed);
            span.count++;
            latentsUsed++;
            // the last allowed latent closes the span anyway: no decision to record there
            if (o.endHead && condition === 'latent' && j < limit - 1) {
              const pe = o.endHead.prob(res.lastHidden!);
              const stop = o.sampleDecisions ? rng.float() < pe : pe > 0.5;
              events.push({ type: 'end', stop, p: pe, pos: seq.ids.length - 1 });
              if (stop) break;
            }
          }
          res = await step([0], [Kind.Extra], [EXTRA_EOL]);
          seq.ids.push(0), seq.kind.push(Kind.Extra), seq.extra.push(EXTRA_EOL);
          spans.push(span);
          pieces.push(`⟨${span.count} latent${span.count === 1 ? '' : 's'}⟩`);
        }
      }
      // ---- next token ----
      const { id, logp } = sampleToken(res.lastLogits!, 0, res.lastLogits!.length, o.temperature ?? 0, o.topP ?? 1, rng);
      events.push({ type: 'token', id, logp, pos: seq.ids.length });
      if (id === o.eosId) break;
      tokenIds.push(id);
      cur.push(id);
      seq.ids.push(id), seq.kind.push(Kind.Token), seq.extra.push(-1);
      // stop once the final answer line is complete
      if (cur.length && /\n#### [^\n]*\n$/.test(tok.decode(tokenIds).slice(-40))) break;
      res = await step([id], [Kind.Token], [-1]);
    }
  } finally {
    model.freeCache(cache);
  }
  pieces.push(cur);
  const text = pieces.map((p) => (typeof p === 'string' ? p : tok.decode(p))).join('');
  return { text, plain: tok.decode(tokenIds), tokenIds, spans, seq, events, promptLength: promptIds.length };
}

describe('generate() through the one decoder', () => {
  const cases: { name: string; mode: 'full' | 'two-trunk'; o: GenerateOptions }[] = [];
  for (const condition of ['latent', 'pause', 'none'] as Condition[])
    for (const sampleDecisions of [false, true])
      for (const [temperature, topP] of [
        [0, 1],
        [1, 1],
        [0.8, 0.7],
      ])
        cases.push({
          name: `${condition}, ${sampleDecisions ? 'sampled' : 'thresholded'} decisions, temperature ${temperature}, topP ${topP}`,
          mode: 'full',
          o: { condition, sampleDecisions, temperature, topP },
        });
  cases.push({ name: 'latent, two-trunk, sampled', mode: 'two-trunk', o: { condition: 'latent', sampleDecisions: true, temperature: 1 } });
  cases.push({
    name: 'latent, fixed spans (no end head), tight budget',
    mode: 'full',
    o: { condition: 'latent', sampleDecisions: true, temperature: 1, latentBudget: 5, latentsPerSpan: 2 },
  });

  for (const c of cases)
    it(c.name, async () => {
      const model = await tinyLatentModel(c.mode, 3);
      let spansSeen = 0;
      for (let seed = 0; seed < 4; seed++) {
        const startHead = randomHead('start', 10 + seed, -0.5),
          endHead = c.o.latentsPerSpan ? null : randomHead('end', 20 + seed, 0);
        const o: GenerateOptions = { maxNewTokens: 20, maxLatents: 3, latentBudget: 8, eosId: EOS, startHead, endHead, ...c.o };
        const want = await referenceGenerate(model, charTok, 'what is 2*3?\n', { ...o, rng: new Rng(seed) });
        const got = await generate(model, charTok, 'what is 2*3?\n', { ...o, rng: new Rng(seed) });
        expect(got).toEqual(want);
        spansSeen += want.spans.length;
      }
      // the comparison means something only if spans were opened where the condition allows them
      if (c.o.condition !== 'none') expect(spansSeen).toBeGreaterThan(0);
      else expect(spansSeen).toBe(0);
    });
});

const noWebGPU = await webgpuUnavailable('generation: the WebGPU case of generateMany is skipped');

describe('generateMany(): several prompts decoded together', () => {
  // prompts of different lengths, so the sequences sit at different positions of one cache (KVCache.lens)
  const prompts = ['what is 2*3?\n', 'what is 12*34+5?\n', 'hi?\n'];
  /** The CPU-built model's weights on another backend. */
  const onto = (make: () => Promise<Backend>) => async (m: Qwen2) => {
    const t = await m.exportTensors();
    return Qwen2.fromTensors(await make(), m.config, new Map([...t].map(([k, v]) => [k, v.data])));
  };
  const backends: [string, (m: Qwen2) => Promise<Qwen2>][] = [
    ['cpu', async (m) => m],
    ['wasm, 2 threads', onto(() => createWasmBackend({ threads: 2, parallelThreshold: 0 }))],
    ...(noWebGPU ? [] : ([['webgpu', onto(() => createWebGPUBackend())]] as [string, (m: Qwen2) => Promise<Qwen2>][])),
  ];
  for (const [name, onBackend] of backends)
    for (const condition of ['latent', 'pause', 'none'] as Condition[])
      it(`gives each prompt the answer it gets alone (${name}, ${condition}, greedy, thresholded)`, async () => {
        const model = await onBackend(await tinyLatentModel('full', 3));
        let spans = 0,
          differ = 0;
        for (let seed = 0; seed < 3; seed++) {
          const o: GenerateOptions = {
            condition,
            maxNewTokens: 20,
            maxLatents: 3,
            latentBudget: 8,
            eosId: EOS,
            startHead: randomHead('start', 10 + seed, -0.5),
            endHead: randomHead('end', 20 + seed, 0),
          };
          const many = await generateMany(model, charTok, prompts, o);
          expect(many.length).toBe(prompts.length);
          for (const [i, p] of prompts.entries()) {
            const alone = await generate(model, charTok, p, o);
            expect(many[i], `${p} seed ${seed}`).toEqual(alone);
            spans += alone.spans.length;
          }
          differ += new Set(many.map((g) => g.seq.ids.length)).size > 1 ? 1 : 0;
        }
        if (condition !== 'none') expect(spans).toBeGreaterThan(0);
        // the sequences really were at different lengths while decoded together
        expect(differ).toBeGreaterThan(0);
        model.be.destroy?.();
      });

  it('one prompt draws exactly what sampleGroup draws; a two-trunk model decodes prompt by prompt, same answers', async () => {
    const model = await tinyLatentModel('two-trunk', 3);
    const o: GenerateOptions = {
      condition: 'latent',
      maxNewTokens: 16,
      maxLatents: 3,
      latentBudget: 8,
      eosId: EOS,
      startHead: randomHead('start', 11, -0.5),
      endHead: randomHead('end', 21, 0),
    };
    const many = await generateMany(model, charTok, prompts, o);
    for (const [i, p] of prompts.entries()) expect(many[i]).toEqual(await generate(model, charTok, p, o));
    const sampled = { ...o, sampleDecisions: true, temperature: 1 };
    expect((await generateMany(model, charTok, [prompts[1]], { ...sampled, rng: new Rng(4) }))[0]).toEqual(
      await generate(model, charTok, prompts[1], { ...sampled, rng: new Rng(4) }),
    );
  });
});

describe('generateMany(): interrupt', () => {
  it('is asked every few positions and abandons the decode with DecodeInterrupted', async () => {
    const model = await tinyLatentModel('full', 3);
    let asked = 0;
    const o: GenerateOptions = { condition: 'none', maxNewTokens: 40, eosId: -1 };
    await expect(
      generateMany(model, charTok, ['what is 2*3?\n', 'hi?\n'], {
        ...o,
        interrupt: async () => ++asked >= 2,
      }),
    ).rejects.toBeInstanceOf(DecodeInterrupted);
    expect(asked).toBe(2);
    // never interrupted: the full answers, as without the hook
    const plain = await generateMany(model, charTok, ['what is 2*3?\n', 'hi?\n'], o);
    expect(await generateMany(model, charTok, ['what is 2*3?\n', 'hi?\n'], { ...o, interrupt: () => false })).toEqual(plain);
  });
});
