// Sub-step expansion of GSM8K calculator annotations: `<<48*37=1776>>` becomes the elementary steps
//   48 * 30 = 1440 | 48 * 7 = 336 | 1440 + 336 = 1776
// so a model (or its latents) can be trained on arithmetic a step at a time. All arithmetic is exact (rationals),
// and an annotation whose stated result is not the exact value of its expression is never "fixed": it keeps its
// original form and comes back as a failure with a reason (see ExpandFailure), so a caller can count it.
//
// The scheme (every step is `A op B = C` with op one of + - * /, all numbers plain decimals):
//  - Parsing: numbers (`12`, `0.5`, `.5`, `1,000`), + - * / with the usual precedence, parentheses, a postfix
//    `%` (x% is the step `x / 100`), `x`/`X`/`×` as `*`, `÷` as `/`, `$` and blanks ignored, a leading `-` or `+`
//    before a number. Anything else -> 'unparsed'.
//  - Order: operations are written left to right respecting precedence and parentheses (post-order).
//  - A sum or difference of two numbers is one step.
//  - A product is one step when one factor has at most one nonzero digit (48 * 30, 0.5 * 12). Otherwise the
//    factor with fewer nonzero digits (the second on a tie) is split into its place values, largest first, one
//    product per part, then the partial products are added left to right: 48*37 -> 48 * 30, 48 * 7, 1440 + 336.
//  - A quotient is one step when it has at most one nonzero digit or the divisor is a power of ten. Otherwise
//    long division over the quotient's place values: for each part q_i, `b * q_i = p_i` and `r - p_i = r'`
//    (starting from r = a and ending at 0), then the parts are added left to right:
//    1776/48 -> 48 * 30 = 1440, 1776 - 1440 = 336, 48 * 7 = 336, 336 - 336 = 0, 30 + 7 = 37.
//  - A chain of products and quotients (a/b*c) whose left-to-right value would pass through a number that is not
//    a finite decimal (1/3*60) is written instead as (product of the multiplied factors) / (product of the
//    divisors): 1 * 60 = 60, 60 / 3 = 20. Products and quotients in parentheses are merged into the chain when
//    written as they stand they would pass through such a value (3*(2/3) -> 3 * 2 = 6, 6 / 3 = 2). Any other
//    step whose value is not a finite decimal (1/3+2/3) -> 'unsupported'.
//  - A bare number (`<<12=12>>`, 433 of GSM8K's 27,998 annotations) has no operation to expand -> 'unsupported'.
// Results: the stated result must equal the exact value ('$', ',' and blanks ignored; `N%` is accepted when
// the expression equals N or N/100). A result that is the exact value rounded or truncated to its stated
// decimals (100/3 = 33.33) is NOT accepted as an expansion, because its last step would be false: it is a
// 'wrong-result' whose detail starts with "rounded:". One step = `trivial` (already elementary).

import type { Annotation } from './gsm8k.js';

export type ExpandFailure = 'unparsed' | 'wrong-result' | 'too-long' | 'unsupported' | 'no-result';
export type Expansion = { ok: true; steps: string[] } | { ok: false; reason: ExpandFailure; detail: string };

export interface ExpandOptions {
  /** Longest expansion accepted (default 24 steps); longer ones fail with 'too-long'. */
  maxSteps?: number;
}

export const DEFAULT_MAX_STEPS = 24;

// ---- exact rationals (BigInt, always reduced, denominator > 0) ----
interface Q {
  n: bigint;
  d: bigint;
}
const abs = (x: bigint) => (x < 0n ? -x : x);
function gcd(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}
function rat(n: bigint, d = 1n): Q {
  if (d < 0n) [n, d] = [-n, -d];
  const g = gcd(n, d) || 1n;
  return { n: n / g, d: d / g };
}
const add = (a: Q, b: Q) => rat(a.n * b.d + b.n * a.d, a.d * b.d);
const sub = (a: Q, b: Q) => rat(a.n * b.d - b.n * a.d, a.d * b.d);
const mul = (a: Q, b: Q) => rat(a.n * b.n, a.d * b.d);
const div = (a: Q, b: Q) => rat(a.n * b.d * (b.n < 0n ? -1n : 1n), abs(b.n) * a.d);
const eq = (a: Q, b: Q) => a.n === b.n && a.d === b.d;

