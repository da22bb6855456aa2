// Sub-step expansion of calculator annotations (`48*37` -> `48 * 30 = 1440`, `48 * 7 = 336`, `1440 + 336 = 1776`).
// The scheme, and what each failure means, is documented in src/data/expand.ts (the JS API); this file is its
// implementation. All arithmetic is exact: rationals of i64 numerator and denominator, reduced after every
// operation; a value that does not fit (|n| or d past 2^62, or more than 18 decimals) stops the annotation with
// "too large" rather than giving a wrong step. No floats anywhere.
//
// Like the other text entry points this one works on raw memory only (no managed objects, the GC never runs).
// Per annotation the work is: parse into a node pool (each node caches its exact value), compare the value with
// the stated result, then write the steps as ASCII text by walking the tree (post-order, left to right).
//
// Table (4 i32 per annotation): exprOff, exprLen, resultOff, resultLen (code units into the input buffer).
// Output (5 i32 per annotation): code, sub, aux, textOff, textLen; the text (ASCII) is in the buffer whose address
// expandRows returns. code/sub/aux/text:
//   OK          0, 0, steps, the steps joined by '\n'
//   UNPARSED    1, sub: 1 result is not a number | 2 unexpected character at aux | 3 ')' expected at aux |
//               4 expression ends early; aux is a code-unit index into the expression
//   WRONG       2, sub: 1 plain | 2 rounded (the stated result is the exact value rounded or truncated to its
//               decimals); text = the exact value (a decimal, or n/d when it is not a finite decimal)
//   TOO_LONG    3, 0, steps
//   UNSUPPORTED 4, sub: 1 division by zero | 2 a quotient on the way is not a finite decimal (text
//               "quotient A / B = n/d") | 3 a bare number, no operation | 4 numbers too large | 5 nested too deep |
//               6 the steps end elsewhere than the exact value (a bug guard: never expected; text = where) |
//               7 too complex (nested chains past the work budget)
//   NO_RESULT   5 (the result is empty)
import { cu, tab, ensureOutput, putOut } from './_text_buf';

const OK: i32 = 0;
const UNPARSED: i32 = 1;
const WRONG: i32 = 2;
const TOO_LONG: i32 = 3;
const UNSUPPORTED: i32 = 4;
const NO_RESULT: i32 = 5;

const SUB_RESULT_NAN: i32 = 1;
const SUB_UNEXPECTED: i32 = 2;
const SUB_RPAREN: i32 = 3;
const SUB_ENDS_EARLY: i32 = 4;
const SUB_PLAIN: i32 = 1;
const SUB_ROUNDED: i32 = 2;
const SUB_DIV_ZERO: i32 = 1;
const SUB_NOT_FINITE: i32 = 2;
const SUB_NO_OP: i32 = 3;
const SUB_TOO_LARGE: i32 = 4;
const SUB_TOO_DEEP: i32 = 5;
const SUB_INTERNAL: i32 = 6;
const SUB_TOO_COMPLEX: i32 = 7;

const MAX_DEPTH: i32 = 100;
const LIMIT: i64 = 1 << 62;

const PLUS: u32 = 43;
const MINUS: u32 = 45;
const STAR: u32 = 42;
const SLASH: u32 = 47;
const PCT: u32 = 37;
const LPAREN: u32 = 40;
const RPAREN: u32 = 41;
const DOT: u32 = 46;
const COMMA: u32 = 44;

// Node kinds. A chain of products and quotients is the left spine of MULDIV nodes.
const K_NUM: i32 = 0;
const K_SUM: i32 = 1;
const K_MULDIV: i32 = 2;
const K_PCT: i32 = 3;

// ---- growable scratch buffers (contents kept on growth) ----
function cap2(n: usize): usize {
  let c: usize = 256;
  while (c < n) c <<= 1;
  return c;
}
function regrow(ptr: usize, need: usize): usize {
  return ptr == 0 ? heap.alloc(need) : heap.realloc(ptr, need);
}

