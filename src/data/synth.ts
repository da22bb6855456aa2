// Synthetic GSM8K-style word problems: the package's embedded default dataset.
//
// Rows have GSM8K's exact shape and answer format, e.g.
//   question: "Liam has 12 marbles. He buys 7 more marbles. Emma has 3 times as many marbles as Liam. How many ..."
//   answer:   "Liam has 12 + 7 = <<12+7=19>>19 marbles after buying more.\nEmma has 19 * 3 = <<19*3=57>>57 marbles.\n#### 57"
// i.e. each reasoning line writes "x op b = " in prose, then the calculator annotation <<x op b=r>> (no spaces, no
// commas), then the result r in prose (with thousands commas in some problems, like GSM8K's "1,200"), then the rest of
// the sentence. The final line is "#### N" with N comma-free.
//
// Each problem is a CHAIN: a starting amount a, then `steps` operations r1 = a op b1, r2 = r1 op b2, ...; every step's
// result feeds the next, and the last result is the final answer. The difficulty of the step a model must get right (the
// number right after "= ") is dialled with ops / maxOperand / maxResult: from single-digit sums to multi-digit products.
//
// Train/test split (why two guarantees): the splits draw from disjoint seed streams (rng.fork('synth/train') vs
// 'synth/test'), and, because two streams can still produce the same text by chance on small settings, every question is
// also assigned to exactly one split by a hash of its text: hashQuestion(q) even -> train, odd -> test. Each split
// discards questions that hash to the other one. This needs no knowledge of the other split's size, and it holds across
// seeds and counts: a test question of any seed/count can never appear in any train set (for any settings, since the
// question text is all that is hashed).
//
// The vocabulary is deliberately small (20 names, 20 objects, ~8 templates per op): the default model restricts its
// vocabulary to the tokens this task uses (see synthCoverageText).

import { Rng } from './rng.ts';

export type SynthOp = '+' | '-' | '*' | '/';

export interface SynthRow {
  question: string;
  answer: string;
}

export interface SynthOptions {
  /** Seed (number or string). Default 0. */
  seed?: number | string;
  /** Number of rows. */
  count: number;
  /** Which split; the splits are disjoint (see the file comment). Default 'train'. */
  split?: 'train' | 'test';
  /** Calculation steps per problem: a number or an inclusive [min, max] range. */
  steps?: number | readonly [number, number];
  /** Operations to use (division is always exact). */
  ops?: readonly SynthOp[];
  /** Smallest fresh operand (the starting amount and each b); at least 2, so nouns are always plural. */
  minOperand?: number;
  /** Largest fresh operand. */
  maxOperand?: number;
  /** Largest allowed intermediate/final result (keeps chains of products bounded). */
  maxResult?: number;
  /** How many of the 20 names to use (fewer = smaller vocabulary). */
  names?: number;
  /** How many of the 20 objects to use. */
  objects?: number;
  /** How many templates per op to use (at most the number defined). */
  templatesPerOp?: number;
  /** Probability that a problem writes numbers >= 1000 with thousands commas in its prose (never in annotations/final). */
  commaProb?: number;
  /** Reject questions already generated in this call (default true). */
  unique?: boolean;
}

type Knobs = Required<Omit<SynthOptions, 'seed' | 'count' | 'split'>>;

export const SYNTH_PRESETS = {
  /** One or two single-digit additions/subtractions: "3 + 5 = <<3+5=8>>8". */
  easy: { steps: [1, 2], ops: ['+', '-'], minOperand: 2, maxOperand: 9, maxResult: 99 },
  /** 2-3 steps of + - *, operands up to 50 so products have 2-4 digits. */
  default: { steps: [2, 3], ops: ['+', '-', '*'], minOperand: 2, maxOperand: 50, maxResult: 9999 },
  /** 3-4 steps of all four ops, 3-digit operands: multi-digit products up to 6 digits. */
  hard: { steps: [3, 4], ops: ['+', '-', '*', '/'], minOperand: 2, maxOperand: 999, maxResult: 999_999 },
  /**
   * Serial work at the breakpoint: one 2-digit x 2-digit product per problem, which written out takes two partial
   * products and their sum (48*37: 48*30 = 1440, 48*7 = 336, 1440 + 336 = 1776) and is hard to get in one pass.
   */
  serial: { steps: 1, ops: ['*'], minOperand: 11, maxOperand: 99, maxResult: 9999 },
} as const satisfies Record<string, Partial<SynthOptions>>;

