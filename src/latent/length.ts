// How many rows a --max-len cuts: a cut answer loses its end (the `#### N` line the reward checks), and a limit
// below the question's length leaves nothing to train on. Measured on the untruncated sequences, before training.
import { buildSequence, type BuildOptions, type SplitRow, type TextEncoder_ } from './sequence.js';

export interface LengthReport {
  rows: number;
  /** Rows longer than maxLen (cut). */
  cut: number;
  /** Rows with no answer token left inside maxLen (contribute nothing). */
  empty: number;
  longest: number;
}

export function measureLengths(rows: SplitRow[], tok: TextEncoder_, opts: Omit<BuildOptions, 'maxLen'>, maxLen: number): LengthReport {
  let cut = 0,
    empty = 0,
    longest = 0;
  for (const row of rows) {
    const seq = buildSequence(row, tok, opts);
    const n = seq.ids.length;
    longest = Math.max(longest, n);
    if (n <= maxLen) continue;
    cut++;
    let labels = 0;
    for (let t = 1; t < maxLen; t++) if (seq.labels[t] !== -100) labels++;
    if (labels === 0) empty++;
  }
  return { rows: rows.length, cut, empty, longest };
}