let txt: usize = 0; // ASCII text of every annotation of the batch, back to back
let txtCap: usize = 0;
let txtLen: usize = 0;
function putc(c: u32): void {
  if (txtLen + 1 > txtCap) {
    txtCap = cap2(txtLen + 1);
    txt = regrow(txt, txtCap);
  }
  store<u8>(txt + txtLen, <u8>c);
  txtLen++;
}

// Values (16 bytes: n, d), a stack reset per annotation.
let vals: usize = 0;
let valsCap: usize = 0;
let valTop: i32 = 0;
function slot(n: i64, d: i64): i32 {
  const need = (<usize>valTop + 1) << 4;
  if (need > valsCap) {
    valsCap = cap2(need);
    vals = regrow(vals, valsCap);
  }
  store<i64>(vals + (<usize>valTop << 4), n);
  store<i64>(vals + (<usize>valTop << 4) + 8, d);
  return valTop++;
}
@inline function sn(s: i32): i64 {
  return load<i64>(vals + (<usize>s << 4));
}
@inline function sd(s: i32): i64 {
  return load<i64>(vals + (<usize>s << 4) + 8);
}

// Int stack (chain factors as op, node pairs; lists of part slots).
let ist: usize = 0;
let istCap: usize = 0;
let itop: i32 = 0;
function ipush(v: i32): void {
  const need = (<usize>itop + 1) << 2;
  if (need > istCap) {
    istCap = cap2(need);
    ist = regrow(ist, istCap);
  }
  store<i32>(ist + (<usize>itop << 2), v);
  itop++;
}
@inline function iget(i: i32): i32 {
  return load<i32>(ist + (<usize>i << 2));
}
@inline function iset(i: i32, v: i32): void {
  store<i32>(ist + (<usize>i << 2), v);
}

// Nodes (40 bytes: kind, op, a, b, n, d, divByZero).
const NODE: usize = 40;
let nodes: usize = 0;
let nodesCap: usize = 0;
let nodeTop: i32 = 0;
@inline function nKind(i: i32): i32 {
  return load<i32>(nodes + <usize>i * NODE);
}
@inline function nOp(i: i32): u32 {
  return load<u32>(nodes + <usize>i * NODE + 4);
}
@inline function nA(i: i32): i32 {
  return load<i32>(nodes + <usize>i * NODE + 8);
}
@inline function nB(i: i32): i32 {
  return load<i32>(nodes + <usize>i * NODE + 12);
}
@inline function nN(i: i32): i64 {
  return load<i64>(nodes + <usize>i * NODE + 16);
}
@inline function nD(i: i32): i64 {
  return load<i64>(nodes + <usize>i * NODE + 24);
}
@inline function nZero(i: i32): bool {
  return load<i32>(nodes + <usize>i * NODE + 32) != 0;
}

// ---- exact arithmetic; results in rn/rd, overflow sets ovf ----
let ovf = false;
let rn: i64 = 0;
let rd: i64 = 1;