const DEFAULT_KNOBS: Knobs = {
  steps: [2, 3],
  ops: ['+', '-', '*'],
  minOperand: 2,
  maxOperand: 50,
  maxResult: 9999,
  names: 20,
  objects: 20,
  templatesPerOp: 100,
  commaProb: 0.5,
  unique: true,
};

interface Person {
  name: string;
  he: string;
  him: string;
  his: string;
}

const NAMES: Person[] = [
  ['Liam', 'm'],
  ['Emma', 'f'],
  ['Noah', 'm'],
  ['Olivia', 'f'],
  ['James', 'm'],
  ['Ava', 'f'],
  ['Lucas', 'm'],
  ['Mia', 'f'],
  ['Ethan', 'm'],
  ['Sophia', 'f'],
  ['Mason', 'm'],
  ['Lily', 'f'],
  ['Leo', 'm'],
  ['Chloe', 'f'],
  ['Ben', 'm'],
  ['Grace', 'f'],
  ['Sam', 'm'],
  ['Zoe', 'f'],
  ['Jack', 'm'],
  ['Anna', 'f'],
].map(([name, g]) => (g === 'm' ? { name: name!, he: 'he', him: 'him', his: 'his' } : { name: name!, he: 'she', him: 'her', his: 'her' }));

const OBJECTS = [
  'apples',
  'marbles',
  'stickers',
  'pencils',
  'cookies',
  'books',
  'shells',
  'coins',
  'cards',
  'balloons',
  'oranges',
  'crayons',
  'stamps',
  'buttons',
  'candies',
  'toys',
  'flowers',
  'rocks',
  'beads',
  'cupcakes',
];

// A step template: a question sentence, and an answer sentence containing {calc} ("x op b = <<x op b=r>>r").
// Placeholders: {H} current holder's name, {he}/{him}/{his} holder pronouns ({He}/{His} capitalised), {N} another
// person, {obj} the object, {b} the operand. `to: 'N'` means the quantity now belongs to N (answer line names N).
interface StepTemplate {
  q: string;
  a: string;
  to?: 'N';
}

const TEMPLATES: Record<SynthOp, StepTemplate[]> = {
  '+': [
    { q: '{He} buys {b} more {obj}.', a: '{H} has {calc} {obj} after buying more.' },
    { q: '{N} gives {him} {b} more {obj}.', a: '{H} now has {calc} {obj}.' },
    { q: '{N} has {b} more {obj} than {H}.', a: '{N} has {calc} {obj}.', to: 'N' },
    { q: '{He} finds another {b} {obj}.', a: 'After finding more, {H} has {calc} {obj}.' },
    { q: 'The next day, {he} gets {b} more {obj}.', a: 'The next day {H} has {calc} {obj}.' },
    { q: '{N} collects {b} more {obj} than {H} has.', a: '{N} collects {calc} {obj}.', to: 'N' },
    { q: '{He} wins {b} more {obj} at the fair.', a: '{H} has {calc} {obj} after the fair.' },
    { q: '{His} mom gives {him} {b} {obj}.', a: 'With the gift, {H} has {calc} {obj}.' },
  ],
  '-': [
    { q: '{He} gives {b} {obj} to {N}.', a: '{H} has {calc} {obj} left.' },
    { q: '{N} has {b} fewer {obj} than {H}.', a: '{N} has {calc} {obj}.', to: 'N' },
    { q: '{He} loses {b} of the {obj}.', a: 'After losing some, {H} has {calc} {obj}.' },
    { q: '{He} sells {b} {obj}.', a: '{H} has {calc} {obj} after selling some.' },
    { q: '{N} takes {b} of {his} {obj}.', a: '{H} is left with {calc} {obj}.' },
    { q: '{He} trades away {b} {obj}.', a: '{H} keeps {calc} {obj}.' },
    { q: '{He} uses {b} {obj} for a school project.', a: '{H} has {calc} {obj} after the project.' },
    { q: '{N} collects {b} fewer {obj} than {H} has.', a: '{N} collects {calc} {obj}.', to: 'N' },
  ],
  '*': [
    { q: '{N} has {b} times as many {obj} as {H}.', a: '{N} has {calc} {obj}.', to: 'N' },
    { q: '{N} collects {b} times as many {obj} as {H} has.', a: '{N} collects {calc} {obj}.', to: 'N' },
    { q: '{He} trades each of {his} {obj} for {b} new ones.', a: '{H} now has {calc} {obj}.' },
    { q: 'Then {his} pile of {obj} grows to {b} times its size.', a: 'The pile grows to {calc} {obj}.' },
    { q: '{N} has {b} times the number of {obj} that {H} has.', a: '{N} has {calc} {obj}.', to: 'N' },
    { q: 'The next week, {he} ends up with {b} times as many {obj}.', a: 'The next week {H} has {calc} {obj}.' },
  ],
  '/': [
    { q: '{N} has 1/{b} as many {obj} as {H}.', a: '{N} has {calc} {obj}.', to: 'N' },
    { q: '{He} splits the {obj} into {b} equal groups and keeps one group.', a: '{H} keeps {calc} {obj}.' },
    { q: '{He} shares the {obj} equally among {b} friends, and {N} is one of them.', a: '{N} gets {calc} {obj}.', to: 'N' },
    { q: '{He} packs the {obj} equally into {b} boxes and gives away all but one box.', a: '{H} keeps {calc} {obj}.' },
    { q: '{N} gets one of {b} equal shares of {his} {obj}.', a: '{N} gets {calc} {obj}.', to: 'N' },
  ],
};

