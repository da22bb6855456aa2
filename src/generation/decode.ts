// The one latent-span decoder: a Qwen2 model writes text and, at any text position, may open a span of latents.
// Its actions are (1) the next text token, (2) the start head's decision "open a latent span here", and (3) the end
// head's decision "close the span now" after each latent. Caps: `maxLatents` per span, `latentBudget` per completion.
// Phase-1 evaluation, RL, the CLI and the browser demo all decode through sampleGroup() (generate() in
// ./generate.ts is its one-prompt, text-in/text-out form), so a policy behaves the same wherever it runs.
//
// sampleGroup(): G completions of one prompt, batched (B = G) with the KV cache. The G sequences advance in
// lock-step, one position per forward, so their positions stay aligned even though each decides for itself what
// its next input is (a token, <bol>, a latent, <eol>). Finished rows ride along with a dummy input.
// sampleGroups(): the same for several prompts at once (B = prompts x G): prompts of different lengths sit at
// their own positions in one cache (KVCache.lens, attention's per-sequence query starts), so evaluation decodes a
// batch of questions in one forward per position instead of one question at a time.
//
// Layout (the phase-1 training layout of src/latent/sequence.ts, so phase-1 checkpoints are valid policies):
//   prompt ... text <bol> latent x k <eol> text ... [eos]
// A start decision is taken on the hidden state of the last text position (never before the first generated
// token, and never right after an <eol>); an end decision on the hidden state of each latent, except when the span
// is at its cap (the close is then forced: not an action, so it carries no gradient).
import { Kind, type Qwen2, type KVCache, type ForwardInput } from '../model/qwen2.js';
import type { Tensor } from '../backend/types.js';
import { EXTRA_BOL, EXTRA_EOL, EXTRA_PAUSE0, type Condition } from '../model/latent-params.js';
import { bernoulliLogp, decide, sampleToken, type DecisionMode, type UniformSource } from './sample.js';

/** A start or end classifier as the decoder sees it: a probability from a final-norm hidden state (LogisticHead). */
export interface DecisionHead {
  prob(h: Float32Array, off?: number): number;
}

export interface DecodeOptions {
  /** 'latent': fed-back hidden states; 'pause': learned pause embeddings; 'none': text only. */
  condition: Condition;
  startHead: DecisionHead | null;
  endHead: DecisionHead | null;
  maxNewTokens: number;
  /** Sampling temperature for text tokens (1 = the policy itself). */
  temperature: number;
  topP: number;
  /** Cap on latents in one span. */
  maxLatents: number;
  /** Cap on latents in one completion. */
  latentBudget: number;
  /** Span length when there is no end head (pause condition, or no end head): min(latentsPerSpan, maxLatents). */
  latentsPerSpan?: number;
  eosId?: number;
  /** How the heads' decisions are taken (default 'sample'; 'threshold' = p > 0.5, deterministic). */
  decisions?: DecisionMode;
  /** Keep, per span, the hidden states fed back as its latents' inputs (Completion.spans[].vectors). */
  recordFedVectors?: boolean;
  /** Stop a completion early (e.g. once its `#### answer` line is complete); gets the generated text token ids. */
  stop?: (tokens: number[]) => boolean;
  /**
   * Asked every CHECK_EVERY positions (it may yield to the event loop, where a Ctrl-C handler runs): true abandons
   * the whole decode with a DecodeInterrupted error, so a large batch of questions still stops promptly.
   */
  interrupt?: () => boolean | Promise<boolean>;
}

/** Thrown by sampleGroups when DecodeOptions.interrupt says so. */
export class DecodeInterrupted extends Error {
  constructor() {
    super('decoding interrupted');
  }
}

/** Positions between DecodeOptions.interrupt checks. */
const CHECK_EVERY = 8;

export type Action =
  | { type: 'token'; pos: number; id: number; logp: number }
  | { type: 'start'; pos: number; take: boolean; p: number; logp: number }
  | { type: 'end'; pos: number; stop: boolean; p: number; logp: number };

export interface Completion {
  /** Prompt + generated inputs (the eos token included when sampled), replayable through forward(). */
  seq: { ids: number[]; kind: number[]; extra: number[] };
  promptLength: number;
  /** Generated text tokens (no eos). */
  tokens: number[];
  /** Every sampled action in order; logp under the sampling distribution. */
  actions: Action[];
  /** Latent spans: `at` = number of text tokens before the span; `vectors` with `recordFedVectors`. */
  spans: { at: number; count: number; vectors?: Float32Array[] }[];
  latents: number;
  finish: 'eos' | 'stop' | 'length';
}

