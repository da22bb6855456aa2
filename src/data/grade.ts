// Exact-match reward for GSM8K-style answers, computed in WASM (assembly/_text_reward.ts has the grammar).
//   reward("... so she has 7.50 dollars.\n#### $7.50", "7.5") -> {reward: 1, format: 1, extracted: "7.5"}
// Extraction: the number after the last `####` (format = 1); if there is none, the last number in the text
// (format = 0) unless `strict`, in which case nothing is extracted. '$' and ',' are ignored; numbers are
// compared as normalised decimal strings (leading zeros and trailing fraction zeros dropped), never as
// floats, so arbitrarily long numbers compare exactly. Linear time in the input length, whatever it holds.
import { rewardRaw } from '../text/text-wasm.js';

export interface RewardOptions {
  /** Only an answer written as `#### N` counts (no fallback to the last number in the text). */
  strict?: boolean;
}

export interface RewardResult {
  /** 1 if the extracted answer equals the gold answer numerically. */
  reward: 0 | 1;
  /** 1 if the completion wrote its answer as `#### N`. */
  format: 0 | 1;
  /** The extracted answer in canonical form ('-'? digits ('.' digits)?), '' if none was found. */
  extracted: string;
}

export type Gold = string | number;

function goldString(g: Gold, where: string): string {
  if (typeof g === 'string') return g;
  if (typeof g === 'number' && Number.isFinite(g)) {
    const s = String(g);
    // Exponent forms (1e21, 1e-7) are not decimal numbers; pass such golds as strings.
    if (!/e/i.test(s)) return s;
  }
  throw new Error(`reward: gold ${where}${JSON.stringify(g)} is not a decimal number (pass a string such as "72")`);
}

function finish(r: { reward: number; format: number; extracted: string }, gold: string, where: string): RewardResult {
  if (r.reward < 0)
    throw new Error(`reward: gold ${where}${JSON.stringify(gold.length > 80 ? gold.slice(0, 80) + '...' : gold)} is not a number`);
  return { reward: r.reward as 0 | 1, format: r.format as 0 | 1, extracted: r.extracted };
}

/** Scores one completion against a gold answer (e.g. a GSM8K `final`). Throws if the gold is not a number. */
export function reward(completion: string, gold: Gold, opts: RewardOptions = {}): RewardResult {
  if (typeof completion !== 'string') throw new Error(`reward: completion must be a string, got ${typeof completion}`);
  const g = goldString(gold, '');
  return finish(rewardRaw([completion], [g], !!opts.strict)[0], g, '');
}

/** Scores a batch in one WASM call (for RL: one call per rollout batch). */
export function rewardBatch(completions: readonly string[], golds: readonly Gold[], opts: RewardOptions = {}): RewardResult[] {
  if (completions.length !== golds.length) throw new Error(`rewardBatch: ${completions.length} completions but ${golds.length} golds`);
  completions.forEach((c, i) => {
    if (typeof c !== 'string') throw new Error(`rewardBatch: completion ${i} must be a string, got ${typeof c}`);
  });
  const gs = golds.map((g, i) => goldString(g, `${i} `));
  return rewardRaw(completions, gs, !!opts.strict).map((r, i) => finish(r, gs[i], `${i} `));
}
