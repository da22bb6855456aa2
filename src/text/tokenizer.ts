// Qwen2 byte-level BPE tokenizer: JS facade over assembly/tokenizer.ts.
//
// What runs where:
//  - WASM: added-token matching, the Qwen2 split regex (hand-written scanner with Oniguruma-equivalent Unicode
//    classes), byte-level BPE by merge rank with a word cache, and id -> bytes for decoding.
//  - JS: NFC normalisation of non-ASCII text via String.prototype.normalize, with HF's older Unicode data for
//    the few characters where that differs (src/text/nfc.ts; ASCII text is already NFC and skips it), UTF-8
//    conversion with TextEncoder.encodeInto straight into WASM memory, and UTF-8 -> string with a TextDecoder
//    that replaces invalid sequences by U+FFFD exactly like Rust's from_utf8_lossy (both follow the WHATWG
//    "maximal subpart" rule).
// HF normalises the text between added tokens, not across them (so "<|im_end|>" followed by U+0338 keeps its
// ">"); normalize() below splits on added tokens first for the same reason.
import wasmB64 from '../generated/tokenizer.wasm.js';
import { QWEN2_ADDED_TOKENS, QWEN2_VOCAB_B64 } from '../generated/qwen2-vocab.js';
import { base64ToBytes, instantiateEmbedded } from '../io/wasm-embed.js';
import { joinSource, readText, sourceExists, type Source } from '../io/source.js';
import { nextCut } from './tokenizer-cuts.js';
import { nfcLikeHf } from './nfc.js';

export interface AddedToken {
  id: number;
  content: string;
  /** Special tokens can be disabled per call with { allowSpecial: false }; non-special added tokens always match. */
  special: boolean;
}

export interface EncodeOptions {
  /** Match special tokens such as <|im_start|> in the text (default true). Use false for untrusted input. */
  allowSpecial?: boolean;
}

export type TokenizerSource =
  | undefined
  | Source
  | { tokenizerJson: string | Record<string, unknown> }
  | { vocab: string | Record<string, number>; merges: string | (string | [string, string])[]; addedTokens?: AddedToken[] };

interface TokExports {
  memory: WebAssembly.Memory;
  inputBuffer(n: number): number;
  outputPtr(): number;
  decodedPtr(): number;
  allocBlob(n: number): number;
  loadModel(ptr: number, len: number): number;
  loadErrorIndex(): number;
  addToken(mLen: number, dLen: number, id: number, special: number): void;
  setOptions(maxDigits: number, ignoreMerges: number): void;
  encode(len: number, allowSpecial: number): number;
  decode(n: number): number;
  tokenId(len: number): number;
  tokenPtr(id: number): number;
  tokenLen(id: number): number;
  vocabSize(): number;
  cacheClear(): void;
  trimBuffers(): void;
}

// The split regexes the WASM scanner implements (Qwen2; Llama-3 differs only in \p{N}{1,3}).
const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_PATTERN = QWEN2_PATTERN.replace('|\\p{N}|', '|\\p{N}{1,3}|');

interface Config {
  nfc: boolean;
  maxDigits: number;
  ignoreMerges: boolean;
}
const QWEN2_CONFIG: Config = { nfc: true, maxDigits: 1, ignoreMerges: false };

// Size limits of one WASM encode call. A text longer than ENCODE_PART_UNITS is encoded in parts cut where no
// piece can span (tokenizer-cuts.ts), so WASM memory stays bounded whatever the text's length. A part with no cut
// in it (one huge word) is encoded whole up to MAX_PART_BYTES of UTF-8: BPE of one piece needs 36 bytes of
// scratch per byte, and its heap keys must fit one allocator block (under 1 GiB).
const ENCODE_PART_UNITS = 1 << 22;
export const MAX_PART_BYTES = 1 << 24;
// After a call whose input exceeded this, the WASM side's large buffers are freed (trimBuffers).
const TRIM_BYTES = 1 << 20;
const REBUILD_BYTES = 64 << 20;
// decode() takes at most this many ids per WASM call.
const DECODE_PART_IDS = 1 << 22;
const MAX_TOKEN_CHARS = 1 << 16;

