// Sub-step curricula inside each calculator breakpoint: the `scratch` and `internalize` conditions, and `pause` on the
// same schedule. Each breakpoint i of a row has its expanded sub-steps S_i (e.g. 48*37 -> "48*30 = 1440",
// "48*7 = 336", "1440 + 336 = 1776", from src/data/expand.ts). At stage s the first min(s, |S_i|) sub-steps of every
// breakpoint are replaced by c slots each, between <bol> and <eol>; the rest stay written as text ("S_j; "):
//   stage 0 (scratch):  ... 48 * 37 = 48*30 = 1440; 48*7 = 336; 1440 + 336 = 1776; 1776 marbles ...
//   stage 1, c = 2:     ... 48 * 37 = <bol> L L <eol> 48*7 = 336; 1440 + 336 = 1776; 1776 marbles ...
//   final stage:        ... 48 * 37 = <bol> L L L L L L <eol> 1776 marbles ...
// The slots are fed-back hidden states (`internalize`, Coconut's curriculum applied inside the breakpoint) or learned
// pause embeddings (`pause` with the identical schedule: a win of latents over it is their content and depth, not the
// curriculum). Scratch text is labelled like the rest of the answer (the model must write it); slots are not.
import { Kind } from '../model/qwen2.js';
import {
  EXTRA_BOL,
  EXTRA_EOL,
  EXTRA_PAUSE0,
  packSequence,
  sequenceParts,
  type LatentSequence,
  type SplitRow,
  type TextEncoder_,
  stepPiece,
} from './sequence.js';

/** A split row whose breakpoints carry their expanded sub-steps: substeps[i] belongs to the breakpoint after steps[i]. */
export interface SubstepRow extends SplitRow {
  substeps: string[][];
}

/** What fills a replaced sub-step's slots. */
export type SlotFill = 'latent' | 'pause';

export interface CurriculumBuildOptions {
  fill: SlotFill;
  /** Slots per replaced sub-step (Coconut's c). */
  c: number;
  /** Sub-steps replaced per breakpoint, from the first (0 = all written out; Infinity = all replaced). */
  stage: number;
  /** Rows of the pause table available (slot j uses pause row j mod maxPause). */
  maxPause?: number;
  eosId?: number;
  maxLen?: number;
  /**
   * Step decoding (SIM-CoT-style, through the LM head): the c slots that replace sub-step j are asked to emit the first
   * c tokens of that sub-step's result (the number after its last "= "), so each group of latents must carry the
   * partial result it stands for. Only for training; positions are returned in `auxLabels`.
   */
  stepDecode?: boolean;
}

/** Where each breakpoint's reasoning sits in a curriculum sequence. */
export interface CurriculumSequence extends LatentSequence {
  /** Per breakpoint: positions between the end of steps[i] and the first result token (markers, slots, scratch text). */
  reasoningPositions: number[];
  /** Per breakpoint: the position whose output predicts the first result token (the "token before the result"). */
  beforeResult: number[];
}

/** The text of a sub-step as written in scratch form. */
export const scratchText = (substep: string) => `${substep}; `;

/** A row as one plain chain-of-thought text (what pretraining and the `none` condition's sequences hold). */
export const plainForm = (r: SubstepRow) => `${r.question}\n${r.steps.join('')}\n#### ${r.final}`;
/** A row as one text in scratch form: each breakpoint's sub-steps written before its result (stage 0's text). */
export const scratchForm = (r: SubstepRow) =>
  `${r.question}\n${r.steps.map((s, i) => (i > 0 ? r.substeps[i - 1].map(scratchText).join('') : '') + s).join('')}\n#### ${r.final}`;

/** The result of a sub-step "expr = result" (what step decoding asks its slots for). */
export function substepResult(substep: string): string {
  const i = substep.lastIndexOf('=');
  return (i < 0 ? substep : substep.slice(i + 1)).trim();
}

