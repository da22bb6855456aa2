// Generation with the KV cache, interleaving text and latent spans.
// At each text position the start head decides whether to open a latent span (<bol>); inside a span each
// latent's hidden state is fed back as the next input until the end head says stop or `maxLatents` is hit
// (never 500 latents in a row), then <eol> closes the span and text resumes.
import { Kind, type Qwen2 } from '../model/qwen2.js';
import { Rng } from '../rng.js';
import type { LogisticHead } from './heads.js';
import { sampleToken } from '../rl/policy.js';
import { EXTRA_BOL, EXTRA_EOL, EXTRA_PAUSE0, type Condition } from './sequence.js';

export interface Decoder {
  encode(text: string): Uint32Array | Int32Array | number[];
  decode(ids: ArrayLike<number>): string;
}

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  topP?: number;
  /** What fills a span: fed-back hidden states ('latent'), learned pause embeddings ('pause'), or never open one ('none'). */
  condition?: Condition;
  startHead?: LogisticHead | null;
  endHead?: LogisticHead | null;
  /** Fixed span length when there is no end head (and the hard cap when there is). */
  latentsPerSpan?: number;
  maxLatents?: number;
  /** Total latents allowed in one answer. */
  latentBudget?: number;
  /** Sample the head decisions (RL) instead of thresholding at 0.5. */
  sampleDecisions?: boolean;
  eosId?: number;
  rng?: Rng;
  /** Record log-probabilities of every decision (for RL). */
  recordLogProbs?: boolean;
}

export type GenEvent =
  | { type: 'token'; id: number; logp: number; pos: number }
  | { type: 'start'; take: boolean; p: number; pos: number }
  | { type: 'end'; stop: boolean; p: number; pos: number };

export interface Generation {
  /** Text with latent spans marked as ⟨k latents⟩. */
  text: string;
  /** Text only (what the reward checker grades). */
  plain: string;
  tokenIds: number[];
  spans: { at: number; count: number; vectors: Float32Array[] }[];
  /** The full input sequence (prompt + generated) with kinds: replayable through forward() for training. */
  seq: { ids: number[]; kind: number[]; extra: number[] };
  events: GenEvent[];
  promptLength: number;
}

export async function generate(model: Qwen2, tok: Decoder, prompt: string, o: GenerateOptions = {}): Promise<Generation> {
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
    const inp = { B: 1, T: ids.length, ids: Int32Array.from(ids), kind: Uint8Array.from(kind), extra: Int32Array.from(extra), trunk: model.twoTrunk ? Uint8Array.from(kind.map(trunkOf)) : undefined };
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
            seq.ids.push(0), seq.kind.push(condition === 'latent' ? Kind.Latent : Kind.Extra), seq.extra.push(condition === 'latent' ? -1 : EXTRA_PAUSE0 + j);
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