@inline function absI(x: i64): i64 {
  return x < 0 ? -x : x;
}
function gcd(a: i64, b: i64): i64 {
  a = absI(a);
  b = absI(b);
  while (b != 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}
function cmul(a: i64, b: i64): i64 {
  if (a == 0 || b == 0) return 0;
  if (absI(a) >= LIMIT / absI(b)) {
    ovf = true;
    return 0;
  }
  return a * b;
}
function cadd(a: i64, b: i64): i64 {
  const c = a + b;
  if (absI(c) >= LIMIT) {
    ovf = true;
    return 0;
  }
  return c;
}
/** Sets rn/rd to n/d reduced, with d > 0. */
function setQ(n: i64, d: i64): void {
  if (ovf || d == 0) {
    rn = 0;
    rd = 1;
    return;
  }
  if (d < 0) {
    n = -n;
    d = -d;
  }
  const g = gcd(n, d);
  rn = g > 1 ? n / g : n;
  rd = g > 1 ? d / g : d;
}
function qadd(an: i64, ad: i64, bn: i64, bd: i64, neg: bool): void {
  const g = gcd(ad, bd);
  const l = cmul(ad / g, bd);
  setQ(cadd(cmul(an, bd / g), neg ? -cmul(bn, ad / g) : cmul(bn, ad / g)), l);
}
function qmul(an: i64, ad: i64, bn: i64, bd: i64): void {
  const g1 = gcd(an, bd) || 1;
  const g2 = gcd(bn, ad) || 1;
  setQ(cmul(an / g1, bn / g2), cmul(ad / g2, bd / g1));
}
/** Caller checks bn != 0. */
function qdiv(an: i64, ad: i64, bn: i64, bd: i64): void {
  qmul(an, ad, bn < 0 ? -bd : bd, absI(bn));
}
/** Decimal places of n/d (reduced), or -1 when d has a prime factor other than 2 and 5. */
function decimals(d: i64): i32 {
  let twos: i32 = 0;
  let fives: i32 = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    twos++;
  }
  while (d % 5 == 0) {
    d /= 5;
    fives++;
  }
  return d == 1 ? max(twos, fives) : -1;
}
@inline function finite(d: i64): bool {
  return decimals(d) >= 0;
}
function pow10(k: i32): i64 {
  if (k > 18) {
    ovf = true;
    return 1;
  }
  let p: i64 = 1;
  for (let i: i32 = 0; i < k; i++) p *= 10;
  return p;
}
/** |n|/d scaled to an integer by 10^decimals (n/d is a finite decimal); sets ovf if it does not fit. */
function scaled(n: i64, d: i64, k: i32): i64 {
  return cmul(absI(n), pow10(k) / d);
}
function nonzeroDigits(n: i64, d: i64): i32 {
  let s = scaled(n, d, decimals(d));
  let c: i32 = 0;
  while (s != 0) {
    if (s % 10 != 0) c++;
    s /= 10;
  }
  return c;
}
/** 1, 10, 100, 0.1, 0.01, ... (dividing by one only moves the decimal point). */
function isPowerOfTen(n: i64, d: i64): bool {
  let s = scaled(n, d, decimals(d));
  if (s == 0) return false;
  while (s % 10 == 0) s /= 10;
  return s == 1;
}

// ---- text ----
function putInt(v: i64): void {
  // v >= 0
  let p: i64 = 1;
  while (p <= v / 10) p *= 10;
  while (p > 0) {
    putc(48 + <u32>((v / p) % 10));
    p /= 10;
  }
}
/** Writes a finite decimal as GSM8K does: `-12.75`, `0.5`, `3`. */
function putNum(n: i64, d: i64): void {
  const k = decimals(d);
  const s = scaled(n, d, k);
  if (n < 0) putc(MINUS);
  const p = pow10(k);
  putInt(s / p);
  if (k > 0) {
    putc(DOT);
    let f = s % p;
    let q = p / 10;
    while (q > 0) {
      putc(48 + <u32>((f / q) % 10));
      f %= q;
      q /= 10;
    }
  }
}
/** A value that may not be a finite decimal: the decimal, or `n/d`. */
function putExact(n: i64, d: i64): void {
  if (finite(d)) {
    putNum(n, d);
    return;
  }
  if (n < 0) putc(MINUS);
  putInt(absI(n));
  putc(SLASH);
  putInt(d);
}

/** Writes `A op B = ` (the value after it is the caller's). */
function putLhs(a: i32, op: u32, b: i32): void {
  putNum(sn(a), sd(a));
  putc(32);
  putc(op);
  putc(32);
  putNum(sn(b), sd(b));
  putc(32);
  putc(61);
  putc(32);
}

let steps: i32 = 0;
function step(a: i32, op: u32, b: i32, c: i32): void {
  if (ovf) return;
  if (steps > 0) putc(10);
  putLhs(a, op, b);
  putNum(sn(c), sd(c));
  steps++;
}

// ---- failure state of the current annotation ----
let eSub: i32 = 0; // UNSUPPORTED sub-code, 0 = none
let eA: i32 = 0; // for SUB_NOT_FINITE: the operands' slots and the quotient
let eB: i32 = 0;
let eQn: i64 = 0;
let eQd: i64 = 1;

