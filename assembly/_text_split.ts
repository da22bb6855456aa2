// GSM8K answer splitting: finds the `#### N` final line and every calculator annotation `<<expr=result>>` in
// one forward pass per answer. It only reports offsets; src/data/gsm8k.ts slices the JS string with them.
//
// Rules (the real data - 7,473 train + 1,319 test rows - never needs anything past rule 1, 2 and 4, but a
// dataset variant or a model's own output may, so each case has one fixed, linear-time answer):
//  1. The final line is the LAST line that starts with `####`. `final` is the rest of that line with spaces,
//     tabs and a trailing '\r' trimmed (commas are removed in JS). The steps are everything before the '\n'
//     that precedes it. No such line -> ERR_NO_FINAL; empty rest -> ERR_EMPTY_FINAL; anything but whitespace
//     after the final line -> ERR_TRAILING (those rows are malformed: never silently cut).
//  2. An annotation is `<<` ... `>>` on one line. The body is split at its LAST '=': expr before, result after.
//  3. No '=' in the body -> the whole body is expr, result is '' (sep = -1). Still a cut.
//  4. Nested or repeated openers: the innermost `<<` wins, i.e. an opener is the last `<<` before the closer on
//     that line; earlier unmatched `<` characters stay as text (`<<<1=1>>` -> text '<', annotation 1=1).
//     An opener with no closer on its line, and a closer with no opener, are plain text. A newline cancels
//     an open annotation, so a stray `<<` in prose cannot swallow the following lines.
//  5. `<<>>` is an (empty) annotation; the text after `>>` starts the next step even if it is `>`.
// Annotations are only searched in the steps region; the final line is reported verbatim.
import { cu, tab, growOutput, putOut } from './_text_buf';

export const ERR_NO_FINAL: i32 = 1;
export const ERR_EMPTY_FINAL: i32 = 2;
export const ERR_TRAILING: i32 = 3;

const NL: u32 = 10;
const CR: u32 = 13;
const SP: u32 = 32;
const TAB: u32 = 9;
const HASH: u32 = 35;
const LT: u32 = 60;
const GT: u32 = 62;
const EQ: u32 = 61;

@inline function isBlank(c: u32): bool {
  return c == SP || c == TAB || c == CR;
}

/**
 * Splits `n` answers described by the table (off, len pairs). Per answer the output gets
 *   [status, stepsEnd, finalStart, finalEnd, nAnn, (open, sep, close) * nAnn]
 * with offsets relative to the answer start: open = index of `<<`, sep = index of the splitting '=' or -1,
 * close = index of `>>`. On error status != 0 and the rest of the header is 0 with nAnn = 0.
 * Returns the number of i32 written.
 */
export function splitRows(n: i32): i32 {
  // The output grows per row and per annotation as they are found (see growOutput), not by the worst case.
  let w: usize = 0;
  for (let r: i32 = 0; r < n; r++) {
    const off = <usize>tab(<usize>r * 2);
    const len = <usize>tab(<usize>r * 2 + 1);
    w = splitOne(off, len, w);
  }
  return <i32>w;
}

function splitOne(off: usize, len: usize, w: usize): usize {
  growOutput(w + 5); // this row's header (or its error record)
  // 1. Last line starting with ####.
  let finalLine: isize = -1;
  let lineStart: usize = 0;
  for (let i: usize = 0; i <= len; i++) {
    if (i == len || cu(off + i) == NL) {
      if (lineStart + 4 <= len && cu(off + lineStart) == HASH && cu(off + lineStart + 1) == HASH && cu(off + lineStart + 2) == HASH && cu(off + lineStart + 3) == HASH) {
        finalLine = <isize>lineStart;
      }
      lineStart = i + 1;
    }
  }
  if (finalLine < 0) return fail(w, ERR_NO_FINAL);
  let fs = <usize>finalLine + 4;
  let lineEnd = fs;
  while (lineEnd < len && cu(off + lineEnd) != NL) lineEnd++;
  while (fs < lineEnd && isBlank(cu(off + fs))) fs++;
  let fe = lineEnd;
  while (fe > fs && isBlank(cu(off + fe - 1))) fe--;
  if (fe == fs) return fail(w, ERR_EMPTY_FINAL);
  for (let i = lineEnd; i < len; i++) {
    const c = cu(off + i);
    if (c != NL && !isBlank(c)) return fail(w, ERR_TRAILING);
  }
  const stepsEnd: usize = finalLine > 0 ? <usize>finalLine - 1 : 0;

  // 2. Annotations in [0, stepsEnd).
  const head = w;
  w += 5;
  let nAnn: i32 = 0;
  let open: isize = -1;
  let sep: isize = -1;
  let i: usize = 0;
  while (i < stepsEnd) {
    const c = cu(off + i);
    if (c == NL) {
      open = -1;
    } else if (c == LT && i + 1 < stepsEnd && cu(off + i + 1) == LT) {
      // Advance by one only, so in a run of '<' the opener ends up at the last pair (innermost wins).
      open = <isize>i;
      sep = -1;
    } else if (c == GT && open >= 0 && i + 1 < stepsEnd && cu(off + i + 1) == GT) {
      growOutput(w + 3);
      putOut(w, <i32>open);
      putOut(w + 1, <i32>sep);
      putOut(w + 2, <i32>i);
      w += 3;
      nAnn++;
      open = -1;
      i += 2;
      continue;
    } else if (c == EQ && open >= 0) {
      sep = <isize>i;
    }
    i++;
  }
  putOut(head, 0);
  putOut(head + 1, <i32>stepsEnd);
  putOut(head + 2, <i32>fs);
  putOut(head + 3, <i32>fe);
  putOut(head + 4, nAnn);
  return w;
}

function fail(w: usize, status: i32): usize {
  putOut(w, status);
  putOut(w + 1, 0);
  putOut(w + 2, 0);
  putOut(w + 3, 0);
  putOut(w + 4, 0);
  return w + 5;
}
