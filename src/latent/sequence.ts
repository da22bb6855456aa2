// Builds phase-1 training sequences from split GSM8K rows:
//   question "\n" step0 <bol> latent x k <eol> step1 <bol> ... <eol> stepN "\n#### " final <eos>
// with latents at calculator breakpoints (the place right before the calculator's result). Labels cover the
// answer's text tokens only: not the question, not markers, not latent positions.
//
// The three conditions of every comparison share this builder, so data and budget are identical:
//   'latent'  k fed-back hidden states between <bol> and <eol>   (Coconut semantics)
//   'pause'   k learned constant embeddings between the markers  (the pause-token control)
//   'none'    no markers and no latents (plain chain-of-thought; the k = 0 baseline)
import { Kind } from '../model/qwen2.js';
import { EXTRA_BOL, EXTRA_EOL, EXTRA_PAUSE0, type Condition } from '../model/latent-params.js';
import type { TokenizerShape } from '../text/tokenizer-shape.js';

export interface SplitRow {
  question: string;
  steps: string[];
  final: string;
  /** The calculator annotations, one per breakpoint (kept for sub-step expansion; see curriculum.ts). */
  annotations?: { expr: string; result: string }[];
}

/** What building a sequence needs of a tokenizer: only encode. */
export type TextEncoder_ = Pick<TokenizerShape, 'encode'>;

// the span layout is shared with generation (src/generation/), one layer below: defined in the model layer
export { EXTRA_BOL, EXTRA_EOL, EXTRA_PAUSE0, extraRows, type Condition } from '../model/latent-params.js';

export interface LatentSequence {
  ids: Int32Array;
  kind: Uint8Array;
  extra: Int32Array;
  labels: Int32Array;
  /** Trunk routing for two-trunk mode: 1 at latent positions and markers. */
  trunk: Uint8Array;
  /** For each breakpoint with latents: the <bol> position, the latent positions, the <eol> position. */
  spans: { bol: number; latents: number[]; eol: number; breakpoint: number }[];
  /** Position of the first answer token after each breakpoint (the token the latents should help). */
  afterBreak: number[];
  /** Position of the last text token before each breakpoint (the start classifier's positives). */
  beforeBreak: number[];
  /** Number of answer-token labels. */
  labelCount: number;
  /**
   * Latent supervision (optional): positions whose label is an auxiliary target — the output of latent j is asked to
   * predict the j-th token of the text that follows the span (the calculator result). Weighted separately.
   */
  auxLabels?: number[];
}

export interface BuildOptions {
  condition: Condition;
  /** Latents per breakpoint. */
  k: number;
  /** Curriculum stage: only the first `stage` breakpoints get latents (Infinity = all). */
  stage?: number;
  eosId?: number;
  maxLen?: number;
  /**
   * Ask each latent's output to predict the next result token (latent j -> j-th token after the span), so the
   * fed-back states must carry the result (a step-level decoding objective in the spirit of SIM-CoT).
   */
  superviseLatents?: boolean;
}

/**
 * The text piece of step i: the step, and for the last one the answer's final line too. Pieces are encoded one by one,
 * and Qwen2's pre-tokenizer joins a step's closing "." with the newline ('.\n' is one token); encoded apart they
 * become "." "\n", a pair whole-text tokenization never produces, so a model pretrained on whole texts would be
 * taught an unfamiliar ending (it then ran on past the answer instead of closing with "#### N").
 */
export const stepPiece = (row: SplitRow, i: number) => (i === row.steps.length - 1 ? `${row.steps[i]}\n#### ${row.final}` : row.steps[i]);

export function buildSequence(row: SplitRow, tok: TextEncoder_, opts: BuildOptions): LatentSequence {
  const { parts, push, text } = sequenceParts(tok);
  const { ids, kind, labels, spans, afterBreak, beforeBreak, aux } = parts;
  text(row.question + '\n', false);
  const stage = opts.stage ?? Infinity;
  const useLatents = opts.condition !== 'none' && opts.k > 0;
  for (let i = 0; i < row.steps.length; i++) {
    if (i > 0) {
      // breakpoint i-1 sits between steps[i-1] and steps[i]
      if (ids.length > 0) beforeBreak.push(ids.length - 1);
      if (useLatents && i - 1 < stage) {
        const bol = ids.length;
        push(0, Kind.Extra, false, EXTRA_BOL, 1);
        const latents: number[] = [];
        for (let j = 0; j < opts.k; j++) {
          latents.push(ids.length);
          if (opts.condition === 'latent') push(0, Kind.Latent, false, -1, 1);
          else push(0, Kind.Extra, false, EXTRA_PAUSE0 + j, 1);
        }
        const eol = ids.length;
        push(0, Kind.Extra, false, EXTRA_EOL, 1);
        spans.push({ bol, latents, eol, breakpoint: i - 1 });
      }
      afterBreak.push(ids.length);
    }
    const stepStart = ids.length;
    text(stepPiece(row, i), true);
    if (opts.superviseLatents && spans.length && spans[spans.length - 1].eol === stepStart - 1) {
      const sp = spans[spans.length - 1];
      // outputs of latents 0..k-1 are read at positions latents[1..k-1], eol
      const targets = [...sp.latents.slice(1), sp.eol];
      targets.forEach((pos, j) => {
        if (stepStart + j < ids.length && kind[stepStart + j] === Kind.Token) {
          labels[pos] = ids[stepStart + j];
          aux.push(pos);
        }
      });
    }
  }
  if (opts.eosId !== undefined) push(opts.eosId, Kind.Token, true);
  return packSequence(parts, opts.maxLen).seq;
}