let compiledTokenizer: WebAssembly.Module | null = null;
/** The tokenizer module, compiled once (synchronously) for rebuilding instances. */
function tokenizerModule(): WebAssembly.Module {
  return (compiledTokenizer ??= new WebAssembly.Module(base64ToBytes(wasmB64) as BufferSource));
}
function wasmAbort(_msg: number, _file: number, line: number, col: number): never {
  throw new Error(`latentlm wasm abort at ${line}:${col}`);
}

// ---------------------------------------------------------------------------------------------------------------
// ByteLevel alphabet (GPT-2's bytes_to_unicode): printable bytes stand for themselves, the others for U+0100 + n.

const BYTE_TO_CHAR: string[] = [];
const CHAR_TO_BYTE = new Map<number, number>();
{
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const cp = printable ? b : 256 + n++;
    BYTE_TO_CHAR[b] = String.fromCodePoint(cp);
    CHAR_TO_BYTE.set(cp, b);
  }
}

/** Bytes a ByteLevel token string stands for, or null when a char is outside the alphabet. */
function byteLevelToBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (let i = 0; i < token.length; i++) {
    const b = CHAR_TO_BYTE.get(token.charCodeAt(i));
    if (b === undefined) return null;
    out[n++] = b;
  }
  return out.subarray(0, n);
}

const utf8 = new TextEncoder();

// ---------------------------------------------------------------------------------------------------------------
// Blob writer (format: scripts/gen/vocab.mjs; explicit merge pairs)

