// Large inputs through the WASM text pipeline and tokenizer: batches past one call's budget are chunked with the
// same results, a single item over the limit gets "input too large (N bytes, limit M)" instead of a WASM abort,
// and memory a large input took is handed back (no growth from one large input to the next).
import { describe, expect, it } from 'vitest';
import { CHUNK_UNITS, MAX_ITEM_UNITS, planChunks, splitOffsets, textWasmMemoryBytes, tooLargeMessage } from '../src/text/text-wasm.js';
import { parseGsm8k, parseGsm8kBytes, splitAnswer } from '../src/data/gsm8k.js';
import { rewardBatch } from '../src/data/grade.js';
import { MAX_PART_BYTES, Tokenizer } from '../src/text/tokenizer.js';
import { nextCut } from '../src/text/tokenizer-cuts.js';
import { rustReference } from './_tokenizer-ref.js';

const ANSWER = 'Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72';

describe('text pipeline: chunked batches and limits', () => {
  it('planChunks keeps runs within the budget, in order, and sets aside items over the limit', () => {
    const { runs, tooLarge } = planChunks([3, 4, 1, 9, 2, 11, 5, 5, 0], 10, 10);
    expect(runs).toEqual([[0, 1, 2], [3], [4, 6], [7, 8]]);
    expect(tooLarge).toEqual([5]);
    expect(tooLargeMessage(MAX_ITEM_UNITS + 1)).toBe(`input too large (${(MAX_ITEM_UNITS + 1) * 2} bytes, limit ${MAX_ITEM_UNITS * 2})`);
  });

  it("a batch several times one call's budget gives the same offsets as one row at a time; memory stays bounded", () => {
    const rows: string[] = [];
    for (let i = 0; rows.length * ANSWER.length < 3 * CHUNK_UNITS; i++)
      rows.push(i % 97 === 0 ? 'no final line' : ANSWER.replace('72', String(i)));
    const all = splitOffsets(rows);
    expect(all).toHaveLength(rows.length);
    for (let i = 0; i < rows.length; i += 1009) expect(all[i]).toEqual(splitOffsets([rows[i]])[0]);
    expect(all[0].status).toBe(1);
    expect(all[1].status).toBe(0);
    // Input for one call is 2 bytes per unit of CHUNK_UNITS; the whole batch would be 6x that.
    expect(textWasmMemoryBytes()).toBeLessThan(8 * CHUNK_UNITS);
  });

  it('one answer with a million annotations (output grows as it goes, no worst-case reservation)', () => {
    const a = '<<1+1=2>>'.repeat(1 << 20) + '\n#### 2';
    const s = splitAnswer(a);
    expect(s.annotations).toHaveLength(1 << 20);
    expect(s.annotations[12345]).toEqual({ expr: '1+1', result: '2' });
    expect(s.final).toBe('2');
    const before = textWasmMemoryBytes();
    splitAnswer(a);
    expect(textWasmMemoryBytes()).toBeLessThanOrEqual(before);
    splitAnswer(ANSWER);
    // The large call's instance was replaced, so its memory went back to the JS heap.
    expect(textWasmMemoryBytes()).toBeLessThan(16 << 20);
  });

  it('GSM8K rows and reward batches far past one call work; parse errors keep their line numbers', () => {
    const line = JSON.stringify({ question: 'q', answer: ANSWER });
    const n = Math.ceil((2 * CHUNK_UNITS) / ANSWER.length);
    const text = Array.from({ length: n }, (_, i) => (i === n - 2 ? '{"question": "q", "answer": "x"}' : line)).join('\n');
    const ds = parseGsm8k(text, { onError: 'skip' });
    expect(ds.rows).toHaveLength(n - 1);
    expect(ds.errors).toEqual([{ line: n - 1, message: "answer has no '#### N' final line" }]);
    // Bytes parsed a line-aligned piece at a time (as loadGsm8k reads a file): same rows, errors, line numbers.
    const withOddLines = `\uFEFF${line}\r\n\n{"question": "é", "answer": "x <<1=1>>1\\n#### 1"}\nnot json\n${line}`;
    const bytes = new TextEncoder().encode(withOddLines);
    const whole = parseGsm8k(withOddLines, { onError: 'skip' });
    for (const piece of [1, 7, 100, 1 << 20]) expect(parseGsm8kBytes(bytes, { onError: 'skip', source: '<text>' }, piece)).toEqual(whole);
    expect(whole.errors).toEqual([{ line: 4, message: expect.stringMatching(/^bad JSON/) }]);
    const completions = Array.from({ length: n }, (_, i) => `so #### ${i}`);
    const r = rewardBatch(
      completions,
      completions.map((_, i) => String(i % 2 ? i : i + 1)),
    );
    expect(r.filter((x) => x.reward === 1)).toHaveLength(Math.floor(n / 2));
  });
});

