// The RL policy: a Qwen2 model that writes text and, at any text position, may open a span of latents.
// Its actions are (1) the next text token, (2) the start head's decision "open a latent span here", and (3) the end
// head's decision "close the span now" after each latent. All three are sampled, so RL learns WHEN to think in
// latents as well as what to write. Caps: `maxLatents` per span, `latentBudget` per completion.
//
// Two halves:
//  - sampleGroup(): G completions of one prompt, batched (B = G) with the KV cache. The G sequences advance in
//    lock-step, one position per forward, so their positions stay aligned even though each decides for itself what
//    its next input is (a token, <bol>, a latent, <eol>). Finished rows ride along with a dummy input.
//  - replay(): re-runs completions' sequences through forward() (optionally with grad and per-label weights) to
//    get the current policy's log-probs of the sampled tokens and the hidden states the heads decided on.
//
// Layout matches phase 1 (src/latent/generate.ts) so phase-1 checkpoints are valid policies:
//   prompt ... text <bol> latent x k <eol> text ... [eos]
// A start decision is taken on the hidden state of the last text position (never before the first generated
// token, and never right after an <eol>); an end decision on the hidden state of each latent, except when the span
// is at its cap (the close is then forced: not an action, so it carries no gradient).
import { Kind, type Qwen2, type KVCache, type ForwardInput } from '../model/qwen2.js';
import type { Tensor } from '../backend/types.js';
import type { LogisticHead } from '../latent/heads.js';
import { EXTRA_BOL, EXTRA_EOL, EXTRA_PAUSE0, type Condition } from '../latent/sequence.js';

/** Anything with a float() in [0, 1): src/rng.ts's Rng. */
export interface UniformSource {
  float(): number;
}

export interface PolicyOptions {
  /** 'latent': fed-back hidden states; 'pause': learned pause embeddings; 'none': text only. */
  condition: Condition;
  startHead: LogisticHead | null;
  endHead: LogisticHead | null;
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
  /** Stop a completion early (e.g. once its `#### answer` line is complete); gets the generated text token ids. */
  stop?: (tokens: number[]) => boolean;
}

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
  /** Latent spans: `at` = number of text tokens before the span. */
  spans: { at: number; count: number }[];
  latents: number;
  finish: 'eos' | 'stop' | 'length';
}

/** log p of a Bernoulli outcome from its probability, safe at p = 0 or 1. */
export const bernoulliLogp = (p: number, yes: boolean) => Math.log(Math.max(1e-12, yes ? p : 1 - p));

/** Samples a token from logits row `off` (temperature, nucleus); returns the id and its log-prob under that distribution. */
export function sampleToken(logits: Float32Array, off: number, V: number, temperature: number, topP: number, rng: UniformSource): { id: number; logp: number } {
  let mx = -Infinity, arg = 0;
  for (let i = 0; i < V; i++) if (logits[off + i] > mx) (mx = logits[off + i]), (arg = i);
  const t = temperature > 0 ? temperature : 1;
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp((logits[off + i] - mx) / t);
  const logZ = Math.log(sum);
  const logp = (i: number) => (logits[off + i] - mx) / t - logZ;
  if (temperature <= 0) return { id: arg, logp: logp(arg) };
  if (topP >= 1) {
    // inverse CDF in id order: no sort, O(V)
    let u = rng.float() * sum;
    for (let i = 0; i < V; i++) {
      u -= Math.exp((logits[off + i] - mx) / t);
      if (u <= 0) return { id: i, logp: logp(i) };
    }
    return { id: arg, logp: logp(arg) };
  }
  // nucleus: the most probable tokens until topP of the mass; the logp reported is under the truncated distribution
  const idx: number[] = [];
  for (let i = 0; i < V; i++) if (logits[off + i] - mx > -30 * t) idx.push(i);
  idx.sort((a, b) => logits[off + b] - logits[off + a]);
  let mass = 0;
  const keep: number[] = [];
  for (const i of idx) {
    keep.push(i);
    mass += Math.exp(logp(i));
    if (mass >= topP) break;
  }
  let u = rng.float() * mass;
  for (const i of keep) {
    u -= Math.exp(logp(i));
    if (u <= 0) return { id: i, logp: logp(i) - Math.log(mass) };
  }
  const last = keep[keep.length - 1];
  return { id: last, logp: logp(last) - Math.log(mass) };
}

