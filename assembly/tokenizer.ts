// Byte-level BPE tokenizer (Qwen2 / Llama-3 family) in WASM: added-token matching, the split regex hand-written as
// a scanner over UTF-8, BPE merges by rank, a word cache, and decoding to bytes.
//
// The JS side (src/text/tokenizer.ts) writes UTF-8 (already NFC-normalised where it is not ASCII) into the input
// buffer and reads ids from the output buffer; nothing here allocates per call except when a buffer must grow.
// All tables live in raw memory from heap.alloc, addressed with load/store, so the GC never runs.
//
// The split regex (HF pre_tokenizer "Split", behavior Isolated, run by Oniguruma in HF):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// (Llama-3 uses \p{N}{1,3} for the third branch: setOptions(maxDigits = 3).) nextPiece() explains how each
// branch, including the backtracking of the whitespace branches, reduces to a forward scan.
import { UNI_STAGE1, UNI_STAGE2 } from './_tok_unicode';

// ---------------------------------------------------------------------------------------------------------------
// Character classes
const U64_MAX: u64 = 0xffffffffffffffff;
const U32_MAX: u32 = 0xffffffff;
const C_OTHER: u32 = 0;
const C_L: u32 = 1;
const C_N: u32 = 2;
const C_WS: u32 = 3;

@inline function uniClass(cp: u32): u32 {
  const blk = <u32>load<u8>(UNI_STAGE1 + (cp >> 8));
  const byte = <u32>load<u8>(UNI_STAGE2 + (blk << 6) + ((cp & 255) >> 2));
  return (byte >> ((cp & 3) << 1)) & 3;
}

const ASCII_CLS: usize = memory.data(128);
for (let c: u32 = 0; c < 128; c++) store<u8>(ASCII_CLS + c, <u8>uniClass(c));

/** Byte length of the code point last classified by clsAt (a global avoids returning a pair). */
let gLen: usize = 1;

/** Class of the code point starting at p (p < e); sets gLen. */
@inline function clsAt(p: usize, e: usize): u32 {
  const b0 = <u32>load<u8>(p);
  if (b0 < 0x80) {
    gLen = 1;
    return <u32>load<u8>(ASCII_CLS + b0);
  }
  return clsSlow(p, e, b0);
}

// Input from TextEncoder is always valid UTF-8; anything else (only if a caller writes raw bytes) is classed as
// a one-byte "other" character so that scanning always advances and never reads past e.
function clsSlow(p: usize, e: usize, b0: u32): u32 {
  let n: usize;
  let cp: u32;
  if (b0 >= 0xc2 && b0 < 0xe0) { n = 2; cp = b0 & 0x1f; }
  else if (b0 >= 0xe0 && b0 < 0xf0) { n = 3; cp = b0 & 0x0f; }
  else if (b0 >= 0xf0 && b0 < 0xf5) { n = 4; cp = b0 & 0x07; }
  else { gLen = 1; return C_OTHER; }
  if (p + n > e) { gLen = 1; return C_OTHER; }
  for (let k: usize = 1; k < n; k++) {
    const b = <u32>load<u8>(p + k);
    if ((b & 0xc0) != 0x80) { gLen = 1; return C_OTHER; }
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp > 0x10ffff) { gLen = 1; return C_OTHER; }
  gLen = n;
  return uniClass(cp);
}

// ---------------------------------------------------------------------------------------------------------------
// Growable raw buffers

@inline function max3(a: usize, b: usize, c: usize): usize {
  return max(a, max(b, c));
}

function grow(ptr: usize, bytes: usize): usize {
  return ptr == 0 ? heap.alloc(bytes) : heap.realloc(ptr, bytes);
}

let inPtr: usize = 0;
let inCap: usize = 0;
/** Returns a buffer of at least n bytes for the next call's input (text, token bytes, or u32 ids). */
export function inputBuffer(n: usize): usize {
  if (n > inCap) {
    inCap = max3(n, inCap * 2, 4096);
    if (inPtr != 0) heap.free(inPtr);
    inPtr = heap.alloc(inCap);
  }
  return inPtr;
}

let outPtr: usize = 0; // u32 ids
let outCap: usize = 0; // in ids
let outLen: usize = 0;
@inline function ensureOut(extra: usize): void {
  if (outLen + extra > outCap) {
    outCap = max3(outLen + extra, outCap * 2, 1024);
    outPtr = grow(outPtr, outCap << 2);
  }
}
export function outputPtr(): usize { return outPtr; }

let decPtr: usize = 0; // decoded bytes
let decCap: usize = 0;
export function decodedPtr(): usize { return decPtr; }

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary: id -> bytes (offsets into the loaded blob) and bytes -> id (open addressing).
//
// The hash is polynomial (h = h * P + byte, mod 2^32), so the hash of a concatenation follows from the parts:
// h(ab) = h(a) * P^len(b) + h(b). With each token's hash kept, "which token is bytes(a) + bytes(b)?" costs one
// probe and no copying; that is how merges are found when the blob uses implicit merges (below).

