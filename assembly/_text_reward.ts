// GSM8K reward: extract the final answer from a completion and compare it with the gold answer as a
// normalised decimal string. One forward pass, no backtracking, so any input (a megabyte of '#', '<', digits
// or garbage) costs time linear in its length; numbers of any length compare exactly (no f64).
//
// Number grammar (what counts as "a number" in a completion):
//   body   := digits ( ',' digits )* ( '.' digits )?  |  '.' digits      (',' only counts before a digit)
//   sign   := '-' or U+2212 directly before the body, or before a '$' directly before the body
//             ("-5", "-$5", "$-5"); a '-' right after a letter or digit is a hyphen/minus operator, not a sign
//             ("5-3" ends in the number 3, "x-1" in 1).
//   '$' and ',' are ignored; "5." is 5 followed by a full stop.
// Extraction: the number right after the LAST `####` that is followed (after spaces/tabs, on the same line)
// by a number is the answer and format = 1. Otherwise format = 0 and, unless strict, the last number anywhere.
// Canonical form: optional '-', integer digits without leading zeros ("0" if none), and '.' + fraction digits
// without trailing zeros only if any remain; "-0" is "0". So 7.50 = 7.5, 072 = 72, .5 = 0.5, -3 != 3.
import { cu, tab, ensureOutput, ensureAscii, putOut, asciiPtr } from './_text_buf';

const SP: u32 = 32;
const TAB: u32 = 9;
const HASH: u32 = 35;
const DOLLAR: u32 = 36;
const COMMA: u32 = 44;
const MINUS: u32 = 45;
const DOT: u32 = 46;
const UMINUS: u32 = 0x2212;

@inline function isDigit(c: u32): bool {
  return c - 48 < 10;
}

@inline function isAlnum(c: u32): bool {
  return c - 48 < 10 || (c | 32) - 97 < 26;
}

@inline function isMinus(c: u32): bool {
  return c == MINUS || c == UMINUS;
}

// The last number found by scanBody (globals avoid returning tuples without allocating).
let bodyEnd: usize = 0;

/** If a number body starts at p (absolute index, p < e), sets bodyEnd and returns true. */
function scanBody(p: usize, e: usize): bool {
  let i = p;
  if (isDigit(cu(i))) {
    while (i < e) {
      const c = cu(i);
      if (isDigit(c)) i++;
      else if (c == COMMA && i + 1 < e && isDigit(cu(i + 1))) i += 2;
      else break;
    }
  } else if (!(cu(i) == DOT && i + 1 < e && isDigit(cu(i + 1)))) {
    return false;
  }
  if (i + 1 < e && cu(i) == DOT && isDigit(cu(i + 1))) {
    i += 2;
    while (i < e && isDigit(cu(i))) i++;
  }
  bodyEnd = i;
  return true;
}

/** Whether the body starting at p (absolute) carries a sign, looking back over at most "-$" within [s, p). */
function hasSign(s: usize, p: usize): bool {
  let k = p;
  if (k > s && cu(k - 1) == DOLLAR) k--;
  // "-5", "-$5"; and "$-5" too, since a '$' before the '-' is not alphanumeric.
  if (k > s && isMinus(cu(k - 1))) return k - 1 == s || !isAlnum(cu(k - 2));
  return false;
}

/**
 * Writes the canonical form of the body [p, q) with sign `neg` at ascii[at...]; returns its length.
 * Capacity: at most (q - p) + 2 bytes ('-' and a leading '0' for ".5").
 */
function canonical(p: usize, q: usize, neg: bool, at: usize): usize {
  const base = asciiPtr + at;
  let w: usize = 1; // slot 0 is reserved for '-', filled in at the end if the number is not zero
  let i = p;
  // Integer part: skip leading zeros and commas.
  while (i < q && (cu(i) == 48 || cu(i) == COMMA)) i++;
  let intDigits: usize = 0;
  while (i < q && cu(i) != DOT) {
    const c = cu(i);
    if (c != COMMA) {
      store<u8>(base + w, <u8>c);
      w++;
      intDigits++;
    }
    i++;
  }
  if (intDigits == 0) {
    store<u8>(base + w, 48);
    w++;
  }
  let nonzero = intDigits > 0;
  if (i < q) {
    // Fraction: find its last non-zero digit, copy up to there.
    const fs = i + 1;
    let fe = q;
    while (fe > fs && cu(fe - 1) == 48) fe--;
    if (fe > fs) {
      nonzero = true;
      store<u8>(base + w, 46);
      w++;
      for (let j = fs; j < fe; j++) {
        store<u8>(base + w, <u8>cu(j));
        w++;
      }
    }
  }
  if (neg && nonzero) {
    store<u8>(base, 45);
    return w;
  }
  // Shift left over the unused sign slot.
  memory.copy(base, base + 1, w - 1);
  return w - 1;
}

// Extraction result of one completion.
let ansStart: usize = 0;
let ansEnd: usize = 0;
let ansNeg: bool = false;
let ansFound: bool = false;
let ansFormat: bool = false;

