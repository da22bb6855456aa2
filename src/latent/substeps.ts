// Attaches the expanded sub-steps of every breakpoint to split rows (the data the curriculum conditions need), and
// counts how many annotations expanded. An annotation that does not expand keeps one sub-step, the annotation itself
// written as "expr = result", so every row stays usable and the coverage says how much of the data was expanded.
import type { Annotation } from '../data/gsm8k.js';
import type { SplitRow } from './sequence.js';
import type { SubstepRow } from './curriculum.js';

export type Expander = (ann: Annotation) => { ok: true; steps: string[] } | { ok: false; reason: string; detail: string };

export interface ExpansionCoverage {
  annotations: number;
  /** Annotations that expanded into more than one sub-step. */
  multiStep: number;
  /** Annotations the expander refused, by reason. */
  failed: Record<string, number>;
  /** Mean sub-steps per breakpoint. */
  meanSubsteps: number;
}

export function withSubsteps(rows: SplitRow[], expand: Expander): { rows: SubstepRow[]; coverage: ExpansionCoverage } {
  const cov: ExpansionCoverage = { annotations: 0, multiStep: 0, failed: {}, meanSubsteps: 0 };
  let total = 0;
  const out = rows.map((r, i): SubstepRow => {
    if (!r.annotations) throw new Error(`sub-steps: row ${i} has no calculator annotations kept (split it with splitRow / loadGsm8k)`);
    const substeps = r.annotations.map((a) => {
      cov.annotations++;
      const e = expand(a);
      if (!e.ok) {
        cov.failed[e.reason] = (cov.failed[e.reason] ?? 0) + 1;
        return [`${a.expr} = ${a.result}`];
      }
      if (e.steps.length > 1) cov.multiStep++;
      return e.steps;
    });
    for (const s of substeps) total += s.length;
    return { ...r, substeps };
  });
  cov.meanSubsteps = cov.annotations ? total / cov.annotations : 0;
  return { rows: out, coverage: cov };
}
