// GSM8K loading and answer splitting. A GSM8K answer interleaves prose with calculator annotations and ends
// with the final line:
//   "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n...\n#### 72"
// splitAnswer cuts it where each annotation was (the annotation itself is dropped), so the text after a cut
// starts with the calculator's result - the natural place to insert latent tokens:
//   steps  ["Natalia sold 48/2 = ", "24 clips in May.\n..."]   annotations [{expr: "48/2", result: "24"}]
//   final  "72"                                                  (commas removed: "#### 1,080" -> "1080")
// Invariants: steps.length === annotations.length + 1, and steps.join('') + '\n#### ' + <final as written> is the
// answer without its annotations. The scan itself runs in WASM (assembly/_text_split.ts, which documents how
// unusual annotations are handled: no '=', several '=', nested or unclosed '<<', stray '>>').
import { isUrl, joinSource, readText, type Source } from './io.js';
import { initTextWasm, splitOffsets, STATUS_TOO_LARGE, tooLargeMessage, type SplitOffsets } from './text-wasm.js';

export interface Annotation {
  /** The calculator expression, e.g. "48/2" (the body before its last '='; the whole body if it has none). */
  expr: string;
  /** The calculator result, e.g. "24" (after the last '='; '' if the body has no '='). */
  result: string;
}

export interface SplitAnswer {
  steps: string[];
  annotations: Annotation[];
  /** The final answer as written after `####`, without commas and surrounding blanks. */
  final: string;
}

export interface Gsm8kExample extends SplitAnswer {
  question: string;
  /** The original answer text. */
  answer: string;
}

export interface Gsm8kError {
  /** 1-based line number in the JSONL text. */
  line: number;
  message: string;
}

export interface Gsm8kDataset {
  /** Where the rows came from (path, URL, or "<text>"). */
  source: string;
  rows: Gsm8kExample[];
  /** Malformed rows that were skipped (always empty with onError: 'throw'). */
  errors: Gsm8kError[];
}

export interface Gsm8kLoadOptions {
  /** For a directory source: loads `<split>.jsonl` from it (default 'train'). */
  split?: string;
  /** 'throw' (default): the first malformed row rejects the load. 'skip': malformed rows go to `errors`. */
  onError?: 'throw' | 'skip';
}

const SPLIT_ERRORS: Record<number, string> = {
  1: "answer has no '#### N' final line",
  2: "answer's '####' line has no final answer",
  3: "answer has text after its '#### N' final line",
};

function fromOffsets(answer: string, o: SplitOffsets): SplitAnswer | string {
  if (o.status === STATUS_TOO_LARGE) return `answer ${tooLargeMessage(answer.length)}`;
  if (o.status !== 0) return SPLIT_ERRORS[o.status] ?? `answer split failed (status ${o.status})`;
  const steps: string[] = [];
  const annotations: Annotation[] = [];
  let at = 0;
  for (let k = 0; k < o.ann.length; k += 3) {
    const open = o.ann[k];
    const sep = o.ann[k + 1];
    const close = o.ann[k + 2];
    steps.push(answer.slice(at, open));
    annotations.push(sep < 0 ? { expr: answer.slice(open + 2, close), result: '' } : { expr: answer.slice(open + 2, sep), result: answer.slice(sep + 1, close) });
    at = close + 2;
  }
  steps.push(answer.slice(at, o.stepsEnd));
  return { steps, annotations, final: answer.slice(o.finalStart, o.finalEnd).replace(/,/g, '') };
}

/** Splits one GSM8K answer; throws if it has no usable `#### N` final line. */
export function splitAnswer(answer: string): SplitAnswer {
  const r = fromOffsets(answer, splitOffsets([answer])[0]);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

/** Splits many answers in one WASM call; a malformed answer gives `{error}` in its place. */
export function splitAnswers(answers: readonly string[]): (SplitAnswer | { error: string })[] {
  const offs = splitOffsets(answers);
  return answers.map((a, i) => {
    const r = fromOffsets(a, offs[i]);
    return typeof r === 'string' ? { error: r } : r;
  });
}

/** Validates one parsed JSON row; returns an error message or the two fields. */
export function checkRow(value: unknown): { question: string; answer: string } | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'row is not a JSON object';
  const v = value as { question?: unknown; answer?: unknown };
  for (const k of ['question', 'answer'] as const) {
    if (v[k] === undefined) return `missing field "${k}"`;
    if (typeof v[k] !== 'string') return `field "${k}" is not a string`;
  }
  return { question: v.question as string, answer: v.answer as string };
}

