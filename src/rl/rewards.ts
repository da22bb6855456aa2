// Reward shaping for RL with verifiable rewards. Only the TEXT of a completion is graded: the checker (the WASM
// GSM8K grader in src/data/grade.ts) extracts the final answer and compares it with the gold answer. Latents are never
// graded directly; the optional latent cost is a price per latent used, to study the compute/accuracy trade-off.
//
//   reward = correct + formatReward * format - latentCost * latents
//
// `correct` and `format` are 0/1. With formatReward = 0 and latentCost = 0 (the defaults) the reward is plain
// correctness, as in the GSM8K RLVR recipes.

import { reward } from '../data/grade.js';

/** What the answer checker returns for one completion. */
export interface CheckResult {
  /** 1 if the extracted answer equals the gold answer, else 0 (the checker's own notion of correctness). */
  reward: number;
  /** Whether the completion has the expected answer format (`#### <number>`); boolean or 0/1. */
  format: number | boolean;
  /** The answer the checker extracted; null, undefined or '' if none. */
  extracted?: string | null;
}

export type Checker = (completion: string, gold: string, opts?: { strict?: boolean }) => CheckResult;

export interface RewardShaping {
  /** Added when the completion is well-formatted (default 0). */
  formatReward?: number;
  /** Subtracted per latent used in the completion (default 0). */
  latentCost?: number;
  /** Strict grading: only the `#### ` line counts, no last-number fallback (default false). */
  strict?: boolean;
}

export interface ShapedReward {
  reward: number;
  correct: number;
  format: number;
  latents: number;
  extracted: string | null;
}

/** Grades one completion's text and shapes the reward. */
export function shapeReward(check: Checker, text: string, gold: string, latents: number, o: RewardShaping = {}): ShapedReward {
  if (!Number.isFinite(latents) || latents < 0) throw new Error(`shapeReward: latents must be a count >= 0, got ${latents}`);
  const r = check(text, gold, { strict: o.strict ?? false });
  const correct = r.reward > 0 ? 1 : 0;
  const format = r.format === true || (typeof r.format === 'number' && r.format > 0) ? 1 : 0;
  const reward = correct + (o.formatReward ?? 0) * format - (o.latentCost ?? 0) * latents;
  return { reward, correct, format, latents, extracted: r.extracted ? r.extracted : null };
}

/** The package's WASM GSM8K checker (src/data/grade.ts) as a Checker. */
export const wasmChecker: Checker = (completion, gold, opts) => reward(completion, gold, opts);