/** Two-trunk routing: markers and latents go through the latent trunk, text through the language trunk. */
export const trunkOfKind = (k: number) => (k === Kind.Token ? 0 : 1);

/**
 * One incremental step for B rows whose trunks may differ (two-trunk mode). forward() routes a whole segment to
 * one trunk, so a mixed step runs twice over the same cache slot: first the latent trunk (its K/V rows and final
 * hidden states for the latent-routed rows are set aside), then the language trunk, and the set-aside rows are
 * copied back. Exact, at twice the cost of that one step; uniform steps (the common case) run once.
 */
async function cachedStep(model: Qwen2, cache: KVCache, inp: ForwardInput, trunk: Uint8Array | null): Promise<{ logits: Float32Array; hidden: Float32Array }> {
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
  const be = model.be, KV = model.KV, H = model.H, V = model.V, len = cache.len, cap = cache.cap;
  const rows = [...trunk.keys()].filter((b) => trunk[b] === 1);
  const r1 = await model.forward({ ...inp, trunk: new Uint8Array(B).fill(1) }, { cache, wantLastLogits: true });
  const saved: Tensor[] = [];
  for (let l = 0; l < model.L; l++) {
    const k = be.alloc(rows.length * KV, 'f32', 'rl:mixed-k'), v = be.alloc(rows.length * KV, 'f32', 'rl:mixed-v');
    rows.forEach((b, j) => {
      be.copy2d({ src: cache.k[l], dst: k, rows: 1, cols: KV, srcOff: (b * cap + len) * KV, srcStride: 0, dstOff: j * KV, dstStride: 0 });
      be.copy2d({ src: cache.v[l], dst: v, rows: 1, cols: KV, srcOff: (b * cap + len) * KV, srcStride: 0, dstOff: j * KV, dstStride: 0 });
    });
    saved.push(k, v);
  }
  cache.len = len;
  const r2 = await model.forward({ ...inp, trunk: new Uint8Array(B) }, { cache, wantLastLogits: true });
  for (let l = 0; l < model.L; l++)
    rows.forEach((b, j) => {
      be.copy2d({ src: saved[2 * l], dst: cache.k[l], rows: 1, cols: KV, srcOff: j * KV, srcStride: 0, dstOff: (b * cap + len) * KV, dstStride: 0 });
      be.copy2d({ src: saved[2 * l + 1], dst: cache.v[l], rows: 1, cols: KV, srcOff: j * KV, srcStride: 0, dstOff: (b * cap + len) * KV, dstStride: 0 });
    });
  for (const t of saved) be.free(t);
  const logits = r2.lastLogits!, hidden = r2.lastHidden!;
  for (const b of rows) {
    logits.set(r1.lastLogits!.subarray(b * V, (b + 1) * V), b * V);
    hidden.set(r1.lastHidden!.subarray(b * H, (b + 1) * H), b * H);
    // the cache's lastHidden feeds the next latent input: it must be the latent trunk's for these rows
    be.upload(cache.lastHidden, hidden.subarray(b * H, (b + 1) * H), b * H);
  }
  return { logits, hidden };
}

/**
 * The shared prompt runs once (B = 1) and its K/V rows are copied into every row of the group's cache: G times
 * less prefill compute than running G identical prompts.
 */
async function prefill(model: Qwen2, cache: KVCache, promptIds: ArrayLike<number>): Promise<{ logits: Float32Array; hidden: Float32Array }> {
  const G = cache.B, P = promptIds.length, KV = model.KV, H = model.H, V = model.V, be = model.be;
  const one = model.createCache(1, P);
  try {
    const r = await model.forward({ B: 1, T: P, ids: Int32Array.from(promptIds, Number), trunk: model.twoTrunk ? new Uint8Array(P) : undefined }, { cache: one, wantLastLogits: true });
    for (let l = 0; l < model.L; l++)
      for (let b = 0; b < G; b++) {
        be.copy2d({ src: one.k[l], dst: cache.k[l], rows: 1, cols: P * KV, srcStride: 0, dstOff: b * cache.cap * KV, dstStride: 0 });
        be.copy2d({ src: one.v[l], dst: cache.v[l], rows: 1, cols: P * KV, srcStride: 0, dstOff: b * cache.cap * KV, dstStride: 0 });
      }
    for (let b = 0; b < G; b++) be.copy2d({ src: one.lastHidden, dst: cache.lastHidden, rows: 1, cols: H, srcStride: 0, dstOff: b * H, dstStride: 0 });
    cache.len = P;
    const logits = new Float32Array(G * V), hidden = new Float32Array(G * H);
    for (let b = 0; b < G; b++) logits.set(r.lastLogits!, b * V), hidden.set(r.lastHidden!, b * H);
    return { logits, hidden };
  } finally {
    model.freeCache(one);
  }
}