/**
 * Empty per-position arrays and the two ways a builder appends to them: `push` one position (a token, a latent or an
 * extra embedding row, labelled or not, on trunk `tr`), `text` the tokens of a string.
 */
export function sequenceParts(tok: TextEncoder_) {
  const parts: SequenceParts = { ids: [], kind: [], extra: [], labels: [], trunk: [], spans: [], afterBreak: [], beforeBreak: [], aux: [] };
  const push = (id: number, k: Kind, label: boolean, ex = -1, tr = 0) => {
    parts.ids.push(k === Kind.Token ? id : 0);
    parts.kind.push(k);
    parts.extra.push(ex);
    parts.labels.push(label ? id : -100);
    parts.trunk.push(tr);
  };
  const text = (s: string, label: boolean) => {
    for (const id of tok.encode(s)) push(Number(id), Kind.Token, label);
  };
  return { parts, push, text };
}

/** The per-position arrays a sequence builder fills, before they are cut to `maxLen` and packed. */
export interface SequenceParts {
  ids: number[];
  kind: number[];
  extra: number[];
  labels: number[];
  trunk: number[];
  spans: LatentSequence['spans'];
  afterBreak: number[];
  beforeBreak: number[];
  aux: number[];
}

/**
 * Cuts the parts at `maxLen` (spans and positions past the cut dropped, so a truncated row never points outside
 * itself) and packs them into typed arrays; labels are counted after the cut. Returns the cut length too.
 */
export function packSequence(p: SequenceParts, maxLen?: number): { seq: LatentSequence; n: number } {
  const n = maxLen && p.ids.length > maxLen ? maxLen : p.ids.length;
  const labelsArr = Int32Array.from(p.labels.slice(0, n));
  let labelCount = 0;
  for (let t = 1; t < n; t++) if (labelsArr[t] !== -100) labelCount++;
  const auxLabels = p.aux.filter((q) => q < n);
  const seq: LatentSequence = {
    auxLabels: auxLabels.length ? auxLabels : undefined,
    ids: Int32Array.from(p.ids.slice(0, n)),
    kind: Uint8Array.from(p.kind.slice(0, n)),
    extra: Int32Array.from(p.extra.slice(0, n)),
    labels: labelsArr,
    trunk: Uint8Array.from(p.trunk.slice(0, n)),
    spans: p.spans.filter((s) => s.eol < n),
    afterBreak: p.afterBreak.filter((q) => q < n),
    beforeBreak: p.beforeBreak.filter((q) => q < n),
    labelCount,
  };
  return { seq, n };
}

/** The same sequence with every latent span (markers included) deleted: the "latents removed" probe. */
export function removeLatents(seq: LatentSequence): LatentSequence {
  const keep: number[] = [];
  for (let t = 0; t < seq.ids.length; t++) if (seq.kind[t] === Kind.Token) keep.push(t);
  const map = new Map(keep.map((t, i) => [t, i]));
  const pick = <T extends Int32Array | Uint8Array>(a: T) =>
    a.constructor === Int32Array ? (Int32Array.from(keep.map((t) => a[t])) as T) : (Uint8Array.from(keep.map((t) => a[t])) as T);
  const labels = pick(seq.labels);
  let labelCount = 0;
  for (let t = 1; t < labels.length; t++) if (labels[t] !== -100) labelCount++;
  return {
    ids: pick(seq.ids),
    kind: pick(seq.kind),
    extra: pick(seq.extra),
    labels,
    trunk: new Uint8Array(keep.length),
    spans: [],
    afterBreak: seq.afterBreak.map((p) => map.get(p)!).filter((p) => p !== undefined),
    beforeBreak: seq.beforeBreak.map((p) => map.get(p)!).filter((p) => p !== undefined),
    labelCount,
  };
}
