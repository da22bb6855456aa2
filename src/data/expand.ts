// Sub-step expansion of GSM8K calculator annotations: `<<48*37=1776>>` becomes the elementary steps
//   48 * 30 = 1440 | 48 * 7 = 336 | 1440 + 336 = 1776
// so a model (or its latents) can be trained on arithmetic a step at a time. All arithmetic is exact (rationals),
// and an annotation whose stated result is not the exact value of its expression is never "fixed": it keeps its
// original form and comes back as a failure with a reason (see ExpandFailure), so a caller can count it.
//
// The scheme (every step is `A op B = C` with op one of + - * /, all numbers plain decimals, no commas):
//  - Parsing: numbers (`12`, `0.5`, `.5`, `5.`, `1,000`), + - * / with the usual precedence, parentheses, a
//    postfix `%` (x% is the step `x / 100`), `x`/`X`/`×` read as `*` and `÷` as `/`, a `-` or `+` sign right
//    before a number. Blanks and `$` between tokens are ignored (`$12 x 4`); anything else, two numbers in a
//    row (`2 3`) included -> 'unparsed'.
//  - Order: operations are written left to right respecting precedence and parentheses; in a chain of products
//    and quotients each factor is worked out just before it is combined (6*5*(10/100) -> 6 * 5 = 30,
//    10 / 100 = 0.1, 30 * 0.1 = 3).
//  - A sum or difference of two numbers is one step.
//  - A product is one step when one factor has at most one nonzero digit (48 * 30, 0.5 * 12). Otherwise the
//    factor with fewer nonzero digits (the second on a tie) is split into its place values, largest first, one
//    product per part, then the partial products are added left to right: 48*37 -> 48 * 30, 48 * 7, 1440 + 336.
//  - A quotient is one step when it has at most one nonzero digit or the divisor is a power of ten. Otherwise
//    long division over the quotient's place values: for each part q_i, `b * q_i = p_i` and `r - p_i = r'`
//    (starting from r = a and ending at 0), then the parts are added left to right:
//    1776/48 -> 48 * 30 = 1440, 1776 - 1440 = 336, 48 * 7 = 336, 336 - 336 = 0, 30 + 7 = 37.
//  - A chain of products and quotients with a division (a/b*c) is written left to right or as (product of the
//    multiplied factors) / (product of the divisors), whichever takes fewer steps (a tie: left to right), and
//    always the latter when left to right would pass through a number that is not a finite decimal:
//    1/3*60 -> 1 * 60 = 60, 60 / 3 = 20; 1/8*192 -> 1 * 192 = 192, then 192 / 8 by long division. Products and quotients in parentheses are merged into the chain when
//    written as they stand they would pass through such a value (3*(2/3) -> 3 * 2 = 6, 6 / 3 = 2). Any other
//    step whose value is not a finite decimal (1/3+2/3) -> 'unsupported'.
//  - A bare number (`<<12=12>>`, 433 of GSM8K's 27,998 annotations) has no operation to expand -> 'unsupported'.
//  - Exactness is i64 numerator / denominator (WASM): a value past 2^62, or with more than 18 decimals, gives
//    'unsupported' ("numbers too large") instead of a step; GSM8K's largest values (2.9e9) are far below that.
//    Chains nested on the right inside each other (1/(1/(1/(...)))) are capped by a work budget ('unsupported',
//    "too complex"); annotations over MAX_ANNOTATION_UNITS are refused before any work.
// Results: the stated result must equal the exact value ('$', ',' and blanks ignored; `N%` is accepted when
// the expression equals N or N/100). A result that is the exact value rounded or truncated to its stated
// decimals (100/3 = 33.33) is NOT accepted as an expansion, because its last step would be false: it is a
// 'wrong-result' whose detail starts with "rounded:". One step = `trivial` (already elementary).
// The work is one WASM call per batch (assembly/_text_expand.ts); expandAnnotation is a batch of one.

import type { Annotation } from './gsm8k.js';
import { textWasmExports } from '../text/text-wasm.js';

export type ExpandFailure = 'unparsed' | 'wrong-result' | 'too-long' | 'unsupported' | 'no-result';
export type Expansion = { ok: true; steps: string[] } | { ok: false; reason: ExpandFailure; detail: string };