/** Decimal places of a finite decimal, or -1 when the denominator has a prime factor other than 2 and 5. */
function decimals(x: Q): number {
  let d = x.d;
  let twos = 0;
  let fives = 0;
  while (d % 2n === 0n) (d /= 2n), twos++;
  while (d % 5n === 0n) (d /= 5n), fives++;
  return d === 1n ? Math.max(twos, fives) : -1;
}

/** GSM8K-style text of a finite decimal: `-12.75`, `0.5`, `3` (no trailing zeros, no exponent). */
function fmt(x: Q): string {
  const k = decimals(x);
  const scaled = abs((x.n * 10n ** BigInt(k)) / x.d).toString().padStart(k + 1, '0');
  const int = scaled.slice(0, scaled.length - k);
  const frac = scaled.slice(scaled.length - k);
  return (x.n < 0n ? '-' : '') + int + (k ? '.' + frac : '');
}

/** Nonzero place-value parts, largest first, each with x's sign: 37 -> [30, 7]; 2.05 -> [2, 0.05]. */
function placeParts(x: Q): Q[] {
  const k = decimals(x);
  const digits = abs((x.n * 10n ** BigInt(k)) / x.d).toString();
  const sign = x.n < 0n ? -1n : 1n;
  const parts: Q[] = [];
  for (let i = 0; i < digits.length; i++) {
    const dgt = BigInt(digits.charCodeAt(i) - 48);
    const place = digits.length - 1 - i - k; // power of ten of this digit
    if (dgt) parts.push(place >= 0 ? rat(sign * dgt * 10n ** BigInt(place)) : rat(sign * dgt, 10n ** BigInt(-place)));
  }
  return parts;
}

/** 1, 10, 100, 0.1, 0.01, ... (dividing by one only moves the decimal point: one step). */
const isPowerOfTen = (x: Q) => /^-?(10*|0\.0*1)$/.test(fmt(x));

// ---- parsing ----
type Node =
  | { kind: 'num'; v: Q }
  | { kind: 'sum'; op: '+' | '-'; a: Node; b: Node }
  | { kind: 'chain'; first: Node; rest: { op: '*' | '/'; f: Node }[] }
  | { kind: 'pct'; a: Node };

class ParseError extends Error {}
class Unsupported extends Error {}

/** Normalises the written forms GSM8K and its variants use, so the parser only sees digits . + - * / ( ) %. */
function normalise(s: string): string {
  return s
    .replace(/[\s$]/g, '')
    .replace(/(\d),(?=\d{3}(\D|$))/g, '$1')
    .replace(/[xX×]/g, '*')
    .replace(/÷/g, '/');
}

function parseNumber(s: string): Q | null {
  const m = /^([-+]?)(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[2] === '' && !m[3])) return null;
  const frac = m[3] ?? '';
  const n = BigInt((m[2] || '0') + frac);
  return rat(m[1] === '-' ? -n : n, 10n ** BigInt(frac.length));
}

function parseExpr(src: string): Node {
  let i = 0;
  const peek = () => src[i];
  const expr = (): Node => {
    let a = term();
    while (peek() === '+' || peek() === '-') {
      const op = src[i++] as '+' | '-';
      a = { kind: 'sum', op, a, b: term() };
    }
    return a;
  };
  const term = (): Node => {
    const first = factor();
    const rest: { op: '*' | '/'; f: Node }[] = [];
    while (peek() === '*' || peek() === '/') {
      const op = src[i++] as '*' | '/';
      rest.push({ op, f: factor() });
    }
    return rest.length ? { kind: 'chain', first, rest } : first;
  };
  const factor = (): Node => {
    let a = primary();
    while (peek() === '%') {
      i++;
      a = { kind: 'pct', a };
    }
    return a;
  };
  const primary = (): Node => {
    if (peek() === '(') {
      i++;
      const a = expr();
      if (peek() !== ')') throw new ParseError(`expected ')' at position ${i}`);
      i++;
      return a;
    }
    const m = /^[-+]?(\d+\.?\d*|\.\d+)/.exec(src.slice(i));
    if (!m) throw new ParseError(i < src.length ? `unexpected '${src[i]}' at position ${i}` : 'expression ends early');
    i += m[0].length;
    return { kind: 'num', v: parseNumber(m[0])! };
  };
  const tree = expr();
  if (i < src.length) throw new ParseError(`unexpected '${src[i]}' at position ${i}`);
  return tree;
}