// ---- parsing ----
let pos: usize = 0;
let end: usize = 0;
let pErr: i32 = 0;
let pErrAt: usize = 0;
let depth: i32 = 0;

function newNode(kind: i32, op: u32, a: i32, b: i32, n: i64, d: i64, zero: bool): i32 {
  const p = nodes + <usize>nodeTop * NODE;
  store<i32>(p, kind);
  store<u32>(p + 4, op);
  store<i32>(p + 8, a);
  store<i32>(p + 12, b);
  store<i64>(p + 16, n);
  store<i64>(p + 24, d);
  store<i32>(p + 32, zero ? 1 : 0);
  return nodeTop++;
}
function binary(kind: i32, op: u32, a: i32, b: i32): i32 {
  let zero = nZero(a) || nZero(b);
  if (op == PLUS || op == MINUS) qadd(nN(a), nD(a), nN(b), nD(b), op == MINUS);
  else if (op == STAR) qmul(nN(a), nD(a), nN(b), nD(b));
  else if (nN(b) == 0) {
    zero = true;
    rn = 0;
    rd = 1;
  } else qdiv(nN(a), nD(a), nN(b), nD(b));
  return newNode(kind, op, a, b, rn, rd, zero);
}

@inline function isBlank(c: u32): bool {
  // Blanks and '$' are ignored between tokens.
  return c == 32 || c == 9 || c == 10 || c == 13 || c == 0xa0 || c == 36;
}
@inline function isDigit(c: u32): bool {
  return c - 48 < 10;
}
/** The next token's first character, with x/X/× read as '*' and ÷ as '/'; 0 at the end. */
function peek(): u32 {
  while (pos < end && isBlank(cu(pos))) pos++;
  if (pos >= end) return 0;
  const c = cu(pos);
  if (c == 120 || c == 88 || c == 0xd7) return STAR;
  if (c == 0xf7) return SLASH;
  return c;
}

let numEnd: usize = 0;
/** A number at p: digits with ',' between groups of three, an optional '.' and decimals (`5`, `1,000`,
 *  `0.5`, `.5`, `5.`). Sets rn/rd and numEnd; false if there is none. */
function scanNumber(p: usize, neg: bool): bool {
  let v: i64 = 0;
  let digits: i32 = 0;
  let k: i32 = 0;
  while (p < end) {
    const c = cu(p);
    if (isDigit(c)) {
      v = cadd(cmul(v, 10), <i64>(c - 48));
      digits++;
      p++;
    } else if (c == COMMA && digits > 0 && p + 3 < end && isDigit(cu(p + 1)) && isDigit(cu(p + 2)) && isDigit(cu(p + 3)) && (p + 4 >= end || !isDigit(cu(p + 4)))) {
      p++;
    } else break;
  }
  if (p < end && cu(p) == DOT) {
    if (digits == 0 && !(p + 1 < end && isDigit(cu(p + 1)))) return false;
    p++;
    while (p < end && isDigit(cu(p))) {
      v = cadd(cmul(v, 10), <i64>(cu(p) - 48));
      k++;
      p++;
    }
  }
  if (digits == 0 && k == 0) return false;
  setQ(neg ? -v : v, pow10(k));
  numEnd = p;
  return true;
}

