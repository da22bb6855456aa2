// Shared by the phase-1 tests: arithmetic rows with two breakpoints each (where latents go), and the trainer options
// of a short, quiet run (no evaluation or generation during training), which each test adjusts.
import type { Phase1Options } from '../src/latent/trainer.js';
import type { SplitRow } from '../src/latent/sequence.js';
import { Rng } from '../src/data/rng.js';

/** n rows "what is a*b+c?" (a, b, c in 2..9 from a seeded stream), stepped as a*b, then +c. */
export function arithRows(n: number, seed: number): SplitRow[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const a = rng.int(2, 9),
      b = rng.int(2, 9),
      c = rng.int(2, 9);
    return {
      question: `what is ${a}*${b}+${c}?`,
      steps: [`${a}*${b} = `, `${a * b}. ${a * b}+${c} = `, `${a * b + c}.`],
      final: String(a * b + c),
    };
  });
}

/** Full-model latent training with batches of 2 at lr 1e-2, nothing evaluated mid-run; `o` sets the rest. */
export const quietPhase1Options = (o: Partial<Phase1Options> & Pick<Phase1Options, 'k' | 'steps' | 'seed'>): Phase1Options =>
  ({
    mode: 'full',
    condition: 'latent',
    batchSize: 2,
    lr: 1e-2,
    evalEvery: 0,
    evalRows: 2,
    genRows: 0,
    ...o,
  }) as Phase1Options;
