// JS side of assembly/text.ts: copies strings into WASM memory as UTF-16 code units (so every offset that
// comes back is a JS string index), runs one batch per call, and reads the results.
//
// The module is small (about 15 KiB), so it is compiled synchronously on first use: that works in Node, Deno,
// Bun and web workers. A browser main thread may refuse synchronous compilation of modules over 4 KiB;
// there, `await initTextWasm()` once before the synchronous APIs (loadGsm8k does it for you).
import wasmB64 from '../generated/text.wasm.js';
import { base64ToBytes } from '../io/wasm-embed.js';

export interface TextExports {
  memory: WebAssembly.Memory;
  ensureInput(units: number): number;
  ensureTable(ints: number): number;
  outputPtr(): number;
  asciiBufPtr(): number;
  splitRows(n: number): number;
  rewardRows(n: number, totalUnits: number, strict: number): void;
  trimBuffers(): void;
}

let wasm: TextExports | null = null;
let compiled: WebAssembly.Module | null = null;
let pending: Promise<TextExports> | null = null;

// Limits. One WASM call gets at most CHUNK_UNITS code units of input (more rows go in further calls), so a
// dataset of any size costs a bounded amount of WASM memory; one item (an answer, or a completion with its gold)
// may be up to MAX_ITEM_UNITS on its own, which keeps every buffer well under AssemblyScript's 1 GiB block limit
// (input 2 bytes per unit, split output at most 3 bytes per unit). Larger items get "input too large".
export const CHUNK_UNITS = 1 << 22;
export const MAX_ITEM_UNITS = 1 << 27;
// After a call that left WASM memory above this, the instance is replaced by a fresh one (linear memory can
// only grow, so this is the one way to give a large input's memory back to the JS heap).
const RELEASE_BYTES = 64 << 20;

/** The error text for an item over MAX_ITEM_UNITS (sizes in bytes as the UTF-16 copied into WASM). */
export function tooLargeMessage(units: number): string {
  return `input too large (${units * 2} bytes, limit ${MAX_ITEM_UNITS * 2})`;
}

const imports = {
  env: {
    abort(_msg: number, _file: number, line: number, col: number): never {
      throw new Error(`latentlm text wasm abort at ${line}:${col}`);
    },
  },
};

/** Compiles and instantiates the text module asynchronously (needed once on a browser main thread). */
export function initTextWasm(): Promise<void> {
  if (wasm) return Promise.resolve();
  pending ??= WebAssembly.instantiate(base64ToBytes(wasmB64) as BufferSource, imports).then(({ module, instance }) => {
    compiled ??= module;
    return (wasm ??= instance.exports as unknown as TextExports);
  });
  return pending.then(() => undefined);
}

function mod(): TextExports {
  if (!wasm) {
    compiled ??= new WebAssembly.Module(base64ToBytes(wasmB64) as BufferSource);
    wasm = new WebAssembly.Instance(compiled, imports).exports as unknown as TextExports;
  }
  return wasm;
}

/** After a batch: hands large buffers back, and drops an instance whose memory a large input has grown. */
function release(w: TextExports): void {
  w.trimBuffers();
  if (w.memory.buffer.byteLength <= RELEASE_BYTES || !compiled) return;
  try {
    wasm = new WebAssembly.Instance(compiled, imports).exports as unknown as TextExports;
  } catch {
    // A browser main thread may refuse synchronous instantiation; the trimmed buffers are reused instead.
  }
}

/** Current WASM memory of the text module in bytes (0 before first use); for memory checks in tests and fuzzing. */
export function textWasmMemoryBytes(): number {
  return wasm ? wasm.memory.buffer.byteLength : 0;
}

/**
 * Cuts items 0..n-1 into runs of consecutive indices whose total size stays within chunkUnits (a run holds at
 * least one item); items over maxItem go to `tooLarge` and into no run.
 */
export function planChunks(
  sizes: readonly number[],
  chunkUnits = CHUNK_UNITS,
  maxItem = MAX_ITEM_UNITS,
): { runs: number[][]; tooLarge: number[] } {
  const runs: number[][] = [];
  const tooLarge: number[] = [];
  let run: number[] = [];
  let total = 0;
  for (let i = 0; i < sizes.length; i++) {
    const u = sizes[i];
    if (u > maxItem) {
      tooLarge.push(i);
      continue;
    }
    if (run.length && total + u > chunkUnits) {
      runs.push(run);
      run = [];
      total = 0;
    }
    run.push(i);
    total += u;
  }
  if (run.length) runs.push(run);
  return { runs, tooLarge };
}

export interface SplitOffsets {
  /** 0 = ok, 1 = no `####` line, 2 = empty final answer, 3 = text after the final line. */
  status: number;
  stepsEnd: number;
  finalStart: number;
  finalEnd: number;
  /** (open, sep, close) per annotation: index of `<<`, of the last '=' in the body (-1 if none), of `>>`. */
  ann: Int32Array;
}