/** A left-associative run of operands at one precedence level: 0 is + and -, 1 is * and /. */
function parseLevel(level: i32): i32 {
  let a = level == 0 ? parseLevel(1) : parseFactor();
  while (a >= 0) {
    const c = peek();
    if (level == 0 ? c != PLUS && c != MINUS : c != STAR && c != SLASH) break;
    pos++;
    const b = level == 0 ? parseLevel(1) : parseFactor();
    if (b < 0) return -1;
    a = binary(level == 0 ? K_SUM : K_MULDIV, c, a, b);
  }
  return a;
}
function parseFactor(): i32 {
  let a = parsePrimary();
  while (a >= 0 && peek() == PCT) {
    pos++;
    qmul(nN(a), nD(a), 1, 100);
    a = newNode(K_PCT, PCT, a, -1, rn, rd, nZero(a));
  }
  return a;
}
function parsePrimary(): i32 {
  const c = peek();
  if (c == LPAREN) {
    if (++depth > MAX_DEPTH) {
      eSub = SUB_TOO_DEEP;
      return -1;
    }
    pos++;
    const a = parseLevel(0);
    if (a < 0) return -1;
    if (peek() != RPAREN) {
      pErr = SUB_RPAREN;
      pErrAt = pos;
      return -1;
    }
    pos++;
    depth--;
    return a;
  }
  const p = c == MINUS || c == PLUS ? pos + 1 : pos;
  if (c == 0 || !scanNumber(p, c == MINUS)) {
    pErr = c == 0 ? SUB_ENDS_EARLY : SUB_UNEXPECTED;
    pErrAt = pos;
    return -1;
  }
  pos = numEnd;
  return newNode(K_NUM, 0, -1, -1, rn, rd, false);
}

// ---- steps ----
/** Adds the part slots iget(base..base+count) left to right, writing each addition. */
function sumSteps(base: i32, count: i32): i32 {
  let acc = iget(base);
  for (let k: i32 = 1; k < count; k++) {
    const x = iget(base + k);
    qadd(sn(acc), sd(acc), sn(x), sd(x), false);
    const c = slot(rn, rd);
    step(acc, PLUS, x, c);
    acc = c;
  }
  return acc;
}

/** Pushes the slots of the nonzero place-value parts of a finite decimal, largest first; returns their count. */
function pushParts(n: i64, d: i64): i32 {
  const k = decimals(d);
  const s = scaled(n, d, k);
  const den = pow10(k);
  const sign: i64 = n < 0 ? -1 : 1;
  let p: i64 = 1;
  while (p <= s / 10) p *= 10;
  let count: i32 = 0;
  while (p > 0) {
    const dgt = (s / p) % 10;
    if (dgt != 0) {
      setQ(sign * dgt * p, den);
      ipush(slot(rn, rd));
      count++;
    }
    p /= 10;
  }
  return count;
}

function mulSteps(a: i32, b: i32): i32 {
  qmul(sn(a), sd(a), sn(b), sd(b));
  const c = slot(rn, rd);
  const na = nonzeroDigits(sn(a), sd(a));
  const nb = nonzeroDigits(sn(b), sd(b));
  if (na <= 1 || nb <= 1) {
    step(a, STAR, b, c);
    return c;
  }
  const splitFirst = na < nb;
  const parts = itop;
  const count = splitFirst ? pushParts(sn(a), sd(a)) : pushParts(sn(b), sd(b));
  for (let k: i32 = 0; k < count; k++) {
    const part = iget(parts + k);
    const x = splitFirst ? part : a;
    const y = splitFirst ? b : part;
    qmul(sn(x), sd(x), sn(y), sd(y));
    const v = slot(rn, rd);
    step(x, STAR, y, v);
    iset(parts + k, v);
  }
  const r = sumSteps(parts, count);
  itop = parts;
  return r;
}

function divSteps(a: i32, b: i32): i32 {
  if (sn(b) == 0) {
    eSub = SUB_DIV_ZERO;
    return -1;
  }
  qdiv(sn(a), sd(a), sn(b), sd(b));
  if (!finite(rd)) {
    eSub = SUB_NOT_FINITE;
    eA = a;
    eB = b;
    eQn = rn;
    eQd = rd;
    return -1;
  }
  const c = slot(rn, rd);
  const parts = itop;
  const count = pushParts(sn(c), sd(c));
  if (count <= 1 || isPowerOfTen(sn(b), sd(b))) {
    itop = parts;
    step(a, SLASH, b, c);
    return c;
  }
  let r = a;
  for (let k: i32 = 0; k < count; k++) {
    const part = iget(parts + k);
    qmul(sn(b), sd(b), sn(part), sd(part));
    const prod = slot(rn, rd);
    step(b, STAR, part, prod);
    qadd(sn(r), sd(r), sn(prod), sd(prod), true);
    const next = slot(rn, rd);
    step(r, MINUS, prod, next);
    r = next;
  }
  const q = sumSteps(parts, count);
  itop = parts;
  return q;
}

