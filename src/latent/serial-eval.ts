// Per-breakpoint measurements for the sub-step grid: how well the calculator results are predicted (teacher-forced,
// argmax: on the k = 0 model this says whether a breakpoint needs serial work at all; a grid is only meaningful where
// it is well below 100 %) and how many positions each condition spends between a breakpoint's text and its result.
import type { Qwen2 } from '../model/qwen2.js';
import { forwardEach } from './batch.js';
import type { LatentSequence } from './sequence.js';
import type { Decoder } from '../generation/generate.js';

export interface BreakpointStats {
  /** Result tokens (digits and thousands commas right after each breakpoint) predicted right, over all of them. */
  resultTokenAccuracy: number;
  /** Breakpoints whose whole result is predicted right. */
  resultExactAccuracy: number;
  /** Mean positions between the last text token before a breakpoint and the first result token. */
  reasoningPositions: number;
}

// a result's tokens: digits, and the thousands commas some problems write inside a number ("1,116")
const isDigits = (s: string) => /^[\d,]+$/.test(s);

export async function breakpointStats(model: Qwen2, tok: Decoder, seqs: LatentSequence[]): Promise<BreakpointStats> {
  const V = model.V;
  const digit = new Map<number, boolean>();
  const isDigitToken = (id: number) => {
    let d = digit.get(id);
    if (d === undefined) digit.set(id, (d = isDigits(tok.decode([id]))));
    return d;
  };
  let tokOk = 0,
    tokN = 0,
    exactOk = 0,
    exactN = 0,
    gaps = 0,
    gapN = 0;
  const scored = seqs.filter((s) => s.afterBreak.length);
  const results = await forwardEach(
    model,
    scored.map((seq) => ({ seq })),
    { wantLogits: true, withLabels: false },
  );
  let k = 0;
  for (const seq of seqs) {
    seq.afterBreak.forEach((p, i) => {
      const b = seq.beforeBreak[i];
      if (b !== undefined) (gaps += p - b - 1), gapN++;
    });
    if (!seq.afterBreak.length) continue;
    const logits = results[k++].logits!; // results follow `scored`: seqs' order, those without breakpoints left out
    for (const p of seq.afterBreak) {
      let all = true,
        any = false;
      for (let t = p; t < seq.ids.length && isDigitToken(seq.ids[t]); t++) {
        let best = 0;
        for (let v = 1; v < V; v++) if (logits[(t - 1) * V + v] > logits[(t - 1) * V + best]) best = v;
        const ok = best === seq.ids[t];
        tokOk += ok ? 1 : 0;
        tokN++;
        all &&= ok;
        any = true;
      }
      if (any) (exactOk += all ? 1 : 0), exactN++;
    }
  }
  return {
    resultTokenAccuracy: tokN ? tokOk / tokN : NaN,
    resultExactAccuracy: exactN ? exactOk / exactN : NaN,
    reasoningPositions: gapN ? gaps / gapN : 0,
  };
}