const INTROS = [
  '{H} has {a} {obj}.',
  '{H} collects {a} {obj}.',
  '{H} buys {a} {obj} at the store.',
  '{H} starts with {a} {obj}.',
  '{H} keeps {a} {obj} in a box.',
];
const FINALS = ['How many {obj} does {H} have now?', 'How many {obj} does {H} have?', 'How many {obj} does {H} end up with?'];

/** Writes an integer with thousands commas: 3200 -> "3,200". */
export function withCommas(n: number): string {
  const s = String(Math.abs(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return n < 0 ? '-' + s : s;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function fill(t: string, vars: Record<string, string>, file = 'template'): string {
  return t.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`synth: ${file} "${t}" uses unknown placeholder {${k}}`);
    return v;
  });
}

/**
 * Placeholder values for holder h and other person n. Pronouns are only used when they cannot be misread:
 * `pronouns` false (the previous sentence mentioned another person of h's gender) writes the name instead, and a
 * possessive in a sentence that also names a same-gender n ("Emma takes 3 of her apples") becomes "Liam's".
 */
function personVars(h: Person, n: Person | undefined, pronouns = true) {
  const poss = `${h.name}'s`;
  if (!pronouns) return { H: h.name, he: h.name, He: h.name, him: h.name, his: poss, His: poss, N: n ? n.name : '' };
  const sameGender = n !== undefined && n.he === h.he;
  return {
    H: h.name,
    he: h.he,
    He: capitalize(h.he),
    him: h.him,
    his: sameGender ? poss : h.his,
    His: sameGender ? poss : capitalize(h.his),
    N: n ? n.name : '',
  };
}

