// The one structural description of a tokenizer. Modules that take "something that tokenizes" name the members they
// use with Pick<TokenizerShape, ...> (generation and GRPO need encode and decode, sequence building only encode, the
// restricted vocabulary the byte-level lookups), so a caller may pass the full Qwen2 Tokenizer, a model-space
// ModelTokenizer or a test's toy tokenizer, and the members keep one meaning everywhere.

export interface TokenizerShape {
  /** Token ids of the text (in the tokenizer's own id space). */
  encode(text: string): Uint32Array | Int32Array | number[];
  decode(ids: ArrayLike<number>): string;
  /** Byte-level vocabulary string of an id (every char of one stands for one byte and is itself a token). */
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** The text of one id, for display (diagnostics, the browser demo). */
  tokenText(id: number): string;
  /** The id of <|endoftext|>. */
  eosId: number;
  /** The id of a full Qwen2 token in this tokenizer's space, if it has it (a restricted vocabulary may not). */
  fromFull(id: number): number | undefined;
  vocabSize: number;
}

/** What text-in, text-out code needs: generation, GRPO, evaluation. */
export type TextCodec = Pick<TokenizerShape, 'encode' | 'decode'>;