/** Two-trunk routing: markers and latents go through the latent trunk, text through the language trunk. */
export const trunkOfKind = (k: number) => (k === Kind.Token ? 0 : 1);

/**
 * One incremental step for B rows whose trunks may differ (two-trunk mode). forward() routes a whole segment to
 * one trunk, so a mixed step runs twice over the same cache slot: first the latent trunk (its K/V rows and final
 * hidden states for the latent-routed rows are set aside), then the language trunk, and the set-aside rows are
 * copied back. Exact, at twice the cost of that one step; uniform steps (the common case) run once.
 */
async function cachedStep(
  model: Qwen2,
  cache: KVCache,
  inp: ForwardInput,
  trunk: Uint8Array | null,
): Promise<{ logits: Float32Array; hidden: Float32Array }> {
  const B = inp.B;
  if (!model.twoTrunk || !trunk) {
    const r = await model.forward(inp, { cache, wantLastLogits: true });
    return { logits: r.lastLogits!, hidden: r.lastHidden! };
  }
  const all = (v: number) => trunk.every((x) => x === v);
  if (all(0) || all(1)) {
    const r = await model.forward({ ...inp, trunk }, { cache, wantLastLogits: true });
    return { logits: r.lastLogits!, hidden: r.lastHidden! };
  }
  const { be, KV, H, V } = model;
  const { len, cap } = cache;
  // one cache row (one sequence's K or V at one position) to or from the side copy that keeps it
  const copyKvRow = (src: Tensor, srcRow: number, dst: Tensor, dstRow: number) =>
    be.copy2d({ src, dst, rows: 1, cols: KV, srcOff: srcRow * KV, srcStride: 0, dstOff: dstRow * KV, dstStride: 0 });
  const rows = [...trunk.keys()].filter((b) => trunk[b] === 1);
  const r1 = await model.forward({ ...inp, trunk: new Uint8Array(B).fill(1) }, { cache, wantLastLogits: true });
  const saved: Tensor[] = [];
  for (let l = 0; l < model.L; l++) {
    const k = be.alloc(rows.length * KV, 'f32', 'rl:mixed-k'),
      v = be.alloc(rows.length * KV, 'f32', 'rl:mixed-v');
    rows.forEach((b, j) => {
      copyKvRow(cache.k[l], b * cap + len, k, j);
      copyKvRow(cache.v[l], b * cap + len, v, j);
    });
    saved.push(k, v);
  }
  cache.len = len;
  const r2 = await model.forward({ ...inp, trunk: new Uint8Array(B) }, { cache, wantLastLogits: true });
  for (let l = 0; l < model.L; l++)
    rows.forEach((b, j) => {
      copyKvRow(saved[2 * l], j, cache.k[l], b * cap + len);
      copyKvRow(saved[2 * l + 1], j, cache.v[l], b * cap + len);
    });
  for (const t of saved) be.free(t);
  const logits = r2.lastLogits!,
    hidden = r2.lastHidden!;
  for (const b of rows) {
    logits.set(r1.lastLogits!.subarray(b * V, (b + 1) * V), b * V);
    hidden.set(r1.lastHidden!.subarray(b * H, (b + 1) * H), b * H);
    // the cache's lastHidden feeds the next latent input: it must be the latent trunk's for these rows
    be.upload(cache.lastHidden, hidden.subarray(b * H, (b + 1) * H), b * H);
  }
  return { logits, hidden };
}

/**
 * Each prompt runs once (B = 1) and its K/V rows are copied into its G rows of the cache (rows i*G .. i*G + G - 1
 * for prompt i): G times less prefill compute than running G identical prompts. Returns every row's logits and
 * final hidden state at its prompt's last position.
 */