/** 32-bit FNV-1a of the text, finalised with a murmur3 mix so the low bit is well distributed. */
export function hashQuestion(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Which split a question belongs to (see the file comment). */
export function questionSplit(question: string): 'train' | 'test' {
  return (hashQuestion(question) & 1) === 0 ? 'train' : 'test';
}

function resolveKnobs(opts: Partial<SynthOptions>): Knobs {
  const k: Knobs = { ...DEFAULT_KNOBS };
  for (const key of Object.keys(DEFAULT_KNOBS) as (keyof Knobs)[]) {
    if (opts[key] !== undefined) (k as Record<string, unknown>)[key] = opts[key];
  }
  const [sMin, sMax] = typeof k.steps === 'number' ? [k.steps, k.steps] : k.steps;
  if (!Number.isInteger(sMin) || !Number.isInteger(sMax) || sMin < 1 || sMax < sMin)
    throw new Error(`synth: bad steps ${JSON.stringify(k.steps)}`);
  if (!k.ops.length || k.ops.some((o) => !(o in TEMPLATES)))
    throw new Error(`synth: ops must be a non-empty subset of + - * /, got ${JSON.stringify(k.ops)}`);
  // Operands and results are >= 2 so every noun stays plural ("1 apples" would be wrong, and singular forms would
  // grow the vocabulary).
  if (!Number.isInteger(k.minOperand) || !Number.isInteger(k.maxOperand) || k.minOperand < 2 || k.maxOperand < k.minOperand) {
    throw new Error(`synth: need integers 2 <= minOperand <= maxOperand, got ${k.minOperand}, ${k.maxOperand}`);
  }
  if (!(k.maxResult >= k.maxOperand)) throw new Error(`synth: maxResult (${k.maxResult}) must be >= maxOperand (${k.maxOperand})`);
  if (!Number.isSafeInteger(k.maxResult)) throw new Error(`synth: maxResult must be a safe integer, got ${k.maxResult}`);
  k.names = Math.max(2, Math.min(NAMES.length, Math.floor(k.names)));
  k.objects = Math.max(1, Math.min(OBJECTS.length, Math.floor(k.objects)));
  k.templatesPerOp = Math.max(1, Math.floor(k.templatesPerOp));
  return k;
}

/** The range of the fresh operand b for `x op b`, or null when the op cannot be applied to x within the knobs. */
function operandChoices(op: SynthOp, x: number, k: Knobs): { lo: number; hi: number } | number[] | null {
  const lo = op === '*' || op === '/' ? Math.max(2, k.minOperand) : k.minOperand;
  let hi = k.maxOperand;
  switch (op) {
    case '+':
      hi = Math.min(hi, k.maxResult - x);
      break;
    case '-':
      hi = Math.min(hi, x - 2);
      break; // keep results >= 2 (plural nouns)
    case '*':
      hi = Math.min(hi, Math.floor(k.maxResult / x));
      break;
    case '/': {
      const ds: number[] = [];
      for (let d = lo; d <= Math.min(hi, x / 2); d++) if (x % d === 0) ds.push(d); // quotient >= 2
      return ds.length ? ds : null;
    }
  }
  return hi >= lo ? { lo, hi } : null;
}

function apply(op: SynthOp, x: number, b: number): number {
  switch (op) {
    case '+':
      return x + b;
    case '-':
      return x - b;
    case '*':
      return x * b;
    case '/':
      return x / b;
  }
}

/** One problem, or null when this random draw hit a dead end (e.g. only '/' allowed and the amount is prime). */
function generateOne(rng: Rng, k: Knobs): SynthRow | null {
  const [sMin, sMax] = typeof k.steps === 'number' ? [k.steps, k.steps] : k.steps;
  const nSteps = rng.int(sMin, sMax);
  const people = NAMES.slice(0, k.names);
  const obj = rng.choice(OBJECTS.slice(0, k.objects));
  const commas = rng.float() < k.commaProb;
  const fmt = (n: number) => (commas ? withCommas(n) : String(n));

  // Starting amount. If the first step divides, build a = b * q so it is divisible (a may then exceed maxOperand).
  const ops: SynthOp[] = [rng.choice(k.ops)];
  let a: number;
  if (ops[0] === '/') {
    const b = rng.int(Math.max(2, k.minOperand), k.maxOperand);
    const qHi = Math.min(k.maxOperand, Math.floor(k.maxResult / b));
    if (qHi < k.minOperand) return null;
    a = b * rng.int(k.minOperand, qHi);
  } else {
    a = rng.int(k.minOperand, k.maxOperand);
  }

  let holder = rng.choice(people);
  const used = new Set([holder.name]);
  const qParts = [fill(rng.choice(INTROS), { ...personVars(holder, undefined), a: fmt(a), obj })];
  const aLines: string[] = [];
  let x = a;
  let pronounsOk = true;
  for (let s = 0; s < nSteps; s++) {
    // The first op was drawn above (to shape a); later ops are drawn among those applicable to the current amount,
    // so chains don't dead-end on e.g. subtracting from 1.
    let op: SynthOp;
    if (s === 0) op = ops[0]!;
    else {
      const feasible = k.ops.filter((o) => operandChoices(o, x, k) !== null);
      if (!feasible.length) return null;
      op = rng.choice(feasible);
    }
    const choices = operandChoices(op, x, k);
    if (!choices) return null;
    const b = Array.isArray(choices) ? rng.choice(choices) : rng.int(choices.lo, choices.hi);
    const r = apply(op, x, b);
    if (!Number.isSafeInteger(r) || r < 2) throw new Error(`synth: internal error, ${x} ${op} ${b} = ${r}`);

    const tpl = rng.choice(TEMPLATES[op].slice(0, k.templatesPerOp));
    // Another person: prefer one not yet in the story, so "Emma" always refers to one amount's owner.
    const fresh = people.filter((p) => !used.has(p.name));
    const other = rng.choice(fresh.length ? fresh : people.filter((p) => p.name !== holder.name));
    used.add(other.name);
    const calc = `${fmt(x)} ${op} ${fmt(b)} = <<${x}${op}${b}=${r}>>${fmt(r)}`;
    const mentionsOther = tpl.q.includes('{N}');
    const vars = { ...personVars(holder, mentionsOther ? other : undefined, pronounsOk), N: other.name, obj, b: fmt(b) };
    qParts.push(fill(tpl.q, vars));
    aLines.push(fill(tpl.a, { ...vars, calc }));
    // Next sentence may say "he"/"she" for the (new) holder only if this sentence named nobody else of that gender.
    const prevHolder = holder;
    if (tpl.to === 'N') holder = other;
    const others = [prevHolder, ...(mentionsOther ? [other] : [])].filter((p) => p !== holder);
    pronounsOk = !others.some((p) => p.he === holder.he);
    x = r;
  }
  qParts.push(fill(rng.choice(FINALS), { ...personVars(holder, undefined), obj }));
  aLines.push(`#### ${x}`);
  return { question: qParts.join(' '), answer: aLines.join('\n') };
}

/**
 * Deterministic synthetic problems for (seed, split, knobs). Knobs not given fall back to SYNTH_PRESETS.default;
 * spread a preset to start from it: generateProblems({ ...SYNTH_PRESETS.hard, seed: 1, count: 100 }).
 */
export function generateProblems(opts: SynthOptions): SynthRow[] {
  const { count } = opts;
  if (!Number.isInteger(count) || count < 0) throw new Error(`synth: count must be a non-negative integer, got ${count}`);
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new Error(`synth: split must be 'train' or 'test', got ${JSON.stringify(split)}`);
  const k = resolveKnobs(opts);
  const rng = new Rng(opts.seed ?? 0).fork(`synth/${split}`);
  const rows: SynthRow[] = [];
  const seen = new Set<string>();
  // About half the draws belong to the other split and dead ends are rare, so 20,000 draws in a row without a new
  // row only happen when the settings cannot produce `count` distinct questions: say so instead of looping forever.
  const maxStall = 20_000;
  let stall = 0;
  while (rows.length < count) {
    if (++stall > maxStall) {
      throw new Error(
        `synth: only ${rows.length} of ${count} ${split} rows; ${maxStall} draws in a row gave nothing new, so the settings ` +
          `(${JSON.stringify(k)}) allow too few distinct questions (set unique: false, or widen maxOperand/steps/names/objects)`,
      );
    }
    const row = generateOne(rng, k);
    if (!row || questionSplit(row.question) !== split) continue;
    if (k.unique) {
      if (seen.has(row.question)) continue;
      seen.add(row.question);
    }
    rows.push(row);
    stall = 0;
  }
  return rows;
}

/** JSON lines in GSM8K's layout ({"question": ..., "answer": ...} per line), newline-terminated. */
export function synthToJsonl(rows: SynthRow[]): string {
  return rows.map((r) => JSON.stringify({ question: r.question, answer: r.answer })).join('\n') + (rows.length ? '\n' : '');
}

/**
 * Text that contains every word, punctuation and number shape the generator can emit for these knobs (each template
 * rendered with every name, pronoun set and object in use, plus all digits, operators and annotation marks). Tokenize it
 * to build a restricted vocabulary. It relies on the tokenizer's pre-tokenizer splitting words and digits independently
 * (true for Qwen2/GPT-style byte-level BPE), so rendering each word once in its usual position is enough.
 */
export function synthCoverageText(opts: Partial<SynthOptions> = {}): string {
  const k = resolveKnobs(opts);
  const people = NAMES.slice(0, k.names);
  const objects = OBJECTS.slice(0, k.objects);
  const lines: string[] = [];
  const n = Math.max(people.length, objects.length);
  const calcs = ['1,234 + 5 = <<1234+5=1239>>1,239', '6 - 7 = <<6-7=8>>8', '9 * 10 = <<9*10=90>>90', '0 / 2 = <<0/2=0>>0'];
  for (let i = 0; i < n; i++) {
    const h = people[i % people.length]!,
      o = people[(i + 1) % people.length]!;
    // With pronouns, and with names in their place (the generator's choice when a pronoun would be ambiguous).
    for (const pronouns of [true, false]) {
      const vars = { ...personVars(h, o, pronouns), obj: objects[i % objects.length]!, a: '3,456', b: '7,890' };
      for (const t of [...INTROS, ...FINALS]) lines.push(fill(t, vars));
      for (const op of k.ops) {
        for (const [j, tpl] of TEMPLATES[op].slice(0, k.templatesPerOp).entries()) {
          lines.push(`${fill(tpl.q, vars)} ${fill(tpl.a, { ...vars, calc: calcs[j % calcs.length]! })}`);
        }
      }
    }
  }
  lines.push('#### 0123456789', '#### 1000000');
  return lines.join('\n');
}
