// Raw, growable buffers shared by the text entry points (assembly/text.ts). Everything is addressed with
// load/store on memory from heap.alloc, so no managed object is ever created and the GC never runs: a call
// costs exactly its scan, whatever the input.
//
// Layout the JS side (src/text/text-wasm.ts) relies on:
//   input  : UTF-16 code units of every string of the batch, back to back (a JS string copied unit by unit,
//            so every offset we return is a JS string index and JS can slice without re-decoding)
//   table  : i32 per item (split: off,len; reward: cOff,cLen,gOff,gLen), offsets in code units into input
//   output : i32 results (layout per entry point, see _text_split.ts / _text_reward.ts)
//   ascii  : bytes of canonical numbers written by the reward checker (ASCII, so UTF-8 decodable)

/** Grows (never shrinks) a buffer to at least `bytes`; the contents are not preserved (callers refill). */
function grow(ptr: usize, cap: usize, bytes: usize): usize {
  if (bytes <= cap) return ptr;
  if (ptr != 0) heap.free(ptr);
  return heap.alloc(bytes);
}

function roundUp(n: usize): usize {
  // Grow geometrically so a stream of slightly larger batches does not realloc every call.
  let c: usize = 256;
  while (c < n) c <<= 1;
  return c;
}

let inPtr: usize = 0;
let inCap: usize = 0;
let tabPtr: usize = 0;
let tabCap: usize = 0;
export let outPtr: usize = 0;
let outCap: usize = 0;
export let asciiPtr: usize = 0;
let asciiCap: usize = 0;

export function ensureInput(units: usize): usize {
  const bytes = roundUp(units << 1);
  if (bytes > inCap) {
    inPtr = grow(inPtr, inCap, bytes);
    inCap = bytes;
  }
  return inPtr;
}

export function ensureTable(ints: usize): usize {
  const bytes = roundUp(ints << 2);
  if (bytes > tabCap) {
    tabPtr = grow(tabPtr, tabCap, bytes);
    tabCap = bytes;
  }
  return tabPtr;
}

export function ensureOutput(ints: usize): usize {
  const bytes = roundUp(ints << 2);
  if (bytes > outCap) {
    outPtr = grow(outPtr, outCap, bytes);
    outCap = bytes;
  }
  return outPtr;
}

export function ensureAscii(bytes: usize): usize {
  const b = roundUp(bytes);
  if (b > asciiCap) {
    asciiPtr = grow(asciiPtr, asciiCap, b);
    asciiCap = b;
  }
  return asciiPtr;
}

/** Makes room for `ints` i32 at the output, keeping what is already there: the splitter grows its output as it
 * finds annotations instead of reserving the worst case (3 ints per 4 input units) up front, which for a large
 * batch was a single block past the allocator's 1 GiB limit. */
export function growOutput(ints: usize): void {
  const bytes = ints << 2;
  if (bytes <= outCap) return;
  const cap = roundUp(bytes);
  outPtr = outPtr == 0 ? heap.alloc(cap) : heap.realloc(outPtr, cap);
  outCap = cap;
}

// Buffers above this size are handed back to the allocator after a call (trimBuffers), so that one huge batch
// does not pin its buffers for the rest of the process while every later call is small.
const KEEP_BYTES: usize = 1 << 20;

/** Frees every buffer larger than KEEP_BYTES; the next call allocates what it needs again. */
export function trimBuffers(): void {
  if (inCap > KEEP_BYTES) { heap.free(inPtr); inPtr = 0; inCap = 0; }
  if (tabCap > KEEP_BYTES) { heap.free(tabPtr); tabPtr = 0; tabCap = 0; }
  if (outCap > KEEP_BYTES) { heap.free(outPtr); outPtr = 0; outCap = 0; }
  if (asciiCap > KEEP_BYTES) { heap.free(asciiPtr); asciiPtr = 0; asciiCap = 0; }
}

export function inputPtr(): usize {
  return inPtr;
}

export function tablePtr(): usize {
  return tabPtr;
}

/** Code unit at index i of the input (callers keep i in bounds). */
@inline export function cu(i: usize): u32 {
  return <u32>load<u16>(inPtr + (i << 1));
}

@inline export function tab(i: usize): i32 {
  return load<i32>(tabPtr + (i << 2));
}

@inline export function putOut(i: usize, v: i32): void {
  store<i32>(outPtr + (i << 2), v);
}