async function prefill(
  model: Qwen2,
  cache: KVCache,
  prompts: ArrayLike<number>[],
  G: number,
): Promise<{ logits: Float32Array; hidden: Float32Array }> {
  const { be, KV, H, V } = model;
  const logits = new Float32Array(cache.B * V),
    hidden = new Float32Array(cache.B * H);
  for (const [i, promptIds] of prompts.entries()) {
    const P = promptIds.length;
    const one = model.createCache(1, P);
    try {
      const r = await model.forward(
        { B: 1, T: P, ids: Int32Array.from(promptIds, Number), trunk: model.twoTrunk ? new Uint8Array(P) : undefined },
        { cache: one, wantLastLogits: true },
      );
      for (let b = i * G; b < (i + 1) * G; b++) {
        for (let l = 0; l < model.L; l++)
          for (const kv of ['k', 'v'] as const)
            be.copy2d({
              src: one[kv][l],
              dst: cache[kv][l],
              rows: 1,
              cols: P * KV,
              srcOff: 0,
              srcStride: 0,
              dstOff: b * cache.cap * KV,
              dstStride: 0,
            });
        be.copy2d({ src: one.lastHidden, dst: cache.lastHidden, rows: 1, cols: H, srcOff: 0, srcStride: 0, dstOff: b * H, dstStride: 0 });
        logits.set(r.lastLogits!, b * V);
        hidden.set(r.lastHidden!, b * H);
      }
    } finally {
      model.freeCache(one);
    }
  }
  const lens = prompts.flatMap((p) => new Array<number>(G).fill(p.length));
  cache.len = Math.max(...lens);
  if (prompts.length > 1) cache.lens = Int32Array.from(lens);
  return { logits, hidden };
}

type Last = 'text' | 'bol' | 'latent' | 'eol';

/** Samples G completions of one prompt, batched with the KV cache. */
export async function sampleGroup(
  model: Qwen2,
  promptIds: ArrayLike<number>,
  G: number,
  o: DecodeOptions,
  rng: UniformSource,
): Promise<Completion[]> {
  return (await sampleGroups(model, [promptIds], G, o, rng))[0];
}

/**
 * G completions of each prompt, all decoded together (B = prompts x G; rows prompt-major, each draws from `rng` in
 * row order at every position, so one prompt gives exactly sampleGroup's draws). Several prompts need a backend
 * with `queryStarts` and one trunk; otherwise (two-trunk, whose mixed steps work on one shared position) the
 * prompts are decoded one after another, with the same result.
 */
