// JS side of assembly/text.ts: copies strings into WASM memory as UTF-16 code units (so every offset that
// comes back is a JS string index), runs one batch per call, and reads the results.
//
// The module is small (about 15 KiB), so it is compiled synchronously on first use: that works in Node, Deno,
// Bun and web workers. A browser main thread may refuse synchronous compilation of modules over 4 KiB;
// there, `await initTextWasm()` once before the synchronous APIs (loadGsm8k does it for you).
import wasmB64 from './generated/text.wasm.js';
import { base64ToBytes } from './wasm.js';

export interface TextExports {
  memory: WebAssembly.Memory;
  ensureInput(units: number): number;
  ensureTable(ints: number): number;
  outputPtr(): number;
  asciiBufPtr(): number;
  splitRows(n: number, totalUnits: number): number;
  rewardRows(n: number, totalUnits: number, strict: number): void;
}

let wasm: TextExports | null = null;
let pending: Promise<TextExports> | null = null;

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
  pending ??= WebAssembly.instantiate(base64ToBytes(wasmB64) as BufferSource, imports).then(({ instance }) => (wasm ??= instance.exports as unknown as TextExports));
  return pending.then(() => undefined);
}

function mod(): TextExports {
  if (!wasm) {
    const m = new WebAssembly.Module(base64ToBytes(wasmB64) as BufferSource);
    wasm = new WebAssembly.Instance(m, imports).exports as unknown as TextExports;
  }
  return wasm;
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

/** Scans a batch of GSM8K answers in one WASM call. */
export function splitOffsets(texts: readonly string[]): SplitOffsets[] {
  const w = mod();
  let total = 0;
  for (const t of texts) total += t.length;
  const n = texts.length;
  // Views are taken after every allocation of this call: growing memory detaches older views.
  const inPtr = w.ensureInput(total);
  const tabPtr = w.ensureTable(n * 2);
  const u16 = new Uint16Array(w.memory.buffer, inPtr, total);
  const tab = new Int32Array(w.memory.buffer, tabPtr, n * 2);
  let off = 0;
  for (let r = 0; r < n; r++) {
    const t = texts[r];
    for (let i = 0; i < t.length; i++) u16[off + i] = t.charCodeAt(i);
    tab[2 * r] = off;
    tab[2 * r + 1] = t.length;
    off += t.length;
  }
  const nInts = w.splitRows(n, total);
  const out = new Int32Array(w.memory.buffer, w.outputPtr(), nInts);
  const res: SplitOffsets[] = [];
  let p = 0;
  for (let r = 0; r < n; r++) {
    const k = out[p + 4];
    res.push({ status: out[p], stepsEnd: out[p + 1], finalStart: out[p + 2], finalEnd: out[p + 3], ann: out.slice(p + 5, p + 5 + 3 * k) });
    p += 5 + 3 * k;
  }
  return res;
}

export interface RawReward {
  /** 1 | 0, or -1 when the gold answer is not a number. */
  reward: number;
  format: number;
  extracted: string;
}

/** Scores a batch in one WASM call. */
export function rewardRaw(completions: readonly string[], golds: readonly string[], strict: boolean): RawReward[] {
  const w = mod();
  const n = completions.length;
  let total = 0;
  for (let r = 0; r < n; r++) total += completions[r].length + golds[r].length;
  const inPtr = w.ensureInput(total);
  const tabPtr = w.ensureTable(n * 4);
  const u16 = new Uint16Array(w.memory.buffer, inPtr, total);
  const tab = new Int32Array(w.memory.buffer, tabPtr, n * 4);
  let off = 0;
  const put = (s: string) => {
    for (let i = 0; i < s.length; i++) u16[off + i] = s.charCodeAt(i);
    off += s.length;
  };
  for (let r = 0; r < n; r++) {
    tab[4 * r] = off;
    tab[4 * r + 1] = completions[r].length;
    put(completions[r]);
    tab[4 * r + 2] = off;
    tab[4 * r + 3] = golds[r].length;
    put(golds[r]);
  }
  w.rewardRows(n, total, strict ? 1 : 0);
  const out = new Int32Array(w.memory.buffer, w.outputPtr(), n * 4);
  const ascii = new Uint8Array(w.memory.buffer, w.asciiBufPtr());
  const dec = new TextDecoder();
  const res: RawReward[] = [];
  for (let r = 0; r < n; r++) {
    const a = out[4 * r + 2];
    const len = out[4 * r + 3];
    res.push({ reward: out[4 * r], format: out[4 * r + 1], extracted: len ? dec.decode(ascii.subarray(a, a + len)) : '' });
  }
  return res;
}

/** The instance, for entry points whose JS side lives in their own file (annotation expansion: src/expand.ts). */
export function textWasmExports<T>(): TextExports & T {
  return mod() as TextExports & T;
}