let loaded = false;
let nIds: u32 = 0;
let tokOff: usize = 0; // u32[nIds + 1], offsets relative to tokBase
let tokBase: usize = 0;
let tokHash: usize = 0; // u32[nIds]
let powP: usize = 0; // u32[maxLen + 1]: P^k
let maxTokLen: usize = 0;
let tShift: u32 = 32;
let tMask: u32 = 0;
let tSlots: usize = 0; // (hash u32, id + 1 u32) per slot; id + 1 == 0 marks empty
const byteId: usize = memory.data(256 * 4);
const MISSING: u32 = 0xfffffffe; // id for a byte the vocabulary lacks; dropped from output as HF drops it
let haveMissing = false;
const P: u32 = 0x01000193;

@inline function hashBytes(p: usize, n: usize): u32 {
  let h: u32 = 0;
  for (let k: usize = 0; k < n; k++) h = h * P + <u32>load<u8>(p + k);
  return h;
}
/** Slot of a hash: Fibonacci hashing takes the well-mixed high bits of the product. */
@inline function tSlot(h: u32): u32 {
  return (h * 0x9e3779b1) >> tShift;
}

@inline function tokLen(id: u32): usize {
  return <usize>(load<u32>(tokOff + (<usize>id << 2) + 4) - load<u32>(tokOff + (<usize>id << 2)));
}
@inline function tokPtr(id: u32): usize {
  return tokBase + <usize>load<u32>(tokOff + (<usize>id << 2));
}

function tokFindH(p: usize, n: usize, h: u32): i32 {
  let i = tSlot(h);
  while (true) {
    const s = tSlots + (<usize>i << 3);
    const id1 = load<u32>(s + 4);
    if (id1 == 0) return -1;
    if (load<u32>(s) == h) {
      const id = id1 - 1;
      if (tokLen(id) == n && memory.compare(tokPtr(id), p, n) == 0) return <i32>id;
    }
    i = (i + 1) & tMask;
  }
}
@inline function tokFind(p: usize, n: usize): i32 {
  return tokFindH(p, n, hashBytes(p, n));
}

/** The token whose bytes are bytes(a) + bytes(b), or -1. */
function tokPairFind(a: u32, b: u32): i32 {
  const la = tokLen(a);
  const lb = tokLen(b);
  if (la + lb > maxTokLen) return -1;
  const h = load<u32>(tokHash + (<usize>a << 2)) * load<u32>(powP + (lb << 2)) + load<u32>(tokHash + (<usize>b << 2));
  let i = tSlot(h);
  while (true) {
    const s = tSlots + (<usize>i << 3);
    const id1 = load<u32>(s + 4);
    if (id1 == 0) return -1;
    if (load<u32>(s) == h) {
      const z = id1 - 1;
      const pz = tokPtr(z);
      if (tokLen(z) == la + lb && memory.compare(pz, tokPtr(a), la) == 0 && memory.compare(pz + la, tokPtr(b), lb) == 0) return <i32>z;
    }
    i = (i + 1) & tMask;
  }
}

