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
import { isUrl, joinSource, readBytes, type Source } from '../io/source.js';
import { initTextWasm, splitOffsets, STATUS_TOO_LARGE, tooLargeMessage, type SplitOffsets } from '../text/text-wasm.js';

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
    annotations.push(
      sep < 0
        ? { expr: answer.slice(open + 2, close), result: '' }
        : { expr: answer.slice(open + 2, sep), result: answer.slice(sep + 1, close) },
    );
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

/** Parses GSM8K JSONL text (blank lines are skipped; the answers are split in as few WASM calls as fit). */
export function parseGsm8k(text: string, opts: { onError?: 'throw' | 'skip'; source?: string } = {}): Gsm8kDataset {
  const source = opts.source ?? '<text>';
  const onError = checkOnError(opts.onError);
  const ds: Gsm8kDataset = { source, rows: [], errors: [] };
  parseGsm8kLines(text, 0, ds);
  return finishParse(ds, onError);
}

function checkOnError(onError: unknown): 'throw' | 'skip' {
  const v = onError ?? 'throw';
  if (v !== 'throw' && v !== 'skip') throw new Error(`gsm8k: onError must be 'throw' or 'skip', got ${JSON.stringify(onError)}`);
  return v;
}

/** Adds the rows and errors of `text` (whose first line is line lineBase + 1 of the source) to ds. */
function parseGsm8kLines(text: string, lineBase: number, ds: Gsm8kDataset): void {
  const good: { line: number; question: string; answer: string }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].trim();
    if (!l) continue;
    const line = lineBase + i + 1;
    let value: unknown;
    try {
      value = JSON.parse(l);
    } catch (e) {
      ds.errors.push({ line, message: `bad JSON: ${(e as Error).message}` });
      continue;
    }
    const row = checkRow(value);
    if (typeof row === 'string') ds.errors.push({ line, message: row });
    else good.push({ line, ...row });
  }
  const offs = splitOffsets(good.map((g) => g.answer));
  for (let k = 0; k < good.length; k++) {
    const s = fromOffsets(good[k].answer, offs[k]);
    if (typeof s === 'string') ds.errors.push({ line: good[k].line, message: s });
    else ds.rows.push({ question: good[k].question, answer: good[k].answer, ...s });
  }
}

function finishParse(ds: Gsm8kDataset, onError: 'throw' | 'skip'): Gsm8kDataset {
  const errors = ds.errors.sort((a, b) => a.line - b.line);
  if (onError === 'throw' && errors.length) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more malformed row${errors.length > 2 ? 's' : ''})` : '';
    throw new Error(`${ds.source}:${errors[0].line}: ${errors[0].message}${more}`);
  }
  return ds;
}

// A file is decoded and parsed in pieces of about this many bytes, cut after a '\n': a JS string cannot hold
// more than about 512 Mi code units, and one piece at a time keeps a single huge string out of memory.
const PARSE_PIECE_BYTES = 64 << 20;

/** parseGsm8k over UTF-8 bytes, a line-aligned piece at a time (same rows, errors and line numbers). */
export function parseGsm8kBytes(
  bytes: Uint8Array,
  opts: { onError?: 'throw' | 'skip'; source?: string } = {},
  pieceBytes = PARSE_PIECE_BYTES,
): Gsm8kDataset {
  const onError = checkOnError(opts.onError);
  const ds: Gsm8kDataset = { source: opts.source ?? '<bytes>', rows: [], errors: [] };
  const dec = new TextDecoder();
  let lineBase = 0;
  for (let start = 0; start < bytes.length; ) {
    let end = Math.min(bytes.length, start + pieceBytes);
    if (end < bytes.length) {
      const nl = bytes.indexOf(10, end - 1);
      end = nl < 0 ? bytes.length : nl + 1;
    }
    const text = dec.decode(bytes.subarray(start, end));
    parseGsm8kLines(end < bytes.length ? text.slice(0, -1) : text, lineBase, ds);
    for (let i = start; i < end; i++) if (bytes[i] === 10) lineBase++;
    start = end;
  }
  return finishParse(ds, onError);
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
export async function loadGsm8k(source: Source | { text: string; source?: string }, opts: Gsm8kLoadOptions = {}): Promise<Gsm8kDataset> {
  await initTextWasm();
  if (typeof source === 'object' && !(source instanceof URL)) {
    if (typeof source.text !== 'string') throw new Error('gsm8k: an in-memory source must be {text: string}');
    return parseGsm8k(source.text, { onError: opts.onError, source: source.source ?? '<text>' });
  }
  let src = String(source);
  if (namesFile(src)) {
    if (opts.split !== undefined) throw new Error(`gsm8k: split '${opts.split}' given, but ${src} names a file, not a directory of splits`);
  } else {
    const split = opts.split ?? 'train';
    if (!/^[\w.-]+$/.test(split)) throw new Error(`gsm8k: bad split name ${JSON.stringify(split)}`);
    src = joinSource(src, `${split}.jsonl`);
  }
  return parseGsm8kBytes(await readBytes(src), { onError: opts.onError, source: src });
}