describe('tokenizer: long texts in parts, limits, memory', () => {
  it('cutting at every nextCut position gives the ids of the whole text (random tricky text)', async () => {
    const tok = await Tokenizer.load();
    const alphabet = [
      'a',
      'Z',
      ' ',
      '  ',
      '\n',
      '\r\n',
      '\r',
      '\t',
      '1',
      '23',
      "'s",
      '!',
      '.',
      'é',
      'e\u0301',
      '你',
      '<|im_end|>',
      '<|im_start|>',
      'ſ',
      '\u00a0',
      ' x',
    ];
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let trial = 0; trial < 200; trial++) {
      let text = '';
      const len = 1 + Math.floor(rnd() * 60);
      for (let i = 0; i < len; i++) text += alphabet[Math.floor(rnd() * alphabet.length)];
      const whole = Array.from(tok.encode(text));
      const parts: number[] = [];
      for (let start = 0; start < text.length; ) {
        const end = nextCut(text, start, 1, 1, ['<|endoftext|>', '<|im_start|>', '<|im_end|>']);
        expect(end).toBeGreaterThan(start);
        parts.push(...tok.encode(text.slice(start, end)));
        start = end;
      }
      expect(parts, JSON.stringify(text)).toEqual(whole);
    }
  });

  it("a text past one call's part size gives the ids of its parts; a word over the limit is a clear error; memory is given back", async () => {
    const tok = await Tokenizer.load();
    const ref = rustReference();
    // Each paragraph starts after a '\n' with a letter, a cut: so the ids of the whole are the paragraph's repeated.
    const para = 'Natalia sold 48 clips in April, and half as many in May.\n 你好 e\u0301 <|im_end|>1,000 \u00a0\n';
    const paraIds = Array.from(tok.encode(para));
    expect(paraIds).toEqual(await ref.encode(para));
    const reps = Math.ceil((4.2 * (1 << 20)) / para.length);
    const big = para.repeat(reps);
    const ids = tok.encode(big);
    expect(ids.length).toBe(paraIds.length * reps);
    let same = true;
    for (let i = 0; i < ids.length && same; i++) same = ids[i] === paraIds[i % paraIds.length];
    expect(same).toBe(true);
    const huge = 'x'.repeat(MAX_PART_BYTES + 1);
    expect(() => tok.encode(huge)).toThrow(
      `Tokenizer.encode: input too large (${MAX_PART_BYTES + 1} bytes of UTF-8 with no place to cut it, limit ${MAX_PART_BYTES})`,
    );
    // A 1.5 MB word needs about 60 MB of BPE scratch: afterwards the instance is rebuilt, so the memory is given back.
    const base = tok.wasmMemoryBytes;
    const word = 'ab'.repeat(3 << 18);
    const wordIds = tok.encode(word);
    expect(wordIds.length).toBe(3 << 18);
    expect(tok.wasmMemoryBytes).toBeLessThanOrEqual(base + (16 << 20));
    tok.encode(big);
    expect(tok.wasmMemoryBytes).toBeLessThanOrEqual(base + (64 << 20));
    // decode of more ids than one call takes: a character whose bytes are split over tokens sits on the boundary.
    const split = [...'\u{1F9FF}\u{2F800}\u{13000}\u{1D11E}'].find((c) => tok.encode(c).length > 1)!;
    const splitIds = Array.from(tok.encode(split));
    const fill = (1 << 22) - 1;
    const many = new Array<number>(fill).fill(64).concat(splitIds, [64]);
    expect(tok.decode(many)).toBe('a'.repeat(fill) + split + 'a');
    expect(Array.from(tok.encode('hello world'))).toEqual(await ref.encode('hello world'));
  }, 60_000);
});
