// A restricted vocabulary for small models: the model's ids 0..n-1 map to a subset of the full Qwen2 ids, so a
// tiny model needs no 151,936-row embedding, yet text still goes through the real Qwen2 tokenizer and round-trips.
// A Qwen2 token outside the subset is spelled with its byte-level tokens (every one of the 256 byte tokens is kept),
// so any text can be encoded; decoding maps back to Qwen2 ids and uses the real decoder.

import type { TokenizerShape } from './tokenizer-shape.js';

/** The full Qwen2 tokenizer as a restricted vocabulary sees it: text both ways and the byte-level vocabulary. */
export type FullTokenizer = Pick<TokenizerShape, 'encode' | 'decode' | 'idToToken' | 'tokenToId'>;

/** The ids of the single-byte tokens that spell token `id` (byte-level BPE: one vocabulary char per byte). */
export function byteTokens(tok: FullTokenizer, id: number): number[] | undefined {
  const s = tok.idToToken(id);
  if (s === undefined) return undefined;
  const out: number[] = [];
  for (const ch of s) {
    const b = tok.tokenToId(ch);
    if (b === undefined) return undefined;
    out.push(b);
  }
  return out;
}

/** The 256 single-byte tokens of a byte-level vocabulary (kept in every restricted vocabulary). */
export function allByteTokens(tok: FullTokenizer): number[] {
  const out: number[] = [];
  // GPT-2 byte-to-unicode: printable Latin-1 map to themselves, the rest to U+0100 + n in order
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const ch = printable ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
    const id = tok.tokenToId(ch);
    if (id !== undefined) out.push(id);
  }
  return out;
}

export class VocabMap {
  readonly toSmall: Map<number, number>;
  constructor(readonly toFull: Int32Array) {
    this.toSmall = new Map(Array.from(toFull, (f, s) => [f, s]));
    if (this.toSmall.size !== toFull.length) throw new Error('vocab map: duplicate full ids');
  }

  get size() {
    return this.toFull.length;
  }

  /** Builds a map from the tokens of a corpus plus the given always-kept ids (bytes, specials). */
  static fromCorpus(tok: FullTokenizer, texts: Iterable<string>, keep: Iterable<number> = []): VocabMap {
    const ids = new Set<number>(keep);
    for (const t of texts) for (const id of tok.encode(t)) ids.add(Number(id));
    return new VocabMap(Int32Array.from([...ids].sort((a, b) => a - b)));
  }

  toJSON() {
    return { type: 'latentlm-vocab-map', version: 1, full_ids: Array.from(this.toFull) };
  }

  static fromJSON(j: { full_ids: number[] }, file = 'vocab-map.json'): VocabMap {
    if (!j || !Array.isArray(j.full_ids)) throw new Error(`${file}: expected {"full_ids": [...]}`);
    const bad = j.full_ids.findIndex((id) => !Number.isSafeInteger(id) || id < 0);
    if (bad >= 0)
      throw new Error(`${file}: full_ids[${bad}] is ${JSON.stringify(j.full_ids[bad])}, expected a token id (a non-negative integer)`);
    return new VocabMap(Int32Array.from(j.full_ids));
  }
}

/** A tokenizer over a restricted vocabulary: encode/decode in the model's small ids. */
export class RestrictedTokenizer {
  constructor(
    readonly full: FullTokenizer,
    readonly map: VocabMap,
  ) {}

  get vocabSize() {
    return this.map.size;
  }

  encode(text: string): Int32Array {
    const out: number[] = [];
    for (const f of this.full.encode(text)) {
      const s = this.map.toSmall.get(Number(f));
      if (s !== undefined) out.push(s);
      else {
        const bytes = byteTokens(this.full, Number(f));
        if (!bytes) throw new Error(`token ${f} (${JSON.stringify(this.full.decode([Number(f)]))}) is outside this model's vocabulary`);
        for (const b of bytes) {
          const sb = this.map.toSmall.get(b);
          if (sb === undefined) throw new Error(`byte token ${b} is missing from the vocabulary map`);
          out.push(sb);
        }
      }
    }
    return Int32Array.from(out);
  }

  decode(ids: ArrayLike<number>): string {
    return this.full.decode(Array.from(ids, (s) => this.map.toFull[s] ?? 0));
  }

  /** Qwen2 id of a small id. */
  fullId(small: number): number {
    return this.map.toFull[small];
  }

  tokenText(small: number): string {
    return this.full.decode([this.map.toFull[small]]);
  }
}