function extract(s: usize, e: usize, strict: bool): void {
  let mStart: usize = 0, mEnd: usize = 0, mNeg = false, mFound = false; // after the last "#### N"
  let lStart: usize = 0, lEnd: usize = 0, lNeg = false, lFound = false; // last number anywhere
  let i = s;
  while (i < e) {
    const c = cu(i);
    if (c == HASH && i + 3 < e && cu(i + 1) == HASH && cu(i + 2) == HASH && cu(i + 3) == HASH) {
      // Try "####[ \t]*(-|U+2212)?$?(-)?BODY". Each blank run is scanned by at most one attempt (the one whose
      // "####" directly precedes it), so a failed attempt never makes the pass quadratic.
      let j = i + 4;
      while (j < e && (cu(j) == SP || cu(j) == TAB)) j++;
      let neg = false;
      if (j < e && isMinus(cu(j))) { neg = true; j++; }
      if (j < e && cu(j) == DOLLAR) j++;
      if (!neg && j < e && isMinus(cu(j))) { neg = true; j++; }
      if (j < e && scanBody(j, e)) {
        mStart = j; mEnd = bodyEnd; mNeg = neg; mFound = true;
        lStart = j; lEnd = bodyEnd; lNeg = neg; lFound = true;
        i = bodyEnd;
        continue;
      }
      i++;
      continue;
    }
    if ((isDigit(c) || c == DOT) && scanBody(i, e)) {
      // A '.' right after a digit is never a number start (the digit run would have consumed "d.d").
      if (c == DOT && i > s && isDigit(cu(i - 1))) {
        i++;
        continue;
      }
      lStart = i; lEnd = bodyEnd; lNeg = hasSign(s, i); lFound = true;
      i = bodyEnd;
      continue;
    }
    i++;
  }
  ansFormat = mFound;
  if (mFound) {
    ansStart = mStart; ansEnd = mEnd; ansNeg = mNeg; ansFound = true;
  } else if (!strict && lFound) {
    ansStart = lStart; ansEnd = lEnd; ansNeg = lNeg; ansFound = true;
  } else {
    ansFound = false;
  }
}

let goldStart: usize = 0;
let goldEnd: usize = 0;
let goldNeg: bool = false;

/** Parses the whole gold string [s, e) as one number (blanks around, optional sign and '$', a final '.'); false if not. */
function parseGold(s: usize, e: usize): bool {
  let a = s, b = e;
  while (a < b && isWs(cu(a))) a++;
  while (b > a && isWs(cu(b - 1))) b--;
  let neg = false;
  if (a < b && isMinus(cu(a))) { neg = true; a++; }
  if (a < b && cu(a) == DOLLAR) a++;
  if (!neg && a < b && isMinus(cu(a))) { neg = true; a++; }
  // A trailing full stop is allowed ("5." is 5), as it is after a number in a completion.
  if (a >= b || !scanBody(a, b) || (bodyEnd != b && !(bodyEnd == b - 1 && cu(b - 1) == DOT))) return false;
  // The number ends at bodyEnd, not at b: a trailing '.' is not part of it ("7.50." is 7.5; found by the fuzzer).
  goldStart = a; goldEnd = bodyEnd; goldNeg = neg;
  return true;
}

@inline function isWs(c: u32): bool {
  return c == SP || c == TAB || c == 10 || c == 13;
}

/**
 * Scores `n` items described by the table (cOff, cLen, gOff, gLen). Output per item:
 *   [reward (1|0, or -1 if the gold is not a number), format (1|0), asciiOff, asciiLen]
 * where ascii[asciiOff, +asciiLen) is the canonical extracted answer ('' when none).
 */
export function rewardRows(n: i32, totalUnits: i32, strict: bool): void {
  ensureOutput(<usize>n * 4);
  ensureAscii(<usize>totalUnits + <usize>n * 4 + 16);
  let at: usize = 0;
  for (let r: i32 = 0; r < n; r++) {
    const cOff = <usize>tab(<usize>r * 4);
    const cLen = <usize>tab(<usize>r * 4 + 1);
    const gOff = <usize>tab(<usize>r * 4 + 2);
    const gLen = <usize>tab(<usize>r * 4 + 3);
    const o = <usize>r * 4;
    extract(cOff, cOff + cLen, strict);
    let len: usize = 0;
    if (ansFound) len = canonical(ansStart, ansEnd, ansNeg, at);
    const found = ansFound;
    putOut(o + 1, ansFormat ? 1 : 0);
    putOut(o + 2, <i32>at);
    putOut(o + 3, <i32>len);
    if (!parseGold(gOff, gOff + gLen)) {
      putOut(o, -1);
      at += len;
      continue;
    }
    // Canonicalise the gold just past the answer (scratch, not kept) and compare bytes.
    const gl = canonical(goldStart, goldEnd, goldNeg, at + len);
    let eq = found && gl == len;
    if (eq) eq = memory.compare(asciiPtr + at, asciiPtr + at + len, len) == 0;
    putOut(o, eq ? 1 : 0);
    at += len;
  }
}