/** Status of an item over MAX_ITEM_UNITS (never sent to WASM); tooLargeMessage gives the text. */
export const STATUS_TOO_LARGE = 4;

/** Scans a batch of GSM8K answers, CHUNK_UNITS of text per WASM call. */
export function splitOffsets(texts: readonly string[]): SplitOffsets[] {
  const res: SplitOffsets[] = new Array(texts.length);
  const { runs, tooLarge } = planChunks(texts.map((t) => t.length));
  for (const i of tooLarge) res[i] = { status: STATUS_TOO_LARGE, stepsEnd: 0, finalStart: 0, finalEnd: 0, ann: new Int32Array(0) };
  for (const run of runs) splitRun(texts, run, res);
  return res;
}

function splitRun(texts: readonly string[], run: number[], res: SplitOffsets[]): void {
  const w = mod();
  let total = 0;
  for (const r of run) total += texts[r].length;
  const n = run.length;
  // Views are taken after every allocation of this call: growing memory detaches older views.
  const inPtr = w.ensureInput(total);
  const tabPtr = w.ensureTable(n * 2);
  const u16 = new Uint16Array(w.memory.buffer, inPtr, total);
  const tab = new Int32Array(w.memory.buffer, tabPtr, n * 2);
  let off = 0;
  for (let k = 0; k < n; k++) {
    const t = texts[run[k]];
    for (let i = 0; i < t.length; i++) u16[off + i] = t.charCodeAt(i);
    tab[2 * k] = off;
    tab[2 * k + 1] = t.length;
    off += t.length;
  }
  const nInts = w.splitRows(n);
  const out = new Int32Array(w.memory.buffer, w.outputPtr(), nInts);
  let p = 0;
  for (let k = 0; k < n; k++) {
    const a = out[p + 4];
    res[run[k]] = {
      status: out[p],
      stepsEnd: out[p + 1],
      finalStart: out[p + 2],
      finalEnd: out[p + 3],
      ann: out.slice(p + 5, p + 5 + 3 * a),
    };
    p += 5 + 3 * a;
  }
  release(w);
}

export interface RawReward {
  /** 1 | 0, or -1 when the gold answer is not a number. */
  reward: number;
  format: number;
  extracted: string;
}

/** Scores a batch, CHUNK_UNITS of text per WASM call; throws naming the item if one is over MAX_ITEM_UNITS. */
export function rewardRaw(completions: readonly string[], golds: readonly string[], strict: boolean): RawReward[] {
  const res: RawReward[] = new Array(completions.length);
  const sizes = completions.map((c, i) => c.length + golds[i].length);
  const { runs, tooLarge } = planChunks(sizes);
  if (tooLarge.length) throw new Error(`reward: item ${tooLarge[0]} (completion + gold): ${tooLargeMessage(sizes[tooLarge[0]])}`);
  for (const run of runs) rewardRun(completions, golds, strict, run, res);
  return res;
}

function rewardRun(completions: readonly string[], golds: readonly string[], strict: boolean, run: number[], res: RawReward[]): void {
  const w = mod();
  const n = run.length;
  let total = 0;
  for (const r of run) total += completions[r].length + golds[r].length;
  const inPtr = w.ensureInput(total);
  const tabPtr = w.ensureTable(n * 4);
  const u16 = new Uint16Array(w.memory.buffer, inPtr, total);
  const tab = new Int32Array(w.memory.buffer, tabPtr, n * 4);
  let off = 0;
  const put = (s: string) => {
    for (let i = 0; i < s.length; i++) u16[off + i] = s.charCodeAt(i);
    off += s.length;
  };
  for (let k = 0; k < n; k++) {
    const r = run[k];
    tab[4 * k] = off;
    tab[4 * k + 1] = completions[r].length;
    put(completions[r]);
    tab[4 * k + 2] = off;
    tab[4 * k + 3] = golds[r].length;
    put(golds[r]);
  }
  w.rewardRows(n, total, strict ? 1 : 0);
  const out = new Int32Array(w.memory.buffer, w.outputPtr(), n * 4);
  const ascii = new Uint8Array(w.memory.buffer, w.asciiBufPtr());
  const dec = new TextDecoder();
  for (let k = 0; k < n; k++) {
    const a = out[4 * k + 2];
    const len = out[4 * k + 3];
    res[run[k]] = { reward: out[4 * k], format: out[4 * k + 1], extracted: len ? dec.decode(ascii.subarray(a, a + len)) : '' };
  }
  release(w);
}

/** The instance, for entry points whose JS side lives in their own file (annotation expansion: src/data/expand.ts). */
export function textWasmExports<T>(): TextExports & T {
  return mod() as TextExports & T;
}