/** Pushes the factors (op, node) of the chain at `node`: a/b*c -> ('*', a), ('/', b), ('*', c). */
function collect(node: i32): void {
  if (nKind(node) == K_MULDIV) {
    collect(nA(node));
    ipush(<i32>nOp(node));
    ipush(nB(node));
  } else {
    ipush(<i32>STAR);
    ipush(node);
  }
}

/** Like collect, with chains in parentheses merged in and `eff` applied: a/(b*c) -> a, /b, /c. */
function flatten(node: i32, eff: u32): void {
  if (nKind(node) == K_MULDIV) {
    flatten(nA(node), eff);
    flatten(nB(node), nOp(node) == STAR ? eff : eff == STAR ? SLASH : STAR);
  } else {
    ipush(<i32>eff);
    ipush(node);
  }
}

/** Writes the chain of factor entries at [base, base + 2*count): left to right, unless that passes through a
 *  value that is not a finite decimal; then every product first and one division at the end. */
function chainSteps(base: i32, count: i32): i32 {
  let vn: i64 = 1;
  let vd: i64 = 1;
  let leftToRight = true;
  for (let k: i32 = 0; k < count; k++) {
    const f = iget(base + 2 * k + 1);
    if (nZero(f) || (iget(base + 2 * k) == <i32>SLASH && nN(f) == 0)) {
      eSub = SUB_DIV_ZERO;
      return -1;
    }
    if (iget(base + 2 * k) == <i32>STAR) qmul(vn, vd, nN(f), nD(f));
    else qdiv(vn, vd, nN(f), nD(f));
    vn = rn;
    vd = rd;
    if (!finite(vd)) leftToRight = false;
  }
  if (!leftToRight) return productsFirst(base, count);
  let hasDivision = false;
  for (let k: i32 = 1; k < count; k++) if (iget(base + 2 * k) == <i32>SLASH) hasDivision = true;
  if (!hasDivision) return leftToRightSteps(base, count);
  // Both ways are exact; the shorter is written (1/8*192: 1 * 192, then 192 / 8 by long division, instead of
  // the long division of 1/8 = 0.125 and a three-part product). A tie goes to left to right.
  const markTxt = txtLen;
  const markSteps = steps;
  const markVals = valTop;
  const markOvf = ovf;
  const r1 = leftToRightSteps(base, count);
  const n1 = r1 >= 0 && !ovf ? steps - markSteps : -1;
  rollback(markTxt, markSteps, markVals, markOvf);
  const r2 = productsFirst(base, count);
  const n2 = r2 >= 0 && !ovf ? steps - markSteps : -1;
  if (n2 >= 0 && (n1 < 0 || n2 < n1)) return r2;
  rollback(markTxt, markSteps, markVals, markOvf);
  return leftToRightSteps(base, count);
}

/** Forgets what was written since the marks (to write a chain another way). */
function rollback(markTxt: usize, markSteps: i32, markVals: i32, markOvf: bool): void {
  txtLen = markTxt;
  steps = markSteps;
  valTop = markVals;
  ovf = markOvf;
  eSub = 0;
}

/** Left to right; each factor is written just before it is combined, so the steps read like a calculator run. */
function leftToRightSteps(base: i32, count: i32): i32 {
  let acc = emit(iget(base + 1));
  for (let k: i32 = 1; k < count && acc >= 0; k++) {
    const x = emit(iget(base + 2 * k + 1));
    if (x < 0) return -1;
    acc = iget(base + 2 * k) == <i32>STAR ? mulSteps(acc, x) : divSteps(acc, x);
  }
  return acc;
}

/** The product of the multiplied factors, the product of the divisors, then one division. */
function productsFirst(base: i32, count: i32): i32 {
  const num = productOf(base, count, STAR);
  if (num < 0) return -1;
  const den = productOf(base, count, SLASH);
  return den < 0 ? -1 : divSteps(num, den);
}