// ---- exact value (no steps) ----
function value(node: Node): Q {
  switch (node.kind) {
    case 'num':
      return node.v;
    case 'pct':
      return div(value(node.a), rat(100n));
    case 'sum':
      return node.op === '+' ? add(value(node.a), value(node.b)) : sub(value(node.a), value(node.b));
    case 'chain': {
      let v = value(node.first);
      for (const { op, f } of node.rest) {
        const x = value(f);
        if (op === '/' && x.n === 0n) throw new Unsupported('division by zero');
        v = op === '*' ? mul(v, x) : div(v, x);
      }
      return v;
    }
  }
}

// ---- steps ----
const nonzeroDigits = (x: Q) => placeParts(x).length;

function finite(x: Q, what: string): Q {
  if (decimals(x) < 0) throw new Unsupported(`${what} ${x.n}/${x.d} is not a finite decimal`);
  return x;
}

/** Adds the parts left to right, writing each addition; returns the total. */
function sumSteps(parts: Q[], steps: string[]): Q {
  let acc = parts[0];
  for (let k = 1; k < parts.length; k++) {
    const next = add(acc, parts[k]);
    steps.push(`${fmt(acc)} + ${fmt(parts[k])} = ${fmt(next)}`);
    acc = next;
  }
  return acc;
}

function mulSteps(a: Q, b: Q, steps: string[]): Q {
  const c = mul(a, b);
  const na = nonzeroDigits(a);
  const nb = nonzeroDigits(b);
  if (na <= 1 || nb <= 1) {
    steps.push(`${fmt(a)} * ${fmt(b)} = ${fmt(c)}`);
    return c;
  }
  const splitFirst = na < nb;
  const partials = placeParts(splitFirst ? a : b).map((p) => {
    const [x, y] = splitFirst ? [p, b] : [a, p];
    const v = mul(x, y);
    steps.push(`${fmt(x)} * ${fmt(y)} = ${fmt(v)}`);
    return v;
  });
  return sumSteps(partials, steps);
}

function divSteps(a: Q, b: Q, steps: string[]): Q {
  if (b.n === 0n) throw new Unsupported(`division by zero (${fmt(a)} / 0)`);
  const c = finite(div(a, b), `quotient ${fmt(a)} / ${fmt(b)} =`);
  const parts = placeParts(c);
  if (parts.length <= 1 || isPowerOfTen(b)) {
    steps.push(`${fmt(a)} / ${fmt(b)} = ${fmt(c)}`);
    return c;
  }
  let r = a;
  for (const p of parts) {
    const prod = mul(b, p);
    steps.push(`${fmt(b)} * ${fmt(p)} = ${fmt(prod)}`);
    const next = sub(r, prod);
    steps.push(`${fmt(r)} - ${fmt(prod)} = ${fmt(next)}`);
    r = next;
  }
  return sumSteps(parts, steps);
}

function emit(node: Node, steps: string[]): Q {
  switch (node.kind) {
    case 'num':
      return node.v;
    case 'pct':
      return divSteps(emit(node.a, steps), rat(100n), steps);
    case 'sum': {
      const a = emit(node.a, steps);
      const b = emit(node.b, steps);
      const c = node.op === '+' ? add(a, b) : sub(a, b);
      steps.push(`${fmt(a)} ${node.op} ${fmt(b)} = ${fmt(c)}`);
      return c;
    }
    case 'chain': {
      const items = [{ op: '*' as const, f: node.first }, ...node.rest];
      const flat = flatten(items, '*');
      if (flat.length === items.length) return chainSteps(items, steps);
      // Parentheses as written first; if a factor in parentheses passes through a value that is not a finite
      // decimal (3*(2/3)), the parenthesised products and quotients are merged into this chain instead.
      const tried: string[] = [];
      try {
        const v = chainSteps(items, tried);
        steps.push(...tried);
        return v;
      } catch (e) {
        if (!(e instanceof Unsupported) || !/finite decimal/.test(e.message)) throw e;
      }
      return chainSteps(flat, steps);
    }
  }
}

type Factor = { op: '*' | '/'; f: Node };

/** The factors of a chain with parenthesised chains merged in: a/(b*c) -> a / b / c, a*(b/c) -> a * b / c. */
function flatten(items: Factor[], outer: '*' | '/'): Factor[] {
  return items.flatMap(({ op, f }) => {
    const eff = op === outer ? '*' : '/';
    return f.kind === 'chain' ? flatten([{ op: '*', f: f.first }, ...f.rest], eff) : [{ op: eff, f }];
  });
}

