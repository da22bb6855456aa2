// Text in, text out: one answer to one prompt, through the one latent-span decoder (sampleGroup with G = 1).
// At each text position the start head decides whether to open a latent span (<bol>); inside a span each
// latent's hidden state is fed back as the next input until the end head says stop or the span's cap is hit
// (never 500 latents in a row), then <eol> closes the span and text resumes. Defaults suit evaluation: greedy
// text and thresholded decisions, so an answer is a deterministic function of the model and the prompt.
import type { Qwen2 } from '../model/qwen2.js';
import type { Condition } from '../model/latent-params.js';
import { Rng } from '../data/rng.js';
import { markedText, sampleGroups, type Completion, type DecisionHead } from './decode.js';
import type { TextCodec } from '../text/tokenizer-shape.js';

/** What generation needs of a tokenizer (kept under this name for callers of the public API). */
export type Decoder = TextCodec;

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  topP?: number;
  /** What fills a span: fed-back hidden states ('latent'), learned pause embeddings ('pause'), or never open one ('none'). */
  condition?: Condition;
  startHead?: DecisionHead | null;
  endHead?: DecisionHead | null;
  /** Fixed span length when there is no end head (and the hard cap when there is). */
  latentsPerSpan?: number;
  maxLatents?: number;
  /** Total latents allowed in one answer. */
  latentBudget?: number;
  /** Sample the head decisions (RL) instead of thresholding at 0.5. */
  sampleDecisions?: boolean;
  eosId?: number;
  rng?: Rng;
  /** See DecodeOptions.interrupt (generateMany then throws DecodeInterrupted). */
  interrupt?: () => boolean | Promise<boolean>;
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
  /** The full input sequence (prompt + generated, no eos) with kinds: replayable through forward() for training. */
  seq: { ids: number[]; kind: number[]; extra: number[] };
  events: GenEvent[];
  promptLength: number;
}

/** The answer stops once its final line `#### <answer>\n` is complete. */
const ANSWER_DONE = /\n#### [^\n]*\n$/;

export async function generate(model: Qwen2, tok: Decoder, prompt: string, o: GenerateOptions = {}): Promise<Generation> {
  return (await generateMany(model, tok, [prompt], o))[0];
}

/**
 * generate() for several prompts decoded together (one forward per position for all of them: sampleGroups). With
 * the defaults (greedy text, thresholded decisions) each answer is the one generate() gives for its prompt alone, up
 * to float summation order; sampled decisions or text draw from `rng` across the prompts in row order.
 */
export async function generateMany(model: Qwen2, tok: Decoder, prompts: string[], o: GenerateOptions = {}): Promise<Generation[]> {
  const maxLatents = o.maxLatents ?? 8;
  const groups = await sampleGroups(
    model,
    prompts.map((p) => Array.from(tok.encode(p), Number)),
    1,
    {
      condition: o.condition ?? 'latent',
      startHead: o.startHead ?? null,
      endHead: o.endHead ?? null,
      maxNewTokens: o.maxNewTokens ?? 128,
      temperature: o.temperature ?? 0,
      topP: o.topP ?? 1,
      maxLatents,
      latentBudget: o.latentBudget ?? 64,
      latentsPerSpan: o.latentsPerSpan,
      eosId: o.eosId,
      decisions: o.sampleDecisions ? 'sample' : 'threshold',
      recordFedVectors: true,
      stop: (tokens) => ANSWER_DONE.test(tok.decode(tokens).slice(-40)),
      interrupt: o.interrupt,
    },
    o.rng ?? new Rng(0),
  );
  return groups.map(([c]) => asGeneration(c, tok));
}

function asGeneration(c: Completion, tok: Decoder): Generation {
  // the eos token is an action (it ends the answer) but not an input the answer's sequence contains
  const seq = c.finish === 'eos' ? { ids: c.seq.ids.slice(0, -1), kind: c.seq.kind.slice(0, -1), extra: c.seq.extra.slice(0, -1) } : c.seq;
  const events: GenEvent[] = c.actions.map((a) =>
    a.type === 'token'
      ? { type: 'token', id: a.id, logp: a.logp, pos: a.pos }
      : a.type === 'start'
        ? { type: 'start', take: a.take, p: a.p, pos: a.pos }
        : { type: 'end', stop: a.stop, p: a.p, pos: a.pos },
  );
  const spans = c.spans.map((s) => ({ at: s.at, count: s.count, vectors: s.vectors ?? [] }));
  return {
    text: markedText(c, (t) => tok.decode(t)),
    plain: tok.decode(c.tokens),
    tokenIds: c.tokens,
    spans,
    seq,
    events,
    promptLength: c.promptLength,
  };
}