type Last = 'text' | 'bol' | 'latent' | 'eol';

/** Samples G completions of one prompt, batched with the KV cache. */
export async function sampleGroup(model: Qwen2, promptIds: ArrayLike<number>, G: number, o: PolicyOptions, rng: UniformSource): Promise<Completion[]> {
  const P = promptIds.length;
  if (P === 0) throw new Error('sampleGroup: empty prompt');
  const V = model.V, H = model.H;
  const useSpans = o.condition !== 'none' && !!o.startHead && o.latentBudget > 0 && o.maxLatents > 0;
  const perSpan = Math.min(o.latentsPerSpan ?? o.maxLatents, o.maxLatents);
  const budget = useSpans ? o.latentBudget : 0;
  // every span costs its latents + 2 markers; +1 for the eos input
  const cap = P + o.maxNewTokens + 3 * budget + 2;
  const rows = Array.from({ length: G }, () => ({
    c: { seq: { ids: Array.from(promptIds, Number), kind: new Array(P).fill(Kind.Token), extra: new Array(P).fill(-1) }, promptLength: P, tokens: [], actions: [], spans: [], latents: 0, finish: 'length' } as Completion,
    last: 'text' as Last,
    done: false,
    spanCount: 0,
    spanLimit: 0,
  }));
  const cache = model.createCache(G, cap);
  try {
    let res = await prefill(model, cache, promptIds);
    const nIds = new Int32Array(G), nKind = new Uint8Array(G), nExtra = new Int32Array(G), nTrunk = new Uint8Array(G);
    for (;;) {
      for (let b = 0; b < G; b++) {
        const r = rows[b];
        nIds[b] = 0, nKind[b] = Kind.Token, nExtra[b] = -1;
        if (r.done) continue;
        const c = r.c, pos = c.seq.ids.length;
        const hid = res.hidden.subarray(b * H, (b + 1) * H);
        const push = (id: number, kind: number, extra: number) => {
          c.seq.ids.push(id), c.seq.kind.push(kind), c.seq.extra.push(extra);
          nIds[b] = id, nKind[b] = kind, nExtra[b] = extra;
        };
        const openLatent = () => {
          r.spanCount++, c.latents++, c.spans[c.spans.length - 1].count++;
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
            stop = rng.float() < p;
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
          const take = rng.float() < p;
          c.actions.push({ type: 'start', pos: pos - 1, take, p, logp: bernoulliLogp(p, take) });
          if (take) {
            r.spanCount = 0;
            r.spanLimit = Math.min(perSpan, budget - c.latents);
            c.spans.push({ at: c.tokens.length, count: 0 });
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
      if (cache.len + 1 > cap) throw new Error(`sampleGroup: KV cache capacity ${cap} exceeded (internal sizing error)`);
      // finished rows ride along on the trunk of an active row, so they never force a mixed step
      const active = rows.findIndex((r) => !r.done);
      for (let b = 0; b < G; b++) nTrunk[b] = trunkOfKind(nKind[b]);
      for (let b = 0; b < G; b++) if (rows[b].done) nTrunk[b] = nTrunk[active];
      res = await cachedStep(model, cache, { B: G, T: 1, ids: nIds.slice(), kind: nKind.slice(), extra: nExtra.slice() }, model.twoTrunk ? nTrunk.slice() : null);
    }
  } finally {
    model.freeCache(cache);
  }
  return rows.map((r) => r.c);
}

/** Text of a completion with latent spans marked as ⟨k latents⟩. */
export function markedText(c: Completion, decode: (ids: number[]) => string): string {
  let out = '', at = 0;
  for (const s of c.spans) {
    out += decode(c.tokens.slice(at, s.at)) + `⟨${s.count} latent${s.count === 1 ? '' : 's'}⟩`;
    at = s.at;
  }
  return out + decode(c.tokens.slice(at));
}

export interface ReplayOptions {
  grad?: boolean;
  lossScale?: number;
  /** Per completion, a weight per token action (same order as its token actions). */
  weights?: Float64Array[];
  wantHidden?: boolean;
}

export interface ReplayResult {
  /** Per completion: log p of each token action under the current model (untempered). */
  tokenLogp: Float64Array[];
  /** Per completion: the final-norm hidden state at each decision action's position. */
  decisionHidden: Float32Array[][];
}

/** True when these completions can share one forward (two-trunk routing must agree at every position). */
export function canBatch(model: Qwen2, comps: Completion[]): boolean {
  if (!model.twoTrunk || comps.length < 2) return true;
  const T = Math.max(...comps.map((c) => c.seq.ids.length));
  for (let t = 0; t < T; t++) {
    let tr = -1;
    for (const c of comps) {
      if (t >= c.seq.kind.length) continue;
      const x = trunkOfKind(c.seq.kind[t]);
      if (tr >= 0 && x !== tr) return false;
      tr = x;
    }
  }
  return true;
}

/**
 * Runs completions through forward() as one batch (right-padded: the model is causal, so padding after a sequence
 * never changes its positions). Labels are the sampled tokens at their positions, so lossAt = -log p(token).
 * With grad, call model.backward() afterwards; the label weights carry the policy-gradient coefficients.
 */
export async function replay(model: Qwen2, comps: Completion[], o: ReplayOptions = {}): Promise<ReplayResult> {
  const B = comps.length, T = Math.max(...comps.map((c) => c.seq.ids.length)), H = model.H;
  const ids = new Int32Array(B * T), kind = new Uint8Array(B * T), extra = new Int32Array(B * T).fill(-1);
  const labels = new Int32Array(B * T).fill(-100), labelWeights = o.weights ? new Float32Array(B * T) : undefined;
  const trunk = model.twoTrunk ? new Uint8Array(B * T) : undefined;
  comps.forEach((c, b) => {
    const n = c.seq.ids.length;
    for (let t = 0; t < n; t++) {
      ids[b * T + t] = c.seq.kind[t] === Kind.Token ? c.seq.ids[t] : 0;
      kind[b * T + t] = c.seq.kind[t];
      extra[b * T + t] = c.seq.extra[t];
      if (trunk) trunk[b * T + t] = trunkOfKind(c.seq.kind[t]);
    }
    let j = 0;
    for (const a of c.actions) {
      if (a.type !== 'token') continue;
      labels[b * T + a.pos] = a.id;
      if (labelWeights) labelWeights[b * T + a.pos] = o.weights![b][j];
      j++;
    }
  });
  if (trunk) {
    // padding takes the routing of the rows that are real at that position, so routing is uniform per position
    for (let t = 0; t < T; t++) {
      const real = comps.findIndex((c) => t < c.seq.ids.length);
      for (let b = 0; b < B; b++) {
        if (t >= comps[b].seq.ids.length) trunk[b * T + t] = trunk[real * T + t];
        else if (trunk[b * T + t] !== trunk[real * T + t]) throw new Error('replay: two-trunk routing differs across the batch; replay these completions one at a time (see canBatch)');
      }
    }
  }
  const r = await model.forward({ B, T, ids, kind, extra, labels, labelWeights, trunk }, { grad: o.grad, lossScale: o.lossScale, wantHidden: o.wantHidden });
  const tokenLogp: Float64Array[] = [], decisionHidden: Float32Array[][] = [];
  comps.forEach((c, b) => {
    const lp: number[] = [], hs: Float32Array[] = [];
    for (const a of c.actions) {
      if (a.type === 'token') lp.push(-r.lossAt![b * T + a.pos]);
      else if (r.hidden) hs.push(r.hidden.slice((b * T + a.pos) * H, (b * T + a.pos + 1) * H));
    }
    tokenLogp.push(Float64Array.from(lp));
    decisionHidden.push(hs);
  });
  return { tokenLogp, decisionHidden };
}