/** Writes a chain of products and quotients (the first factor's op is '*'): left to right, unless that passes
 *  through a value that is not a finite decimal; then all products first, then one division. */
function chainSteps(items: Factor[], steps: string[]): Q {
  let v = rat(1n);
  let leftToRight = true;
  for (const { op, f } of items) {
    const x = value(f);
    if (op === '/' && x.n === 0n) throw new Unsupported('division by zero');
    v = op === '*' ? mul(v, x) : div(v, x);
    if (decimals(v) < 0) leftToRight = false;
  }
  const vals = items.map(({ op, f }) => ({ op, x: finite(emit(f, steps), 'factor') }));
  if (leftToRight) {
    let acc = vals[0].x;
    for (const { op, x } of vals.slice(1)) acc = op === '*' ? mulSteps(acc, x, steps) : divSteps(acc, x, steps);
    return acc;
  }
  const product = (xs: Q[]) => xs.slice(1).reduce((acc, x) => mulSteps(acc, x, steps), xs[0]);
  const num = product(vals.filter((t) => t.op === '*').map((t) => t.x));
  const den = product(vals.filter((t) => t.op === '/').map((t) => t.x));
  return divSteps(num, den, steps);
}

function parseResult(result: string): { values: Q[]; decimals: number } | null {
  let s = normalise(result);
  const pct = s.endsWith('%');
  if (pct) s = s.slice(0, -1);
  const v = parseNumber(s);
  if (!v) return null;
  const dot = s.indexOf('.');
  return { values: pct ? [v, div(v, rat(100n))] : [v], decimals: dot < 0 ? 0 : s.length - dot - 1 };
}

/** Expands one calculator annotation into elementary steps (see the header for the scheme). */
export function expandAnnotation(ann: Annotation, opts: ExpandOptions = {}): Expansion {
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  if (ann.result.trim() === '') return { ok: false, reason: 'no-result', detail: `annotation '${ann.expr}' has no result` };
  const res = parseResult(ann.result);
  if (!res) return { ok: false, reason: 'unparsed', detail: `result '${ann.result}' is not a number` };
  let tree: Node;
  try {
    tree = parseExpr(normalise(ann.expr));
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, reason: 'unparsed', detail: `expression '${ann.expr}': ${e.message}` };
    throw e;
  }
  if (tree.kind === 'num') return { ok: false, reason: 'unsupported', detail: `expression '${ann.expr}' has no operation` };
  try {
    const exact = value(tree);
    if (!res.values.some((v) => eq(v, exact))) {
      const stated = res.values[0];
      const tol = rat(1n, 10n ** BigInt(res.decimals));
      const diff = sub(exact, stated);
      const close = abs(diff.n) * tol.d < tol.n * diff.d;
      const shown = decimals(exact) >= 0 ? fmt(exact) : `${exact.n}/${exact.d}`;
      return close && (decimals(exact) < 0 || decimals(exact) > res.decimals)
        ? { ok: false, reason: 'wrong-result', detail: `rounded: '${ann.expr}' is exactly ${shown}, the annotation says ${ann.result}` }
        : { ok: false, reason: 'wrong-result', detail: `'${ann.expr}' is ${shown}, the annotation says ${ann.result}` };
    }
    const steps: string[] = [];
    emit(tree, steps);
    if (steps.length > maxSteps) return { ok: false, reason: 'too-long', detail: `${steps.length} steps (max ${maxSteps})` };
    return { ok: true, steps };
  } catch (e) {
    if (e instanceof Unsupported) return { ok: false, reason: 'unsupported', detail: `'${ann.expr}': ${e.message}` };
    throw e;
  }
}

/** Expands many annotations (one batch). */
export function expandAnnotations(anns: Annotation[], opts: ExpandOptions = {}): Expansion[] {
  return anns.map((a) => expandAnnotation(a, opts));
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
    const all = r.rows.filter((x) => x.reason === reason);
    const kind = (x: (typeof all)[number]) => x.detail.replace(/'[^']*'|[\d./]+/g, '');
    const distinct = all.filter((x, i) => all.findIndex((y) => kind(y) === kind(x)) === i);
    const shown = [...distinct, ...all.filter((x) => !distinct.includes(x))].slice(0, examples);
    for (const x of shown) out.push(`      line ${x.line} #${x.index}: <<${x.expr}=${x.result}>>  ${x.detail}`);
  }
  return out.join('\n');
}