class BlobWriter {
  buf = new Uint8Array(1 << 20);
  n = 0;
  private ensure(k: number) {
    if (this.n + k <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  u32(v: number) {
    this.ensure(4);
    new DataView(this.buf.buffer).setUint32(this.n, v, true);
    this.n += 4;
  }
  varint(v: number) {
    this.ensure(5);
    while (v >= 0x80) {
      this.buf[this.n++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.n++] = v;
  }
  bytes(b: Uint8Array) {
    this.ensure(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
}

function buildBlob(vocab: Record<string, number>, merges: [string, string][], what: string): Uint8Array {
  let nIds = 0;
  for (const [tok, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0 || id > 0x3ffffff)
      throw new Error(`${what}: vocab entry ${JSON.stringify(tok)} has a bad id ${id}`);
    nIds = Math.max(nIds, id + 1);
  }
  const tokens: (Uint8Array | null)[] = new Array(nIds).fill(null);
  for (const [tok, id] of Object.entries(vocab)) {
    const b = byteLevelToBytes(tok);
    if (!b)
      throw new Error(`${what}: vocab token ${JSON.stringify(tok)} (id ${id}) is not ByteLevel-encoded; only byte-level BPE is supported`);
    tokens[id] = b;
  }
  const w = new BlobWriter();
  w.u32(0x4b544c4c);
  for (const v of [1, nIds, merges.length, 0, 0]) w.varint(v);
  for (const t of tokens) w.varint(t ? t.length : 0);
  for (const t of tokens) if (t) w.bytes(t);
  merges.forEach(([a, b], r) => {
    const ia = vocab[a];
    const ib = vocab[b];
    if (ia === undefined || ib === undefined) throw new Error(`${what}: merge ${r} "${a} ${b}" names a token missing from the vocab`);
    w.varint(ia);
    w.varint(ib);
  });
  return w.buf.subarray(0, w.n);
}

/**
 * base64 -> bytes for the 1.7 MB embedded vocabulary: the runtime's native decoder where there is one
 * (Uint8Array.fromBase64 in new browsers, Buffer in Node and Bun; ~1 ms), else atob plus a copy loop.
 * (Decoding inside WASM was tried: a single long call runs in V8's baseline tier and was slower than this.)
 */
function base64ToBytesFast(b64: string): Uint8Array {
  const U8 = Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array };
  if (typeof U8.fromBase64 === 'function') return U8.fromBase64(b64);
  const B = (globalThis as { Buffer?: { from(s: string, enc: string): Uint8Array } }).Buffer;
  if (B) return B.from(b64, 'base64');
  return base64ToBytes(b64);
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing HF files

function parseMergesTxt(text: string, what: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    const parts = line.split(' ');
    if (parts.length !== 2) throw new Error(`${what}: line ${i + 1} is not "left right": ${JSON.stringify(line.slice(0, 80))}`);
    out.push([parts[0], parts[1]]);
  });
  return out;
}

function normalizeMerges(merges: unknown[], what: string): [string, string][] {
  return merges.map((m, i) => {
    if (Array.isArray(m) && m.length === 2) return [String(m[0]), String(m[1])];
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length === 2) return [parts[0], parts[1]];
    }
    throw new Error(`${what}: merges[${i}] is neither "a b" nor ["a", "b"]: ${JSON.stringify(m)?.slice(0, 80)}`);
  });
}

// biome-ignore lint/suspicious/noExplicitAny: untyped tokenizer.json, every field is checked where it is read
function configFromTokenizerJson(tj: Record<string, any>, what: string): Config {
  const cfg: Config = { nfc: false, maxDigits: 1, ignoreMerges: !!tj.model?.ignore_merges };
  const norm = tj.normalizer;
  const norms = norm == null ? [] : norm.type === 'Sequence' ? norm.normalizers : [norm];
  for (const n of norms) {
    if (n?.type === 'NFC') cfg.nfc = true;
    else throw new Error(`${what}: normalizer ${JSON.stringify(n?.type)} is not supported (only NFC or none)`);
  }
  const pre = tj.pre_tokenizer;
  // biome-ignore lint/suspicious/noExplicitAny: untyped tokenizer.json, every field is checked where it is read
  const pres: any[] = pre == null ? [] : pre.type === 'Sequence' ? pre.pretokenizers : [pre];
  const split = pres.find((p) => p?.type === 'Split');
  const pattern = split?.pattern?.Regex;
  if (!split || (pattern !== QWEN2_PATTERN && pattern !== LLAMA3_PATTERN) || split.behavior !== 'Isolated' || split.invert) {
    throw new Error(`${what}: pre_tokenizer is not the Qwen2/Llama-3 Split regex + ByteLevel; this tokenizer implements only that family`);
  }
  const bl = pres.find((p) => p?.type === 'ByteLevel');
  if (!bl || bl.use_regex || bl.add_prefix_space || pres.length !== 2) {
    throw new Error(`${what}: expected pre_tokenizer Sequence [Split, ByteLevel(use_regex=false, add_prefix_space=false)]`);
  }
  cfg.maxDigits = pattern === LLAMA3_PATTERN ? 3 : 1;
  if (tj.model?.type !== 'BPE') throw new Error(`${what}: model type ${JSON.stringify(tj.model?.type)} is not BPE`);
  return cfg;
}

interface Spec {
  blob: Uint8Array | string; // bytes, or base64 of the embedded default
  added: AddedToken[];
  config: Config;
}

function specFromTokenizerJson(tjIn: string | Record<string, unknown>, what: string): Spec {
  // biome-ignore lint/suspicious/noExplicitAny: untyped tokenizer.json, every field is checked where it is read
  let tj: Record<string, any>;
  try {
    tj = typeof tjIn === 'string' ? JSON.parse(tjIn) : tjIn;
  } catch (e) {
    throw new Error(`${what}: invalid JSON: ${(e as Error).message}`);
  }
  const config = configFromTokenizerJson(tj, what);
  const merges = normalizeMerges(tj.model.merges ?? [], `${what} model.merges`);
  // biome-ignore lint/suspicious/noExplicitAny: untyped tokenizer.json, every field is checked where it is read
  const added: AddedToken[] = (tj.added_tokens ?? []).map((t: any) => ({ id: t.id, content: t.content, special: !!t.special }));
  return { blob: buildBlob(tj.model.vocab, merges, what), added, config };
}

function specFromVocabMerges(
  vocabIn: string | Record<string, number>,
  mergesIn: string | (string | [string, string])[],
  added: AddedToken[],
  what: string,
): Spec {
  let vocab: Record<string, number>;
  try {
    vocab = typeof vocabIn === 'string' ? JSON.parse(vocabIn) : vocabIn;
  } catch (e) {
    throw new Error(`${what} vocab.json: invalid JSON: ${(e as Error).message}`);
  }
  const merges =
    typeof mergesIn === 'string' ? parseMergesTxt(mergesIn, `${what} merges.txt`) : normalizeMerges(mergesIn, `${what} merges`);
  return { blob: buildBlob(vocab, merges, what), added, config: QWEN2_CONFIG };
}

async function specFromSource(source: Source): Promise<Spec> {
  const s = String(source);
  if (/\.json$/i.test(s.split(/[?#]/)[0])) return specFromTokenizerJson(await readText(source), s);
  const tjPath = joinSource(source, 'tokenizer.json');
  if (await sourceExists(tjPath)) return specFromTokenizerJson(await readText(tjPath), tjPath);
  const vocabPath = joinSource(source, 'vocab.json');
  const mergesPath = joinSource(source, 'merges.txt');
  if (!(await sourceExists(vocabPath)) || !(await sourceExists(mergesPath))) {
    throw new Error(`${s}: no tokenizer.json, nor vocab.json + merges.txt`);
  }
  const addedPath = joinSource(source, 'added_tokens.json');
  let added: AddedToken[] = [];
  if (await sourceExists(addedPath)) {
    // added_tokens.json maps content -> id; the Qwen2 family marks all of them special.
    const obj = JSON.parse(await readText(addedPath)) as Record<string, number>;
    added = Object.entries(obj).map(([content, id]) => ({ id, content, special: true }));
  }
  return specFromVocabMerges(await readText(vocabPath), await readText(mergesPath), added, s);
}

const LOAD_ERRORS: Record<number, string> = {
  [-1]: 'bad magic or version',
  [-2]: 'truncated or malformed data',
  [-3]: 'a merge names an unknown token',
  [-4]: 'a merge produces a token missing from the vocab',
};

// ---------------------------------------------------------------------------------------------------------------

export class Tokenizer {
  private ex: TokExports;
  /** What the WASM side was built from, kept to rebuild it after a large input (see release()). */
  private readonly blob: Uint8Array;
  /** WASM memory right after loading; the instance is rebuilt when a large input leaves it far above this. */
  private readonly baseBytes: number;
  private readonly added: AddedToken[];
  private readonly config: Config;
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  /** Contents of the added tokens that match with / without allowSpecial, longest first. */
  private readonly matchAll: string[];
  private readonly matchPlain: string[];
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  private inView: Uint8Array = new Uint8Array(0);
  private mem32: Uint32Array = new Uint32Array(0);
  private readonly nIds: number;
  /** Largest id + 1 over the vocabulary and the added tokens (HF's get_vocab_size(true)). */
  readonly vocabSize: number;

  private constructor(ex: TokExports, blob: Uint8Array, added: AddedToken[], config: Config) {
    this.ex = ex;
    this.blob = blob;
    this.baseBytes = ex.memory.buffer.byteLength;
    this.added = added;
    this.config = config;
    this.nIds = ex.vocabSize();
    let maxId = this.nIds;
    for (const t of added) {
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
      maxId = Math.max(maxId, t.id + 1);
    }
    this.vocabSize = maxId;
    const byLen = [...added].filter((t) => t.content.length > 0).sort((a, b) => b.content.length - a.content.length);
    this.matchAll = byLen.map((t) => t.content);
    this.matchPlain = byLen.filter((t) => !t.special).map((t) => t.content);
  }

  /**
   * Loads a tokenizer. source: undefined = the embedded Qwen2 tokenizer (no I/O); a path or URL to a
   * tokenizer.json, or to a directory with tokenizer.json or vocab.json + merges.txt (+ added_tokens.json);
   * or in-memory { tokenizerJson } / { vocab, merges, addedTokens? }.
   */
  static async load(source?: TokenizerSource): Promise<Tokenizer> {
    let spec: Spec;
    if (source === undefined) spec = { blob: QWEN2_VOCAB_B64, added: QWEN2_ADDED_TOKENS, config: QWEN2_CONFIG };
    else if (typeof source === 'string' || source instanceof URL) spec = await specFromSource(source);
    else if ('tokenizerJson' in source) spec = specFromTokenizerJson(source.tokenizerJson, 'tokenizerJson');
    else if ('vocab' in source && 'merges' in source)
      spec = specFromVocabMerges(source.vocab, source.merges, source.addedTokens ?? [], '{vocab, merges}');
    else throw new Error('Tokenizer.load: source must be a path/URL, { tokenizerJson } or { vocab, merges }');
    return Tokenizer.fromSpec(spec);
  }

  private static async fromSpec(spec: Spec): Promise<Tokenizer> {
    const ex = await instantiateEmbedded<TokExports & WebAssembly.Exports>(wasmB64);
    const blob = typeof spec.blob === 'string' ? base64ToBytesFast(spec.blob) : spec.blob;
    Tokenizer.loadInto(ex, blob, spec.added, spec.config);
    return new Tokenizer(ex, blob, spec.added, spec.config);
  }

  /** Loads the vocabulary, options and added tokens into a fresh instance. */
  private static loadInto(ex: TokExports, blob: Uint8Array, added: readonly AddedToken[], config: Config): void {
    const ptr = ex.allocBlob(blob.length);
    new Uint8Array(ex.memory.buffer, ptr, blob.length).set(blob);
    const rc = ex.loadModel(ptr, blob.length);
    if (rc !== 0) {
      const at = rc <= -3 ? ` (merge ${ex.loadErrorIndex()})` : '';
      throw new Error(`Tokenizer.load: ${LOAD_ERRORS[rc] ?? `error ${rc}`}${at}`);
    }
    ex.setOptions(config.maxDigits, config.ignoreMerges ? 1 : 0);
    for (const t of added) {
      const m = utf8.encode(t.content);
      // HF decodes an added token through the ByteLevel decoder: its chars are mapped back to bytes when all of
      // them are in the byte alphabet, else its UTF-8 is used as is.
      const d = byteLevelToBytes(t.content) ?? m;
      const buf = new Uint8Array(ex.memory.buffer, ex.inputBuffer(m.length + d.length), m.length + d.length);
      buf.set(m, 0);
      buf.set(d, m.length);
      ex.addToken(m.length, d.length, t.id, t.special ? 1 : 0);
    }
  }

  /** A view of the WASM input buffer with room for n bytes (re-made only when it grows or memory moves). */
  private input(n: number): Uint8Array {
    const mem = this.ex.memory.buffer;
    if (this.inView.byteLength < n || this.inView.buffer !== mem) {
      const cap = Math.max(n, this.inView.byteLength * 2, 1 << 16);
      const ptr = this.ex.inputBuffer(cap);
      this.inView = new Uint8Array(this.ex.memory.buffer, ptr, cap);
    }
    return this.inView;
  }

  /** Writes text as UTF-8 into the input buffer; returns the byte count. */
  private writeText(text: string): number {
    const view = this.input(text.length * 3);
    return utf8.encodeInto(text, view).written;
  }

  /** NFC of the text between added tokens (HF normalises only the pieces between them). */
  private normalize(text: string, allowSpecial: boolean): string {
    const toks = allowSpecial ? this.matchAll : this.matchPlain;
    if (!toks.some((t) => text.includes(t))) return nfcLikeHf(text);
    let out = '';
    let start = 0;
    // Next occurrence of each token at or after `start`, searched again only once passed: re-searching every
    // token from every match made a long text with many added tokens quadratic.
    const next = toks.map((t) => text.indexOf(t));
    while (start <= text.length) {
      let best = -1;
      let bestTok = '';
      for (let k = 0; k < toks.length; k++) {
        const t = toks[k];
        if (next[k] >= 0 && next[k] < start) next[k] = text.indexOf(t, start);
        const i = next[k];
        if (i >= 0 && (best < 0 || i < best)) {
          best = i;
          bestTok = t; // toks are longest first, so the first found at the smallest index is the longest there
        }
      }
      if (best < 0) break;
      out += nfcLikeHf(text.slice(start, best)) + bestTok;
      start = best + bestTok.length;
    }
    return out + nfcLikeHf(text.slice(start));
  }

  /** Token ids of text (no BOS/EOS are added; Qwen2 adds none). */
  encode(text: string, opts?: EncodeOptions): Uint32Array {
    const allowSpecial = opts?.allowSpecial ?? true;
    if (text.length > ENCODE_PART_UNITS) return this.encodeLong(text, allowSpecial);
    let n = this.writeText(text);
    if (n !== text.length && this.config.nfc) {
      // Not pure ASCII (UTF-8 is longer than UTF-16): normalise, and re-write only if that changed anything.
      const norm = this.normalize(text, allowSpecial);
      if (norm !== text) n = this.writeText(norm);
    }
    return this.encodeWritten(n, allowSpecial);
  }

  /** Runs the WASM encoder on the n bytes at the input buffer and copies the ids out. */
  private encodeWritten(n: number, allowSpecial: boolean): Uint32Array {
    if (n > MAX_PART_BYTES) {
      this.trim();
      throw new Error(`Tokenizer.encode: input too large (${n} bytes of UTF-8 with no place to cut it, limit ${MAX_PART_BYTES})`);
    }
    const count = this.ex.encode(n, allowSpecial ? 1 : 0);
    if (count < 0) throw new Error('Tokenizer.encode: no vocabulary loaded');
    const mem = this.ex.memory.buffer;
    if (this.mem32.buffer !== mem) this.mem32 = new Uint32Array(mem);
    const at = this.ex.outputPtr() >>> 2;
    const ids = this.mem32.slice(at, at + count);
    if (n > TRIM_BYTES) this.trim();
    return ids;
  }

  /** A long text in parts (see ENCODE_PART_UNITS); the ids are those of the whole text. */
  private encodeLong(text: string, allowSpecial: boolean): Uint32Array {
    const norm = this.config.nfc ? this.normalize(text, allowSpecial) : text;
    const tokens = allowSpecial ? this.matchAll : this.matchPlain;
    const parts: Uint32Array[] = [];
    let total = 0;
    for (let start = 0; start < norm.length; ) {
      const end = nextCut(norm, start, ENCODE_PART_UNITS, this.config.maxDigits, tokens);
      // UTF-8 takes at least one byte per code unit: reject before copying a part that cannot fit.
      if (end - start > MAX_PART_BYTES)
        throw new Error(
          `Tokenizer.encode: input too large (${utf8.encode(norm.slice(start, end)).length} bytes of UTF-8 with no place to cut it, limit ${MAX_PART_BYTES})`,
        );
      const ids = this.encodeWritten(this.writeText(norm.slice(start, end)), allowSpecial);
      parts.push(ids);
      total += ids.length;
      start = end;
    }
    const out = new Uint32Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Frees the WASM side's large buffers (a huge input's memory goes back to its allocator for later calls). */
  private trim(): void {
    this.ex.trimBuffers();
    this.inView = new Uint8Array(0);
    // WASM memory never shrinks: after an input that grew it by more than REBUILD_BYTES, a fresh instance with the
    // same vocabulary (tens of ms to load) lets the JS heap take the old memory back.
    if (this.ex.memory.buffer.byteLength - this.baseBytes <= REBUILD_BYTES) return;
    try {
      const ex = new WebAssembly.Instance(tokenizerModule(), { env: { abort: wasmAbort } }).exports as unknown as TokExports;
      Tokenizer.loadInto(ex, this.blob, this.added, this.config);
      this.ex = ex;
      this.mem32 = new Uint32Array(0);
    } catch {
      // A browser main thread may refuse synchronous compilation; the freed buffers are reused instead.
    }
  }

  encodeBatch(texts: string[], opts?: EncodeOptions): Uint32Array[] {
    return texts.map((t) => this.encode(t, opts));
  }

  /** Text of ids; unknown ids are skipped and invalid UTF-8 becomes U+FFFD, as in HF (skip_special_tokens = false). */
  decode(ids: ArrayLike<number>): string {
    if (ids.length <= DECODE_PART_IDS) return this.decodePart(ids, 0, ids.length, this.decoder, false);
    // A long id list in parts (bounded WASM memory); the streaming decoder carries a UTF-8 sequence whose bytes
    // fall in two parts over, so the text is exactly that of one call.
    const dec = new TextDecoder('utf-8', { ignoreBOM: true });
    let out = '';
    for (let s = 0; s < ids.length; s += DECODE_PART_IDS)
      out += this.decodePart(ids, s, Math.min(ids.length, s + DECODE_PART_IDS), dec, true);
    return out + dec.decode();
  }

  private decodePart(ids: ArrayLike<number>, from: number, to: number, dec: TextDecoder, stream: boolean): string {
    const n = to - from;
    this.input(n * 4);
    const mem = this.ex.memory.buffer;
    if (this.mem32.buffer !== mem) this.mem32 = new Uint32Array(mem);
    const at = this.inView.byteOffset >>> 2;
    for (let i = 0; i < n; i++) {
      const id = ids[from + i];
      this.mem32[at + i] = Number.isInteger(id) && id >= 0 && id <= 0xffffffff ? id : 0xffffffff;
    }
    const len = this.ex.decode(n);
    const text = dec.decode(new Uint8Array(this.ex.memory.buffer, this.ex.decodedPtr(), len), { stream });
    if (len > TRIM_BYTES || n * 4 > TRIM_BYTES) this.trim();
    return text;
  }

  /** Id of a token string in HF's form (ByteLevel chars, e.g. "Ġhello"), or of an added token's content. */
  tokenToId(token: string): number | undefined {
    const a = this.addedByContent.get(token);
    if (a) return a.id;
    // No token is anywhere near MAX_TOKEN_CHARS long; a longer string is no token, and is never copied to WASM.
    if (token.length > MAX_TOKEN_CHARS) return undefined;
    const b = byteLevelToBytes(token);
    if (!b || b.length === 0) return undefined;
    this.input(b.length).set(b);
    const id = this.ex.tokenId(b.length);
    return id < 0 ? undefined : id;
  }

  /** Token string of an id in HF's form (ByteLevel chars), or undefined. */
  idToToken(id: number): string | undefined {
    const a = this.addedById.get(id);
    if (a) return a.content;
    if (!Number.isInteger(id) || id < 0 || id >= this.nIds) return undefined;
    const len = this.ex.tokenLen(id);
    if (len <= 0) return undefined;
    const bytes = new Uint8Array(this.ex.memory.buffer, this.ex.tokenPtr(id), len);
    let s = '';
    for (let i = 0; i < len; i++) s += BYTE_TO_CHAR[bytes[i]];
    return s;
  }

  /** Bytes of WASM linear memory this tokenizer holds (for memory checks: it must not grow from call to call). */
  get wasmMemoryBytes(): number {
    return this.ex.memory.buffer.byteLength;
  }

  /** The added tokens (for Qwen2: <|endoftext|>, <|im_start|>, <|im_end|>). */
  get addedTokens(): readonly AddedToken[] {
    return this.added;
  }
}