export interface ExpandOptions {
  /** Longest expansion accepted (default 24 steps); longer ones fail with 'too-long'. */
  maxSteps?: number;
}

export const DEFAULT_MAX_STEPS = 24;
/** Longest annotation (expression + result, in UTF-16 code units) sent to the expander. */
export const MAX_ANNOTATION_UNITS = 4096;

// The JS side of assembly/_text_expand.ts. The module reports a code, a sub-code and a number per annotation,
// plus ASCII text (the steps, or a value for the detail); the detail sentences are written here, where the
// annotation's own text is at hand.
interface ExpandExports {
  expandRows(n: number, maxSteps: number): number;
}

const REASONS: Record<number, ExpandFailure> = { 1: 'unparsed', 2: 'wrong-result', 3: 'too-long', 4: 'unsupported', 5: 'no-result' };

function detail(code: number, sub: number, aux: number, text: string, ann: Annotation, maxSteps: number): string {
  const { expr, result } = ann;
  switch (code) {
    case 1:
      if (sub === 1) return `result '${result}' is not a number`;
      if (sub === 2) return `expression '${expr}': unexpected '${String.fromCodePoint(expr.codePointAt(aux) ?? 0)}' at position ${aux}`;
      if (sub === 3) return `expression '${expr}': expected ')' at position ${aux}`;
      return `expression '${expr}' ends early`;
    case 2:
      return `${sub === 2 ? 'rounded: ' : ''}'${expr}' is ${sub === 2 ? 'exactly ' : ''}${text}, the annotation says ${result}`;
    case 3:
      return `${aux} steps (max ${maxSteps})`;
    case 4:
      if (sub === 1) return `'${expr}': division by zero`;
      if (sub === 2) return `'${expr}': ${text} is not a finite decimal`;
      if (sub === 3) return `expression '${expr}' has no operation`;
      if (sub === 4) return `'${expr}': numbers too large for exact 64-bit arithmetic`;
      if (sub === 5) return `'${expr}': parentheses nested deeper than 100`;
      if (sub === 7) return `'${expr}': too complex to expand (nested products and quotients)`;
      return `'${expr}': internal error, the steps end at ${text} instead of the exact value`;
    default:
      return `annotation '${expr}' has no result`;
  }
}

/** Expands many annotations in one WASM call (see the header for the scheme). */
export function expandAnnotations(anns: Annotation[], opts: ExpandOptions = {}): Expansion[] {
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  if (!Number.isInteger(maxSteps) || maxSteps < 1 || maxSteps > 0x7fffffff)
    throw new Error(`expand: maxSteps must be a positive integer, got ${maxSteps}`);
  const n = anns.length;
  const w = textWasmExports<ExpandExports>();
  anns.forEach((a, i) => {
    if (typeof a?.expr !== 'string' || typeof a?.result !== 'string')
      throw new Error(`expand: annotation ${i} is not {expr: string, result: string}`);
  });
  // An annotation over MAX_ANNOTATION_UNITS is refused here (GSM8K's longest is under 60 characters), so a
  // pathological input cannot make the WASM node pool or its text outgrow memory; it is sent as an empty one.
  const fits = anns.map((a) => a.expr.length + a.result.length <= MAX_ANNOTATION_UNITS);
  const sent = anns.map((a, r) => (fits[r] ? a : { expr: '', result: '' }));
  // Every expression and result back to back; the table gives each one's (offset, length).
  const all = sent.map((a) => a.expr + a.result).join('');
  // Views are taken after every allocation of this call: growing memory detaches older views.
  const inPtr = w.ensureInput(all.length);
  const tabPtr = w.ensureTable(n * 4);
  const u16 = new Uint16Array(w.memory.buffer, inPtr, all.length);
  const table = new Int32Array(w.memory.buffer, tabPtr, n * 4);
  for (let i = 0; i < all.length; i++) u16[i] = all.charCodeAt(i);
  let off = 0;
  sent.forEach((a, r) => {
    table.set([off, a.expr.length, off + a.expr.length, a.result.length], 4 * r);
    off += a.expr.length + a.result.length;
  });
  const textPtr = w.expandRows(n, maxSteps);
  const out = new Int32Array(w.memory.buffer, w.outputPtr(), n * 5);
  // The text is ASCII, so one decode of the whole batch gives a string whose indices are the byte offsets.
  const textEnd = n ? out[5 * (n - 1) + 3] + out[5 * (n - 1) + 4] : 0;
  const allText = new TextDecoder().decode(new Uint8Array(w.memory.buffer, textPtr, textEnd));
  const res: Expansion[] = [];
  for (let r = 0; r < n; r++) {
    const [code, sub, aux, tOff, tLen] = out.subarray(5 * r, 5 * r + 5);
    const text = allText.slice(tOff, tOff + tLen);
    if (!fits[r]) {
      const units = anns[r].expr.length + anns[r].result.length;
      res.push({ ok: false, reason: 'unsupported', detail: `annotation is ${units} characters long (limit ${MAX_ANNOTATION_UNITS})` });
      continue;
    }
    res.push(
      code === 0
        ? { ok: true, steps: text.split('\n') }
        : { ok: false, reason: REASONS[code], detail: detail(code, sub, aux, text, anns[r], maxSteps) },
    );
  }
  return res;
}