/**
 * Parses one JSONL line into an example, or returns an error message. Used by the CLI, which streams.
 */
export function parseGsm8kLine(line: string): Gsm8kExample | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return `bad JSON: ${(e as Error).message}`;
  }
  const row = checkRow(value);
  if (typeof row === 'string') return row;
  const s = fromOffsets(row.answer, splitOffsets([row.answer])[0]);
  return typeof s === 'string' ? s : { question: row.question, answer: row.answer, ...s };
}

/** Parses GSM8K JSONL text (blank lines are skipped; all answers are split in one WASM call). */
export function parseGsm8k(text: string, opts: { onError?: 'throw' | 'skip'; source?: string } = {}): Gsm8kDataset {
  const source = opts.source ?? '<text>';
  const onError = opts.onError ?? 'throw';
  if (onError !== 'throw' && onError !== 'skip') throw new Error(`gsm8k: onError must be 'throw' or 'skip', got ${JSON.stringify(onError)}`);
  const errors: Gsm8kError[] = [];
  const good: { line: number; question: string; answer: string }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].trim();
    if (!l) continue;
    let value: unknown;
    try {
      value = JSON.parse(l);
    } catch (e) {
      errors.push({ line: i + 1, message: `bad JSON: ${(e as Error).message}` });
      continue;
    }
    const row = checkRow(value);
    if (typeof row === 'string') errors.push({ line: i + 1, message: row });
    else good.push({ line: i + 1, ...row });
  }
  const offs = splitOffsets(good.map((g) => g.answer));
  const rows: Gsm8kExample[] = [];
  for (let k = 0; k < good.length; k++) {
    const s = fromOffsets(good[k].answer, offs[k]);
    if (typeof s === 'string') errors.push({ line: good[k].line, message: s });
    else rows.push({ question: good[k].question, answer: good[k].answer, ...s });
  }
  errors.sort((a, b) => a.line - b.line);
  if (onError === 'throw' && errors.length) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more malformed row${errors.length > 2 ? 's' : ''})` : '';
    throw new Error(`${source}:${errors[0].line}: ${errors[0].message}${more}`);
  }
  return { source, rows, errors };
}

/** Whether a path/URL names a JSONL file (by extension) rather than a directory of split files. */
function namesFile(source: string): boolean {
  if (/^(data|blob):/i.test(source)) return true;
  const path = isUrl(source) ? new URL(source).pathname : source;
  return /\.jsonl?$/i.test(path);
}

/**
 * Loads GSM8K rows from a JSONL file (path or URL), a directory holding `<split>.jsonl` files
 * (`loadGsm8k(dir, {split: 'test'})`; a path or http(s) URL not ending in .jsonl/.json is taken as a directory), or an
 * in-memory string (`{text}`). Malformed rows (bad JSON, missing field, no `####` line) are reported with
 * their line number: rejected (default) or skipped and listed in `errors`.
 */
export async function loadGsm8k(source: Source | { text: string }, opts: Gsm8kLoadOptions = {}): Promise<Gsm8kDataset> {
  await initTextWasm();
  if (typeof source === 'object' && !(source instanceof URL)) {
    if (typeof source.text !== 'string') throw new Error('gsm8k: an in-memory source must be {text: string}');
    return parseGsm8k(source.text, { onError: opts.onError, source: '<text>' });
  }
  let src = String(source);
  if (namesFile(src)) {
    if (opts.split !== undefined) throw new Error(`gsm8k: split '${opts.split}' given, but ${src} names a file, not a directory of splits`);
  } else {
    const split = opts.split ?? 'train';
    if (!/^[\w.-]+$/.test(split)) throw new Error(`gsm8k: bad split name ${JSON.stringify(split)}`);
    src = joinSource(src, `${split}.jsonl`);
  }
  return parseGsm8k(await readText(src), { onError: opts.onError, source: src });
}
