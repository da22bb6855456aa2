// PROVISIONAL stand-in for src/expand.ts (issue 11 part A), with its exact API, so the curriculum runs before A's
// module is merged. Expands integer products a*b by the decimal places of b (48*37 -> 48*30, 48*7, 1440 + 336);
// everything else is one step. Replaced by `../expand.js` once merged.
import type { Annotation } from '../gsm8k.js';

export type ExpandFailure = 'unparsed' | 'mismatch' | 'too-many-steps';
export type Expansion = { ok: true; steps: string[] } | { ok: false; reason: ExpandFailure; detail: string };

export function expandAnnotation(ann: Annotation, opts: { maxSteps?: number } = {}): Expansion {
  const expr = ann.expr.replace(/\s+/g, '');
  const m = /^(\d+)\*(\d+)$/.exec(expr);
  if (!m) return /^[\d.+\-*/()]+$/.test(expr) ? { ok: true, steps: [`${ann.expr} = ${ann.result}`] } : { ok: false, reason: 'unparsed', detail: `cannot read '${ann.expr}'` };
  const a = Number(m[1]), b = m[2];
  if (String(a * Number(b)) !== ann.result) return { ok: false, reason: 'mismatch', detail: `${ann.expr} is ${a * Number(b)}, annotation says ${ann.result}` };
  const parts: number[] = [];
  const steps: string[] = [];
  for (let i = 0; i < b.length; i++) {
    const d = Number(b[i]) * 10 ** (b.length - 1 - i);
    if (d === 0) continue;
    parts.push(a * d);
    steps.push(`${a}*${d} = ${a * d}`);
  }
  let acc = parts[0] ?? 0;
  for (let i = 1; i < parts.length; i++) {
    steps.push(`${acc} + ${parts[i]} = ${acc + parts[i]}`);
    acc += parts[i];
  }
  if (!steps.length) steps.push(`${ann.expr} = ${ann.result}`);
  if (opts.maxSteps && steps.length > opts.maxSteps) return { ok: false, reason: 'too-many-steps', detail: `${steps.length} steps > ${opts.maxSteps}` };
  return { ok: true, steps };
}