/** Expands one calculator annotation into elementary steps (see the header for the scheme). */
export function expandAnnotation(ann: Annotation, opts: ExpandOptions = {}): Expansion {
  return expandAnnotations([ann], opts)[0];
}

export interface ExpandReport {
  /** Annotations seen. */
  annotations: number;
  /** Annotations that expanded (ok), trivial ones included. */
  expanded: number;
  /** Expanded annotations that were already elementary (one step). */
  trivial: number;
  failures: Record<ExpandFailure, number>;
  /** One row per failed annotation: `line` is the row's `line` if given, else its 1-based position in `rows`;
   *  `index` is the annotation's 0-based index within its row. */
  rows: { line: number; index: number; expr: string; result: string; reason: ExpandFailure; detail: string }[];
}

/** Expands every annotation of every row (one batch) and counts the outcomes. */
export function expansionReport(rows: { annotations: Annotation[]; line?: number }[], opts: ExpandOptions = {}): ExpandReport {
  const all = rows.flatMap((r) => r.annotations);
  const exps = expandAnnotations(all, opts);
  const report: ExpandReport = {
    annotations: all.length,
    expanded: 0,
    trivial: 0,
    failures: { unparsed: 0, 'wrong-result': 0, 'too-long': 0, unsupported: 0, 'no-result': 0 },
    rows: [],
  };
  let k = 0;
  rows.forEach((r, i) => {
    r.annotations.forEach((a, index) => {
      const e = exps[k++];
      if (e.ok) {
        report.expanded++;
        if (e.steps.length === 1) report.trivial++;
      } else {
        report.failures[e.reason]++;
        report.rows.push({ line: r.line ?? i + 1, index, expr: a.expr, result: a.result, reason: e.reason, detail: e.detail });
      }
    });
  });
  return report;
}

const pct = (k: number, n: number) => (n ? ((100 * k) / n).toFixed(1) : '0.0') + '%';

/** The report as text: totals, then each failure reason with its count and up to `examples` rows (rows whose
 *  details differ in more than their numbers and expressions first, so different causes show). */
export function formatExpandReport(r: ExpandReport, examples = 2): string {
  const out = [
    `annotations ${r.annotations}`,
    `expanded    ${r.expanded} (${pct(r.expanded, r.annotations)}), of which trivial (one step) ${r.trivial} (${pct(r.trivial, r.annotations)})`,
    `kept as written ${r.annotations - r.expanded} (${pct(r.annotations - r.expanded, r.annotations)}):`,
  ];
  for (const [reason, n] of Object.entries(r.failures)) {
    out.push(`  ${reason.padEnd(12)} ${n}`);
    const kinds = new Set<string>();
    const distinct: ExpandReport['rows'] = [];
    const others: ExpandReport['rows'] = [];
    for (const x of r.rows) {
      if (x.reason !== reason) continue;
      const kind = x.detail.replace(/'[^']*'|[\d./]+/g, '');
      (kinds.has(kind) ? others : distinct).push(x);
      kinds.add(kind);
    }
    for (const x of [...distinct, ...others].slice(0, examples))
      out.push(`      line ${x.line} #${x.index}: <<${x.expr}=${x.result}>>  ${x.detail}`);
  }
  return out.join('\n');
}