export function buildCurriculumSequence(row: SubstepRow, tok: TextEncoder_, o: CurriculumBuildOptions): CurriculumSequence {
  if (row.substeps.length !== row.steps.length - 1)
    throw new Error(
      `curriculum: row has ${row.steps.length - 1} breakpoints but ${row.substeps.length} sub-step lists (question ${JSON.stringify(row.question.slice(0, 60))})`,
    );
  if (!(o.c >= 1) || !Number.isInteger(o.c)) throw new Error(`curriculum: c (slots per sub-step) must be a positive integer, got ${o.c}`);
  const { parts, push, text } = sequenceParts(tok);
  const { ids, labels, spans, afterBreak, beforeBreak, aux } = parts;
  const reasoningPositions: number[] = [],
    beforeResult: number[] = [];
  const maxPause = o.maxPause ?? 8;
  text(row.question + '\n', false);
  for (let i = 0; i < row.steps.length; i++) {
    if (i > 0) {
      const sub = row.substeps[i - 1];
      const start = ids.length;
      beforeBreak.push(ids.length - 1);
      const replaced = Math.min(o.stage, sub.length);
      const decodeTargets: { slots: number[]; target: string }[] = [];
      if (replaced > 0) {
        const bol = ids.length;
        push(0, Kind.Extra, false, EXTRA_BOL, 1);
        const slots: number[] = [];
        for (let j = 0; j < replaced; j++) {
          const group: number[] = [];
          for (let m = 0; m < o.c; m++) {
            group.push(ids.length);
            slots.push(ids.length);
            if (o.fill === 'latent') push(0, Kind.Latent, false, -1, 1);
            else push(0, Kind.Extra, false, EXTRA_PAUSE0 + ((j * o.c + m) % maxPause), 1);
          }
          decodeTargets.push({ slots: group, target: substepResult(sub[j]) });
        }
        const eol = ids.length;
        push(0, Kind.Extra, false, EXTRA_EOL, 1);
        spans.push({ bol, latents: slots, eol, breakpoint: i - 1 });
        if (o.stepDecode) {
          // the output at slot position p predicts labels[p + 1]: slot m's target goes on the position after it
          for (const { slots: g, target } of decodeTargets) {
            const tids = Array.from(tok.encode(target), Number);
            g.forEach((p, m) => {
              if (m < tids.length && labels[p + 1] === -100) {
                labels[p + 1] = tids[m];
                aux.push(p + 1);
              }
            });
          }
        }
      }
      for (let j = replaced; j < sub.length; j++) text(scratchText(sub[j]), true);
      reasoningPositions.push(ids.length - start);
      beforeResult.push(ids.length - 1);
      afterBreak.push(ids.length);
    }
    text(stepPiece(row, i), true);
  }
  if (o.eosId !== undefined) push(o.eosId, Kind.Token, true);
  const { seq, n } = packSequence(parts, o.maxLen);
  return { ...seq, beforeResult: beforeResult.filter((p) => p < n), reasoningPositions };
}

/** Stage of a training step: stages 0..stages-2 last `stageSteps` each, the last one (every sub-step replaced) the rest. */
export function curriculumStage(step: number, stages: number, stageSteps: number): number {
  const s = Math.floor(step / Math.max(1, stageSteps));
  return s >= stages - 1 ? Infinity : s;
}

/**
 * The stage a given training row is built at: with probability `mix` an earlier stage (uniform over 0..stage-1), so
 * earlier-stage sequences stay mixed in. Decided by a hash of (seed, step, slot) rather than a stream, so a resumed run
 * builds the same batches.
 */
export function mixedStage(stage: number, mix: number, seed: number, step: number, slot: number, finite: number): number {
  if (!(mix > 0) || stage === 0) return stage;
  const top = Number.isFinite(stage) ? stage : finite;
  if (top <= 0) return stage;
  let h = (Math.imul(seed + 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step + 1, 0xc2b2ae35) ^ Math.imul(slot + 7, 0x27d4eb2f)) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  h = (h ^ (h >>> 12)) >>> 0;
  const u = h / 2 ** 32;
  if (u >= mix) return stage;
  return Math.min(top - 1, Math.floor((u / mix) * top));
}

/** The sub-step schedule of a run (Phase1Options.substeps). */
export interface SubstepSchedule {
  /** Slots per replaced sub-step. */
  c: number;
  /** 'scratch': every sub-step written out, always (the explicit upper bound); 'internalize': the staged curriculum. */
  kind: 'scratch' | 'internalize';
  /** Number of stages, the last one replacing every sub-step. */
  stages: number;
  /** Steps per stage (all but the last, which runs to the end). */
  stageSteps: number;
  /** Share of each batch built at an earlier stage. */
  mix?: number;
  /** Reset AdamW's moments when the stage changes (Coconut does). */
  resetOptimizer?: boolean;
  /** Weight of the step-decoding loss (0 = off). */
  stepDecode?: number;
  /** Weight of the hidden-state distillation loss (0 = off). */
  distill?: number;
}

export function scheduleStage(s: SubstepSchedule, step: number): number {
  return s.kind === 'scratch' ? 0 : curriculumStage(step, s.stages, s.stageSteps);
}

/** The stage held-out evaluation uses: the run's final layout. */
export const finalStage = (s: SubstepSchedule) => (s.kind === 'scratch' ? 0 : Infinity);