export async function sampleGroups(
  model: Qwen2,
  prompts: ArrayLike<number>[],
  G: number,
  o: DecodeOptions,
  rng: UniformSource,
): Promise<Completion[][]> {
  if (prompts.length > 1 && (model.twoTrunk || !model.be.queryStarts)) {
    const out: Completion[][] = [];
    for (const p of prompts) out.push(...(await sampleGroups(model, [p], G, o, rng)));
    return out;
  }
  if (prompts.length === 0) return [];
  if (prompts.some((p) => p.length === 0)) throw new Error('sampleGroup: empty prompt');
  const B = prompts.length * G;
  const P = Math.max(...prompts.map((p) => p.length));
  const V = model.V,
    H = model.H;
  const useSpans = o.condition !== 'none' && !!o.startHead && o.latentBudget > 0 && o.maxLatents > 0;
  const perSpan = Math.min(o.latentsPerSpan ?? o.maxLatents, o.maxLatents);
  const budget = useSpans ? o.latentBudget : 0;
  const mode = o.decisions ?? 'sample';
  // every span costs its latents + 2 markers; +1 for the eos input
  const cap = P + o.maxNewTokens + 3 * budget + 2;
  // rows prompt-major: prompt i owns rows i*G .. i*G + G - 1
  const rows = Array.from({ length: B }, (_, b) => {
    const ids = Array.from(prompts[Math.floor(b / G)], Number);
    const c: Completion = {
      seq: { ids, kind: ids.map(() => Kind.Token), extra: ids.map(() => -1) },
      promptLength: ids.length,
      tokens: [],
      actions: [],
      spans: [],
      latents: 0,
      finish: 'length',
    };
    return { c, last: 'text' as Last, done: false, spanCount: 0, spanLimit: 0 };
  });
  const cache = model.createCache(B, cap);
  try {
    let res = await prefill(model, cache, prompts, G);
    let sinceCheck = 0;
    const nIds = new Int32Array(B),
      nKind = new Uint8Array(B),
      nExtra = new Int32Array(B),
      nTrunk = new Uint8Array(B);
    for (;;) {
      for (let b = 0; b < B; b++) {
        const r = rows[b];
        (nIds[b] = 0), (nKind[b] = Kind.Token), (nExtra[b] = -1);
        if (r.done) continue;
        const c = r.c,
          pos = c.seq.ids.length;
        const hid = res.hidden.subarray(b * H, (b + 1) * H);
        const push = (id: number, kind: number, extra: number) => {
          c.seq.ids.push(id), c.seq.kind.push(kind), c.seq.extra.push(extra);
          (nIds[b] = id), (nKind[b] = kind), (nExtra[b] = extra);
        };
        const openLatent = () => {
          const span = c.spans[c.spans.length - 1];
          r.spanCount++, c.latents++, span.count++;
          // the input of a latent is the hidden state of the position before it (the model reads it from the cache)
          span.vectors?.push(hid.slice());
          if (o.condition === 'latent') push(0, Kind.Latent, -1);
          else push(0, Kind.Extra, EXTRA_PAUSE0 + r.spanCount - 1);
          r.last = 'latent';
        };
        if (r.last === 'bol') {
          openLatent();
          continue;
        }
        if (r.last === 'latent') {
          let stop = r.spanCount >= r.spanLimit;
          if (!stop && o.endHead && o.condition === 'latent') {
            const p = o.endHead.prob(hid);
            stop = decide(p, mode, rng);
            c.actions.push({ type: 'end', pos: pos - 1, stop, p, logp: bernoulliLogp(p, stop) });
          }
          if (stop) {
            push(0, Kind.Extra, EXTRA_EOL);
            r.last = 'eol';
          } else openLatent();
          continue;
        }
        // text position (after a text token, or after <eol>)
        if (useSpans && r.last === 'text' && c.tokens.length > 0 && c.latents < budget) {
          const p = o.startHead!.prob(hid);
          const take = decide(p, mode, rng);
          c.actions.push({ type: 'start', pos: pos - 1, take, p, logp: bernoulliLogp(p, take) });
          if (take) {
            r.spanCount = 0;
            r.spanLimit = Math.min(perSpan, budget - c.latents);
            c.spans.push(o.recordFedVectors ? { at: c.tokens.length, count: 0, vectors: [] } : { at: c.tokens.length, count: 0 });
            push(0, Kind.Extra, EXTRA_BOL);
            r.last = 'bol';
            continue;
          }
        }
        const { id, logp } = sampleToken(res.logits, b * V, V, o.temperature, o.topP, rng);
        c.actions.push({ type: 'token', pos, id, logp });
        push(id, Kind.Token, -1);
        r.last = 'text';
        if (id === o.eosId) {
          (r.done = true), (c.finish = 'eos');
          continue;
        }
        c.tokens.push(id);
        if (o.stop?.(c.tokens)) (r.done = true), (c.finish = 'stop');
        else if (c.tokens.length >= o.maxNewTokens) r.done = true;
      }
      if (rows.every((r) => r.done)) break;
      if (o.interrupt && ++sinceCheck >= CHECK_EVERY) {
        sinceCheck = 0;
        if (await o.interrupt()) throw new DecodeInterrupted();
      }
      if (cache.len + 1 > cap) throw new Error(`sampleGroup: KV cache capacity ${cap} exceeded (internal sizing error)`);
      // finished rows ride along on the trunk of an active row, so they never force a mixed step
      const active = rows.findIndex((r) => !r.done);
      for (let b = 0; b < B; b++) nTrunk[b] = trunkOfKind(nKind[b]);
      for (let b = 0; b < B; b++) if (rows[b].done) nTrunk[b] = nTrunk[active];
      res = await cachedStep(
        model,
        cache,
        { B, T: 1, ids: nIds.slice(), kind: nKind.slice(), extra: nExtra.slice() },
        model.twoTrunk ? nTrunk.slice() : null,
      );
    }
  } finally {
    model.freeCache(cache);
  }
  return prompts.map((_, i) => rows.slice(i * G, (i + 1) * G).map((r) => r.c));
}

/** Text of a completion with latent spans marked as ⟨k latents⟩. */
export function markedText(c: Completion, decode: (ids: number[]) => string): string {
  let out = '',
    at = 0;
  for (const s of c.spans) {
    out += decode(c.tokens.slice(at, s.at)) + `⟨${s.count} latent${s.count === 1 ? '' : 's'}⟩`;
    at = s.at;
  }
  return out + decode(c.tokens.slice(at));
}
