// Sampling of the decoder's three kinds of action: text tokens (temperature, nucleus) and the heads' yes/no
// decisions. Each returns the log-probability of what it picked under the distribution it sampled from, which
// is what RL's importance ratios and the sampler-vs-replay check compare against.

/** Anything with a float() in [0, 1): src/data/rng.ts's Rng. */
export interface UniformSource {
  float(): number;
}

/** log p of a Bernoulli outcome from its probability, safe at p = 0 or 1. */
export const bernoulliLogp = (p: number, yes: boolean) => Math.log(Math.max(1e-12, yes ? p : 1 - p));

/** Samples a token from logits row `off` (temperature, nucleus); returns the id and its log-prob under that distribution. */
export function sampleToken(
  logits: Float32Array,
  off: number,
  V: number,
  temperature: number,
  topP: number,
  rng: UniformSource,
): { id: number; logp: number } {
  let mx = -Infinity,
    arg = 0;
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

/**
 * A head's yes/no decision from its probability: sampled (RL, and anyone who wants the policy's own behaviour), or
 * thresholded at 0.5 (phase-1 evaluation: deterministic, and it draws nothing from the random stream).
 */
export type DecisionMode = 'sample' | 'threshold';

export function decide(p: number, mode: DecisionMode, rng: UniformSource): boolean {
  return mode === 'threshold' ? p > 0.5 : rng.float() < p;
}