/** Writes the product of the chain's factors whose op is `op`, left to right. */
function productOf(base: i32, count: i32, op: u32): i32 {
  let acc: i32 = -1;
  for (let k: i32 = 0; k < count; k++) {
    if (iget(base + 2 * k) != <i32>op) continue;
    const x = emit(iget(base + 2 * k + 1));
    if (x < 0) return -1;
    acc = acc < 0 ? x : mulSteps(acc, x);
    if (acc < 0) return -1;
  }
  return acc;
}

function emitChain(node: i32): i32 {
  const base = itop;
  collect(node);
  const count = (itop - base) / 2;
  let nested = false;
  for (let k: i32 = 0; k < count; k++) if (nKind(iget(base + 2 * k + 1)) == K_MULDIV) nested = true;
  let r: i32;
  if (!nested) {
    r = chainSteps(base, count);
  } else {
    // Parentheses as written first; if that passes through a value that is not a finite decimal (3*(2/3)),
    // the products and quotients in parentheses are merged into this chain and it is written again.
    const markTxt = txtLen;
    const markSteps = steps;
    const markVals = valTop;
    const markOvf = ovf;
    r = chainSteps(base, count);
    if (r < 0 && eSub == SUB_NOT_FINITE) {
      rollback(markTxt, markSteps, markVals, markOvf);
      itop = base;
      flatten(node, STAR);
      r = chainSteps(base, (itop - base) / 2);
    }
  }
  itop = base;
  return r;
}

// Trying two ways of writing a chain re-writes its factors, so nested chains could cost 3^depth: every emit
// counts against a budget per annotation, and past it the annotation is 'unsupported' (too complex).
const WORK_LIMIT: i32 = 200000;
let work: i32 = 0;

function emit(node: i32): i32 {
  if (++work > WORK_LIMIT) {
    eSub = SUB_TOO_COMPLEX;
    return -1;
  }
  const kind = nKind(node);
  if (kind == K_NUM) return slot(nN(node), nD(node));
  if (kind == K_PCT) {
    const a = emit(nA(node));
    return a < 0 ? -1 : divSteps(a, slot(100, 1));
  }
  if (kind == K_MULDIV) return emitChain(node);
  const a = emit(nA(node));
  if (a < 0) return -1;
  const b = emit(nB(node));
  if (b < 0) return -1;
  const op = nOp(node);
  qadd(sn(a), sd(a), sn(b), sd(b), op == MINUS);
  const c = slot(rn, rd);
  step(a, op, b, c);
  return c;
}

// ---- one annotation ----
let rDecimals: i32 = 0;
let rPct = false;
/** Parses the stated result: blanks, '$' and thousands commas ignored, an optional trailing '%'. */
function parseResult(off: usize, len: usize): bool {
  pos = off;
  end = off + len;
  while (end > pos && isBlank(cu(end - 1))) end--;
  rPct = end > pos && cu(end - 1) == PCT;
  if (rPct) end--;
  const c = peek();
  const p = c == MINUS || c == PLUS ? pos + 1 : pos;
  if (c == 0 || !scanNumber(p, c == MINUS)) return false;
  rDecimals = 0;
  for (let i = p; i < numEnd; i++) if (cu(i) == DOT) rDecimals = <i32>(numEnd - i - 1);
  pos = numEnd;
  return peek() == 0;
}

let oCode: i32 = 0;
let oSub: i32 = 0;
let oAux: i32 = 0;

function fail(code: i32, sub: i32, aux: i32): void {
  oCode = code;
  oSub = sub;
  oAux = aux;
}