function tokInsert(id: u32): void {
  const p = tokPtr(id);
  const n = tokLen(id);
  const h = hashBytes(p, n);
  store<u32>(tokHash + (<usize>id << 2), h);
  if (tokFindH(p, n, h) >= 0) return; // first id wins for duplicate byte strings
  let i = tSlot(h);
  while (load<u32>(tSlots + (<usize>i << 3) + 4) != 0) i = (i + 1) & tMask;
  store<u32>(tSlots + (<usize>i << 3), h);
  store<u32>(tSlots + (<usize>i << 3) + 4, id + 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Merges: (left id, right id) -> (rank << 32) | merged id.
// Implicit mode (Qwen2, GPT-2 style vocabularies: merge r makes token mergeBase + r): no merge table at all. The
// pair (a, b) merges iff z = token(bytes(a) + bytes(b)) exists, z - mergeBase is a rank, and that merge splits z
// where a ends (byte strings are unique, so this identifies the pair). This keeps startup to one pass over the
// tokens. Explicit mode: an open-addressing table keyed by the packed pair, filled from the blob's pairs.

let implicitMerges = false;
let mergeBase: u32 = 0;
let nMergesG: u32 = 0;
let splitAt: usize = 0; // u16[nMerges] (implicit): length in bytes of the left part of merge r
let mMask: u32 = 0;
let mKeys: usize = 0; // (u64 key, u64 value) slots; key U64_MAX = empty (ids never reach 0xffffffff)
const NO_MERGE: u64 = U64_MAX;

@inline function mergeSlot(key: u64): u32 {
  return <u32>((key * 0x9e3779b97f4a7c15) >> 32);
}

@inline function mergeGet(a: u32, b: u32): u64 {
  if (implicitMerges) return mergeGetImplicit(a, b);
  const key = (<u64>a << 32) | <u64>b;
  let i = mergeSlot(key) & mMask;
  while (true) {
    const k = load<u64>(mKeys + (<usize>i << 4));
    if (k == key) return load<u64>(mKeys + (<usize>i << 4) + 8);
    if (k == U64_MAX) return NO_MERGE;
    i = (i + 1) & mMask;
  }
}

function mergeGetImplicit(a: u32, b: u32): u64 {
  if (a >= nIds || b >= nIds) return NO_MERGE; // MISSING bytes
  const z = tokPairFind(a, b);
  if (z < 0) return NO_MERGE;
  const r = <u32>z - mergeBase;
  if (<u32>z < mergeBase || r >= nMergesG || <usize>load<u16>(splitAt + (<usize>r << 1)) != tokLen(a)) return NO_MERGE;
  return (<u64>r << 32) | <u64>z;
}

function mergePut(a: u32, b: u32, rank: u32, id: u32): void {
  const key = (<u64>a << 32) | <u64>b;
  let i = mergeSlot(key) & mMask;
  while (true) {
    const k = load<u64>(mKeys + (<usize>i << 4));
    if (k == key || k == U64_MAX) break; // a repeated pair: the later rank wins, as in HF's HashMap build
    i = (i + 1) & mMask;
  }
  store<u64>(mKeys + (<usize>i << 4), key);
  store<u64>(mKeys + (<usize>i << 4) + 8, (<u64>rank << 32) | <u64>id);
}

function pow2Above(n: u32): u32 {
  let c: u32 = 1024;
  while (c < n) c <<= 1;
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// Blob loading (layout: scripts/gen/vocab.mjs)

let rp: usize = 0;
let rEnd: usize = 0;
let rBad = false;
function varint(): u32 {
  let v: u32 = 0;
  let shift: u32 = 0;
  while (true) {
    if (rp >= rEnd || shift > 28) { rBad = true; return 0; }
    const b = <u32>load<u8>(rp++);
    v |= (b & 0x7f) << shift;
    if (b < 0x80) return v;
    shift += 7;
  }
}

let loadErrIndex: i32 = -1;
/** Index of the merge an error from loadModel refers to. */
export function loadErrorIndex(): i32 { return loadErrIndex; }

/** Allocates n bytes that JS fills with a blob and hands to loadModel (which keeps it). */
export function allocBlob(n: usize): usize {
  return heap.alloc(max<usize>(n, 16));
}

/**
 * Parses a blob at ptr (from allocBlob) and builds the hash tables. Returns 0, or
 * -1 bad magic/version, -2 truncated or malformed, -3 a merge names an unknown id, -4 a merge's result is not in
 * the vocabulary (loadErrorIndex() gives the merge), -5 already loaded.
 */
export function loadModel(ptr: usize, len: usize): i32 {
  if (loaded) return -5;
  if (len < 4 || load<u32>(ptr) != 0x4b544c4c) return -1;
  rp = ptr + 4;
  rEnd = ptr + len;
  rBad = false;
  if (varint() != 1) return -1;
  const n = varint();
  const nMerges = varint();
  const mode = varint();
  const base = varint();
  // every token and merge takes at least one byte, which bounds the counts by the blob size
  if (rBad || <usize>n > len || <usize>nMerges > len || mode > 1) return -2;
  nIds = n;
  tokOff = heap.alloc((<usize>n + 1) << 2);
  let off: u32 = 0;
  maxTokLen = 0;
  for (let i: u32 = 0; i < n; i++) {
    store<u32>(tokOff + (<usize>i << 2), off);
    const l = varint();
    if (<usize>l > maxTokLen) maxTokLen = l;
    if (<u64>off + <u64>l > <u64>len) return -2;
    off += l;
  }
  store<u32>(tokOff + (<usize>n << 2), off);
  tokBase = rp;
  rp += off;
  if (rBad || rp > rEnd) return -2;
  powP = heap.alloc((maxTokLen + 1) << 2);
  let pw: u32 = 1;
  for (let k: usize = 0; k <= maxTokLen; k++) { store<u32>(powP + (k << 2), pw); pw *= P; }

  // ~60% load: a miss (most BPE pair probes miss) still stops within a cache line or two
  const tCap = pow2Above(n + (n >> 1) + 2);
  tMask = tCap - 1;
  tShift = 32 - <u32>ctz(tCap);
  tSlots = heap.alloc(<usize>tCap << 3);
  memory.fill(tSlots, 0, <usize>tCap << 3);
  tokHash = heap.alloc(<usize>max<u32>(n, 1) << 2);
  for (let i: u32 = 0; i < n; i++) if (tokLen(i) > 0) tokInsert(i);
  haveMissing = false;
  for (let b: u32 = 0; b < 256; b++) {
    store<u8>(inputBuffer(16), <u8>b);
    const id = tokFind(inPtr, 1);
    store<u32>(byteId + (<usize>b << 2), id < 0 ? MISSING : <u32>id);
    if (id < 0) haveMissing = true;
  }

  nMergesG = nMerges;
  mergeBase = base;
  if (mode == 1) {
    implicitMerges = true;
    splitAt = heap.alloc(<usize>max<u32>(nMerges, 1) << 1);
    for (let r: u32 = 0; r < nMerges; r++) {
      const split = varint();
      const z = base + r;
      if (rBad) return -2;
      if (z >= n || z < base) { loadErrIndex = r; return -4; }
      if (split == 0 || <usize>split >= tokLen(z)) { loadErrIndex = r; return -2; }
      store<u16>(splitAt + (<usize>r << 1), <u16>split);
    }
    // The gen script checked that both halves of every merge are tokens; a merge whose halves are not would
    // simply never be found by mergeGetImplicit.
  } else {
    implicitMerges = false;
    const mCap = pow2Above(nMerges * 2 + 2);
    mMask = mCap - 1;
    mKeys = heap.alloc(<usize>mCap << 4);
    memory.fill(mKeys, 0xff, <usize>mCap << 4);
    for (let r: u32 = 0; r < nMerges; r++) {
      const a = varint();
      const b = varint();
      if (rBad) return -2;
      if (a >= n || b >= n || tokLen(a) == 0 || tokLen(b) == 0) { loadErrIndex = r; return -3; }
      const z = tokPairFind(a, b);
      if (z < 0) { loadErrIndex = r; return -4; }
      mergePut(a, b, r, z);
    }
  }
  cacheInit();
  loaded = true;
  return 0;
}

export function vocabSize(): u32 { return loaded ? nIds : 0; }

// ---------------------------------------------------------------------------------------------------------------
// Added tokens (e.g. <|im_start|>): matched on the text before splitting, leftmost then longest, like HF's
// Aho-Corasick (LeftmostLongest). Kept sorted longest first so the first hit at a position is the longest.

let nAdded: u32 = 0;
let aCap: u32 = 0;
let aMeta: usize = 0; // per token 6 x u32: matchOff, matchLen, decOff, decLen, id, special
let aBytes: usize = 0;
let aBytesLen: usize = 0;
let aBytesCap: usize = 0;
const maskAll: usize = memory.data(32);
const maskPlain: usize = memory.data(32); // first bytes of the non-special added tokens
let minAddedId: u32 = U32_MAX;

/** Adds a token whose match bytes (mLen) and decode bytes (dLen) are at inputBuffer, in that order. */
export function addToken(mLen: usize, dLen: usize, id: u32, special: bool): void {
  if (mLen == 0) return;
  if (nAdded == aCap) {
    aCap = max<u32>(16, aCap * 2);
    aMeta = grow(aMeta, <usize>aCap * 24);
  }
  if (aBytesLen + mLen + dLen > aBytesCap) {
    aBytesCap = max3(aBytesLen + mLen + dLen, aBytesCap * 2, 256);
    aBytes = grow(aBytes, aBytesCap);
  }
  const off = aBytesLen;
  memory.copy(aBytes + off, inPtr, mLen + dLen);
  aBytesLen += mLen + dLen;
  // insertion keeping longest first
  let k = nAdded;
  while (k > 0 && <usize>load<u32>(aMeta + <usize>(k - 1) * 24 + 4) < mLen) {
    memory.copy(aMeta + <usize>k * 24, aMeta + <usize>(k - 1) * 24, 24);
    k--;
  }
  const m = aMeta + <usize>k * 24;
  store<u32>(m, <u32>off);
  store<u32>(m + 4, <u32>mLen);
  store<u32>(m + 8, <u32>(off + mLen));
  store<u32>(m + 12, <u32>dLen);
  store<u32>(m + 16, id);
  store<u32>(m + 20, special ? 1 : 0);
  nAdded++;
  const b0 = <usize>load<u8>(inPtr);
  setBit(maskAll, b0);
  if (!special) setBit(maskPlain, b0);
  if (id < minAddedId) minAddedId = id;
}

function setBit(mask: usize, b: usize): void {
  const cell = mask + (b >> 3);
  store<u8>(cell, <u32>load<u8>(cell) | (<u32>1 << <u32>(b & 7)));
}
@inline function hasBit(mask: usize, b: usize): bool {
  return ((<u32>load<u8>(mask + (b >> 3)) >> <u32>(b & 7)) & 1) != 0;
}

function matchAdded(p: usize, e: usize, allowSpecial: bool): i32 {
  for (let k: u32 = 0; k < nAdded; k++) {
    const m = aMeta + <usize>k * 24;
    if (!allowSpecial && load<u32>(m + 20) != 0) continue;
    const len = <usize>load<u32>(m + 4);
    if (p + len <= e && memory.compare(aBytes + <usize>load<u32>(m), p, len) == 0) return <i32>k;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------------------------
// Options

let maxDigits: u32 = 1;
let ignoreMerges = false;
/** maxDigits: 1 for Qwen2's \p{N}, 3 for Llama-3's \p{N}{1,3}; ignoreMerges: a piece that is a whole token is
 * emitted as is (HF's BPE ignore_merges). */
export function setOptions(digits: u32, ignore: bool): void {
  maxDigits = max<u32>(1, digits);
  ignoreMerges = ignore;
  cacheClear();
}

// ---------------------------------------------------------------------------------------------------------------
// Word cache: piece bytes -> ids. GSM8K-like text repeats most pieces, so most pieces skip BPE entirely.
// Entries live in an arena; when it (or the slot table) fills up, everything is dropped at once.

const CACHE_SLOTS: u32 = 1 << 16;
const CACHE_MAX_BYTES: usize = 128;
const ARENA_BYTES: usize = 4 << 20;
let cSlots: usize = 0; // (hash u32, entry offset + 1 u32)
let arena: usize = 0;
let arenaPos: usize = 0;
let cCount: u32 = 0;

function cacheInit(): void {
  if (cSlots == 0) {
    cSlots = heap.alloc(<usize>CACHE_SLOTS << 3);
    arena = heap.alloc(ARENA_BYTES);
  }
  cacheClear();
}
export function cacheClear(): void {
  if (cSlots == 0) return;
  memory.fill(cSlots, 0, <usize>CACHE_SLOTS << 3);
  arenaPos = 0;
  cCount = 0;
}

/** Returns the entry (u32 nBytes, u32 nIds, bytes padded to 4, ids) or 0. */
@inline function cacheGet(p: usize, n: usize, h: u32): usize {
  let i = (h * 0x9e3779b1) >> 16; // CACHE_SLOTS = 2^16
  while (true) {
    const s = cSlots + (<usize>i << 3);
    const e1 = load<u32>(s + 4);
    if (e1 == 0) return 0;
    if (load<u32>(s) == h) {
      const ent = arena + <usize>(e1 - 1);
      if (<usize>load<u32>(ent) == n && memory.compare(ent + 8, p, n) == 0) return ent;
    }
    i = (i + 1) & (CACHE_SLOTS - 1);
  }
}

function cachePut(p: usize, n: usize, h: u32, ids: usize, k: usize): void {
  const size: usize = 8 + ((n + 3) & ~(<usize>3)) + (k << 2);
  if (cCount >= CACHE_SLOTS / 2 || arenaPos + size > ARENA_BYTES) cacheClear();
  const ent = arena + arenaPos;
  store<u32>(ent, <u32>n);
  store<u32>(ent + 4, <u32>k);
  memory.copy(ent + 8, p, n);
  memory.copy(ent + 8 + ((n + 3) & ~(<usize>3)), ids, k << 2);
  let i = (h * 0x9e3779b1) >> 16; // CACHE_SLOTS = 2^16
  while (load<u32>(cSlots + (<usize>i << 3) + 4) != 0) i = (i + 1) & (CACHE_SLOTS - 1);
  store<u32>(cSlots + (<usize>i << 3), h);
  store<u32>(cSlots + (<usize>i << 3) + 4, <u32>arenaPos + 1);
  arenaPos += size;
  cCount++;
}

// ---------------------------------------------------------------------------------------------------------------
// BPE. Semantics (HF word.rs): repeatedly merge the adjacent pair with the lowest rank, leftmost first on ties.
// Short pieces use a plain array scan (fast, cache friendly); long ones a binary heap with lazy deletion so a
// megabyte-long run of letters stays O(n log n).

const SMALL: usize = 64;
// Scratch for one piece. A long piece needs 36 bytes per byte (sym, nxt, prv: 4 each; heap keys: up to 3 per
// symbol, 8 bytes each); trimScratch() frees it after a call that needed more than SCRATCH_KEEP symbols, so one
// huge word does not pin hundreds of MB for the rest of the process.
const SCRATCH_KEEP: usize = 1 << 16;
let symPtr: usize = 0; // u32 symbol ids
const pairPtr: usize = memory.data(<i32>(SMALL << 3)); // u64 packed (rank << 32 | merged id) of (sym[k], sym[k+1])
let nxtPtr: usize = 0; // i32, heap variant
let prvPtr: usize = 0; // i32
let hKey: usize = 0; // u64 (rank << 32 | pos); the merged id is looked up again when an entry is popped
let symCap: usize = 0;

/** Replaces a scratch buffer by one of `bytes` (its contents are not needed, so no realloc copy). */
function fresh(ptr: usize, bytes: usize): usize {
  if (ptr != 0) heap.free(ptr);
  return heap.alloc(bytes);
}

function ensureSym(n: usize): void {
  if (n <= symCap) return;
  // Geometric growth for the usual small pieces; a very long piece gets exactly what it needs.
  symCap = n > SCRATCH_KEEP ? n : max3(n, symCap * 2, 256);
  symPtr = fresh(symPtr, symCap << 2);
  nxtPtr = fresh(nxtPtr, symCap << 2);
  prvPtr = fresh(prvPtr, symCap << 2);
  hKey = fresh(hKey, symCap * 3 << 3);
}

function trimScratch(): void {
  if (symCap <= SCRATCH_KEEP) return;
  heap.free(symPtr);
  heap.free(nxtPtr);
  heap.free(prvPtr);
  heap.free(hKey);
  symPtr = nxtPtr = prvPtr = hKey = 0;
  symCap = 0;
}

/** BPE of n bytes at p; the ids are written at out (room for n). Returns the count. */
function bpeSmall(p: usize, n: usize, out: usize): usize {
  const sym = symPtr;
  const pr = pairPtr;
  for (let k: usize = 0; k < n; k++) store<u32>(sym + (k << 2), load<u32>(byteId + (<usize>load<u8>(p + k) << 2)));
  let m = n;
  for (let k: usize = 0; k + 1 < m; k++) store<u64>(pr + (k << 3), mergeGet(load<u32>(sym + (k << 2)), load<u32>(sym + (k << 2) + 4)));
  while (m > 1) {
    let best = NO_MERGE;
    let bi: usize = 0;
    for (let k: usize = 0; k + 1 < m; k++) {
      const v = load<u64>(pr + (k << 3));
      if (v < best) { best = v; bi = k; }
    }
    if (best == NO_MERGE) break;
    store<u32>(sym + (bi << 2), <u32>best);
    // drop symbol bi + 1 and pair bi + 1
    memory.copy(sym + ((bi + 1) << 2), sym + ((bi + 2) << 2), (m - bi - 2) << 2);
    if (m >= bi + 3) memory.copy(pr + ((bi + 1) << 3), pr + ((bi + 2) << 3), (m - bi - 3) << 3);
    m--;
    if (bi > 0) store<u64>(pr + ((bi - 1) << 3), mergeGet(load<u32>(sym + ((bi - 1) << 2)), load<u32>(sym + (bi << 2))));
    if (bi + 1 < m) store<u64>(pr + (bi << 3), mergeGet(load<u32>(sym + (bi << 2)), load<u32>(sym + ((bi + 1) << 2))));
  }
  memory.copy(out, sym, m << 2);
  return m;
}

let hLen: usize = 0;
@inline function hLess(i: usize, j: usize): bool {
  return load<u64>(hKey + (i << 3)) < load<u64>(hKey + (j << 3));
}
@inline function hSwap(i: usize, j: usize): void {
  const k = load<u64>(hKey + (i << 3));
  store<u64>(hKey + (i << 3), load<u64>(hKey + (j << 3)));
  store<u64>(hKey + (j << 3), k);
}
function hPush(v: u64, pos: u32): void {
  if (v == NO_MERGE) return;
  let i = hLen++;
  store<u64>(hKey + (i << 3), (v & 0xffffffff00000000) | <u64>pos);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!hLess(i, parent)) break;
    hSwap(i, parent);
    i = parent;
  }
}
function hPop(): void {
  hLen--;
  if (hLen == 0) return;
  store<u64>(hKey, load<u64>(hKey + (hLen << 3)));
  let i: usize = 0;
  while (true) {
    const l: usize = 2 * i + 1;
    if (l >= hLen) break;
    let c = l;
    if (l + 1 < hLen && hLess(l + 1, l)) c = l + 1;
    if (!hLess(c, i)) break;
    hSwap(c, i);
    i = c;
  }
}

const DEAD: u32 = U32_MAX;
function bpeLarge(p: usize, n: usize, out: usize): usize {
  const sym = symPtr;
  for (let k: usize = 0; k < n; k++) {
    store<u32>(sym + (k << 2), load<u32>(byteId + (<usize>load<u8>(p + k) << 2)));
    store<i32>(nxtPtr + (k << 2), k + 1 < n ? <i32>(k + 1) : -1);
    store<i32>(prvPtr + (k << 2), <i32>k - 1);
  }
  hLen = 0;
  for (let k: usize = 0; k + 1 < n; k++) hPush(mergeGet(load<u32>(sym + (k << 2)), load<u32>(sym + (k << 2) + 4)), <u32>k);
  while (hLen > 0) {
    const key = load<u64>(hKey);
    hPop();
    const pos = <usize>(<u32>key);
    const a = load<u32>(sym + (pos << 2));
    if (a == DEAD) continue;
    const nx = load<i32>(nxtPtr + (pos << 2));
    if (nx < 0) continue;
    const v = mergeGet(a, load<u32>(sym + (<usize>nx << 2)));
    // Stale entry: the pair changed since it was pushed. A rank names exactly one merge, so the same rank means
    // the same pair and the merged id is v's.
    if (v == NO_MERGE || (v >> 32) != (key >> 32)) continue;
    const nid = <u32>v;
    store<u32>(sym + (pos << 2), nid);
    store<u32>(sym + (<usize>nx << 2), DEAD);
    const nn = load<i32>(nxtPtr + (<usize>nx << 2));
    store<i32>(nxtPtr + (pos << 2), nn);
    if (nn >= 0) store<i32>(prvPtr + (<usize>nn << 2), <i32>pos);
    const pv = load<i32>(prvPtr + (pos << 2));
    if (pv >= 0) hPush(mergeGet(load<u32>(sym + (<usize>pv << 2)), nid), <u32>pv);
    if (nn >= 0) hPush(mergeGet(nid, load<u32>(sym + (<usize>nn << 2))), <u32>pos);
  }
  let m: usize = 0;
  for (let k: i32 = 0; k >= 0; k = load<i32>(nxtPtr + (<usize>k << 2))) store<u32>(out + (m++ << 2), load<u32>(sym + (<usize>k << 2)));
  return m;
}

/** Appends the ids of one piece [p, p + n) to the output. */
function encodePiece(p: usize, n: usize): void {
  ensureOut(n);
  if (n == 1) {
    const id = load<u32>(byteId + (<usize>load<u8>(p) << 2));
    if (id != MISSING) store<u32>(outPtr + (outLen++ << 2), id);
    return;
  }
  if (ignoreMerges) {
    const id = tokFind(p, n);
    if (id >= 0) { store<u32>(outPtr + (outLen++ << 2), <u32>id); return; }
  }
  const cacheable = n <= CACHE_MAX_BYTES;
  let h: u32 = 0;
  if (cacheable) {
    h = hashBytes(p, n);
    const ent = cacheGet(p, n, h);
    if (ent != 0) {
      const k = <usize>load<u32>(ent + 4);
      memory.copy(outPtr + (outLen << 2), ent + 8 + ((n + 3) & ~(<usize>3)), k << 2);
      outLen += k;
      return;
    }
  }
  ensureSym(n);
  const out = outPtr + (outLen << 2);
  let m = n <= SMALL ? bpeSmall(p, n, out) : bpeLarge(p, n, out);
  if (haveMissing) {
    let w: usize = 0;
    for (let k: usize = 0; k < m; k++) {
      const id = load<u32>(out + (k << 2));
      if (id != MISSING) store<u32>(out + (w++ << 2), id);
    }
    m = w;
  }
  if (cacheable) cachePut(p, n, h, out, m);
  outLen += m;
}

// ---------------------------------------------------------------------------------------------------------------
// Pre-tokenizer: the end of the regex match that starts at i (there is always one; every class is covered).

@inline function scanClass(p: usize, e: usize, cls: u32): usize {
  while (p < e && clsAt(p, e) == cls) p += gLen;
  return p;
}
@inline function scanNewlines(p: usize, e: usize): usize {
  while (p < e) {
    const b = load<u8>(p);
    if (b != 0x0d && b != 0x0a) break;
    p++;
  }
  return p;
}

function nextPiece(i: usize, e: usize): usize {
  const b = <u32>load<u8>(i);
  // (?i:'s|'t|'re|'ve|'m|'ll|'d). Oniguruma's case folding also lets U+017F (long s, UTF-8 C5 BF) match 's'.
  if (b == 0x27 && i + 1 < e) {
    const c = <u32>load<u8>(i + 1) | 0x20; // lower-cases ASCII letters; no other byte becomes one of these letters
    if (c == 0x73 || c == 0x74 || c == 0x6d || c == 0x64) return i + 2; // s t m d
    if (i + 2 < e) {
      const c2 = <u32>load<u8>(i + 2) | 0x20;
      if ((c == 0x72 || c == 0x76) && c2 == 0x65) return i + 3; // re ve
      if (c == 0x6c && c2 == 0x6c) return i + 3; // ll
      if (load<u8>(i + 1) == 0xc5 && load<u8>(i + 2) == 0xbf) return i + 3; // 'ſ
    }
  }
  const k0 = clsAt(i, e);
  const l0 = gLen;
  // [^\r\n\p{L}\p{N}]?\p{L}+ : letters, optionally preceded by one char that is not CR/LF/letter/number
  if (k0 == C_L) return scanClass(i + l0, e, C_L);
  if (k0 != C_N && b != 0x0d && b != 0x0a && i + l0 < e && clsAt(i + l0, e) == C_L) return scanClass(i + l0 + gLen, e, C_L);
  // \p{N} (or \p{N}{1,maxDigits})
  if (k0 == C_N) {
    let j = i + l0;
    for (let d: u32 = 1; d < maxDigits && j < e && clsAt(j, e) == C_N; d++) j += gLen;
    return j;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  if (k0 == C_OTHER) return scanNewlines(scanClass(i + l0, e, C_OTHER), e);
  if (b == 0x20 && i + 1 < e && clsAt(i + 1, e) == C_OTHER) return scanNewlines(scanClass(i + 1 + gLen, e, C_OTHER), e);
  // Whitespace run W = [i, j). \s*[\r\n]+ backtracks to the last CR/LF in W, so it matches up to and including it.
  // Otherwise \s+(?!\S) matches all of W when W ends the text, else W minus its last char when W has two or more
  // chars (the lookahead then sees whitespace); a single whitespace char before a non-space falls to \s+.
  let j = i;
  let afterNl: usize = 0;
  let lastStart = i;
  while (j < e && clsAt(j, e) == C_WS) {
    const c = load<u8>(j);
    lastStart = j;
    j += gLen;
    if (c == 0x0d || c == 0x0a) afterNl = j;
  }
  if (afterNl != 0) return afterNl;
  if (j == e) return j;
  if (lastStart > i) return lastStart;
  return j;
}

function encodeSpan(s: usize, e: usize): void {
  let i = s;
  while (i < e) {
    const j = nextPiece(i, e);
    encodePiece(i, j - i);
    i = j;
  }
}

/**
 * Encodes len bytes of UTF-8 at inputBuffer. Returns the number of ids, which are at outputPtr() until the next
 * call. allowSpecial: special added tokens in the text become their ids (else they are plain text).
 */
export function encode(len: usize, allowSpecial: bool): i32 {
  outLen = 0;
  if (!loaded) return -1;
  if (len > inCap) len = inCap;
  const mask = allowSpecial ? maskAll : maskPlain;
  const e = inPtr + len;
  let start = inPtr;
  if (nAdded > 0) {
    let p = inPtr;
    while (p < e) {
      const b = <usize>load<u8>(p);
      if (hasBit(mask, b)) {
        const k = matchAdded(p, e, allowSpecial);
        if (k >= 0) {
          encodeSpan(start, p);
          ensureOut(1);
          const m = aMeta + <usize>k * 24;
          store<u32>(outPtr + (outLen++ << 2), load<u32>(m + 16));
          p += <usize>load<u32>(m + 4);
          start = p;
          continue;
        }
      }
      p++;
    }
  }
  encodeSpan(start, e);
  trimScratch();
  return <i32>outLen;
}

// Buffers above this are freed by trimBuffers (src/text/tokenizer.ts calls it after a large input), so their memory
// goes back to the allocator instead of staying reserved for the rest of the process.
const KEEP_BYTES: usize = 1 << 20;

/** Frees the input, output and decode buffers when larger than KEEP_BYTES, and the BPE scratch of a long piece. */
export function trimBuffers(): void {
  if (inCap > KEEP_BYTES) { heap.free(inPtr); inPtr = 0; inCap = 0; }
  if ((outCap << 2) > KEEP_BYTES) { heap.free(outPtr); outPtr = 0; outCap = 0; outLen = 0; }
  if (decCap > KEEP_BYTES) { heap.free(decPtr); decPtr = 0; decCap = 0; }
  trimScratch();
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding and lookups

/** Bytes of n u32 ids at inputBuffer, concatenated at decodedPtr(); unknown ids are skipped as HF does. */
export function decode(n: usize): i32 {
  if (n > (inCap >> 2)) n = inCap >> 2;
  let total: usize = 0;
  for (let pass = 0; pass < 2; pass++) {
    let w: usize = 0;
    for (let k: usize = 0; k < n; k++) {
      const id = load<u32>(inPtr + (k << 2));
      let src: usize = 0;
      let len: usize = 0;
      let found = false;
      if (id >= minAddedId) {
        for (let a: u32 = 0; a < nAdded; a++) {
          const m = aMeta + <usize>a * 24;
          if (load<u32>(m + 16) == id) {
            src = aBytes + <usize>load<u32>(m + 8);
            len = <usize>load<u32>(m + 12);
            found = true;
            break;
          }
        }
      }
      if (!found && loaded && id < nIds) { src = tokPtr(id); len = tokLen(id); }
      if (pass == 1) memory.copy(decPtr + w, src, len);
      w += len;
    }
    if (pass == 0) {
      total = w;
      if (total > decCap) { decCap = max3(total, decCap * 2, 4096); decPtr = grow(decPtr, decCap); }
    }
  }
  return <i32>total;
}

/** Id of the token whose bytes are the len bytes at inputBuffer, or -1. */
export function tokenId(len: usize): i32 {
  if (!loaded || len == 0 || len > inCap) return -1;
  return tokFind(inPtr, len);
}
export function tokenPtr(id: u32): usize { return loaded && id < nIds ? tokPtr(id) : 0; }
export function tokenLen(id: u32): i32 { return loaded && id < nIds ? <i32>tokLen(id) : -1; }