function expandOne(eOff: usize, eLen: usize, rOff: usize, rLen: usize, maxSteps: i32, start: usize): void {
  valTop = 0;
  itop = 0;
  nodeTop = 0;
  steps = 0;
  work = 0;
  ovf = false;
  eSub = 0;
  pErr = 0;
  depth = 0;
  oAux = 0;
  oSub = 0;
  let blank = true;
  for (let i: usize = 0; i < rLen; i++) if (!isBlank(cu(rOff + i)) || cu(rOff + i) == 36) blank = false;
  if (blank) return fail(NO_RESULT, 0, 0);
  if (!parseResult(rOff, rLen)) return fail(UNPARSED, SUB_RESULT_NAN, 0);
  const resN = rn;
  const resD = rd;
  const need = (eLen + 2) * NODE;
  if (need > nodesCap) {
    if (nodes != 0) heap.free(nodes);
    nodesCap = cap2(need);
    nodes = heap.alloc(nodesCap);
  }
  pos = eOff;
  end = eOff + eLen;
  let root = parseLevel(0);
  if (root >= 0 && peek() != 0) {
    pErr = SUB_UNEXPECTED;
    pErrAt = pos;
    root = -1;
  }
  if (root < 0) {
    if (eSub == SUB_TOO_DEEP) return fail(UNSUPPORTED, SUB_TOO_DEEP, 0);
    return fail(UNPARSED, pErr, <i32>(pErrAt - eOff));
  }
  if (nKind(root) == K_NUM) return fail(UNSUPPORTED, SUB_NO_OP, 0);
  if (ovf) return fail(UNSUPPORTED, SUB_TOO_LARGE, 0);
  if (nZero(root)) return fail(UNSUPPORTED, SUB_DIV_ZERO, 0);
  const xn = nN(root);
  const xd = nD(root);
  let matches = xn == resN && xd == resD;
  if (!matches && rPct) {
    // `N%` is also accepted when the expression is N/100.
    qmul(resN, resD, 1, 100);
    matches = xn == rn && xd == rd;
  }
  if (!matches) {
    // Rounded: |exact - stated| < 10^-decimals, and the exact value has more decimals than stated.
    qadd(xn, xd, resN, resD, true);
    const close = cmul(absI(rn), pow10(rDecimals)) < rd;
    const dx = decimals(xd);
    putExact(xn, xd);
    if (ovf) {
      txtLen = start;
      return fail(UNSUPPORTED, SUB_TOO_LARGE, 0);
    }
    return fail(WRONG, close && (dx < 0 || dx > rDecimals) ? SUB_ROUNDED : SUB_PLAIN, 0);
  }
  const last = emit(root);
  if (ovf) {
    txtLen = start;
    return fail(UNSUPPORTED, SUB_TOO_LARGE, 0);
  }
  if (eSub != 0) {
    txtLen = start;
    if (eSub == SUB_NOT_FINITE) {
      for (let i = 0; i < 9; i++) putc(<u32>"quotient ".charCodeAt(i));
      putLhs(eA, SLASH, eB);
      putExact(eQn, eQd);
    }
    return fail(UNSUPPORTED, eSub, 0);
  }
  if (sn(last) != xn || sd(last) != xd) {
    txtLen = start;
    putExact(sn(last), sd(last));
    return fail(UNSUPPORTED, SUB_INTERNAL, 0);
  }
  if (steps > maxSteps) {
    txtLen = start;
    return fail(TOO_LONG, 0, steps);
  }
  fail(OK, 0, steps);
}

/**
 * Expands `n` annotations described by the table (exprOff, exprLen, resultOff, resultLen); writes 5 i32 per
 * annotation to the output (see the header) and returns the address of the text buffer.
 */
export function expandRows(n: i32, maxSteps: i32): usize {
  ensureOutput(<usize>n * 5);
  txtLen = 0;
  for (let r: i32 = 0; r < n; r++) {
    const t = <usize>r * 4;
    const start = txtLen;
    expandOne(<usize>tab(t), <usize>tab(t + 1), <usize>tab(t + 2), <usize>tab(t + 3), maxSteps, start);
    const w = <usize>r * 5;
    putOut(w, oCode);
    putOut(w + 1, oSub);
    putOut(w + 2, oAux);
    putOut(w + 3, <i32>start);
    putOut(w + 4, <i32>(txtLen - start));
  }
  return txt;
}
