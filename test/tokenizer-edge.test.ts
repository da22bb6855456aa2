// Edge cases, property tests and fuzzing of the WASM tokenizer. The reference is HF's Rust tokenizer built from the
// embedded default's source (so these run without ../shared): same ids for an edge-case corpus and for random
// Unicode strings, decode(encode(s)) === NFC(s), HF-identical decoding of arbitrary ids (invalid UTF-8 -> U+FFFD),
// and random bytes through every WASM entry point without a crash or a hang.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/text/tokenizer.js';
import wasmB64 from '../src/generated/tokenizer.wasm.js';
import { instantiateEmbedded } from '../src/io/wasm-embed.js';
import { hfNfc, rustReference, type RefTokenizer } from './_tokenizer-ref.js';

const EDGE: string[] = [
  '',
  ' ',
  'a',
  // scripts
  '我们今天学习数学。小明有3个苹果，给了小红2个。',
  '日本語のテキスト、カタカナとひらがな。',
  'مرحبا بالعالم، كيف حالك؟ ١٢٣',
  'नमस्ते दुनिया, यह हिंदी है। १२३',
  'สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง',
  '안녕하세요 세계! 한국어 텍스트입니다.',
  'Ελληνικά και Кириллица и עברית',
  // emoji: ZWJ sequences, skin tones, flags, keycaps
  '👨‍👩‍👧‍👦 family 👍🏽 thumbs 🏳️‍🌈 flag 🇩🇪 1️⃣ ❤️',
  'emoji🙂adjacent🙂to🙂letters',
  // combining marks and NFC-decomposable text
  'e\u0301',
  'cafe\u0301 re\u0301sume\u0301 A\u030a \u212b \u2126 \u1e9b\u0323',
  'n\u0303o\u0308 \u0041\u0301\u0301 \u0338 \u226f',
  // marks and compositions newer than HF's Unicode 9.0 NFC data (src/text/nfc.ts): U+07FD (11.0), U+1DF6 (10.0),
  // U+0898 (14.0), Dives Akuru U+11935 + U+11930 (13.0), Kirat Rai U+16D63 + U+16D67 (16.0)
  'g\u07fd\u0341',
  'a\u1df6\u0301 a\u0898\u0301 e\u07fd\u0301\u0316',
  '\u{11935}\u{11930} \u{16D63}\u{16D67} x\u{11930}',
  '\u07fd<|im_end|>\u0341 g\u0341\u07fd',
  '\u0301 leading combining mark',
  // line ends
  'line1\r\nline2\rline3\nline4\n\n\n',
  'a\r\rb\r\n\r\nc \r\n d',
  '\r\n',
  '\n\n \n  \n   x',
  // digits
  '12345678901234567890123456789012345678901234567890',
  '3.14159 -42 1,000,000 $12.50 50%',
  '٣٤٥ ४५६ ๗๘๙ ①②③ Ⅻ ½',
  // spaces and tabs
  'a' + ' '.repeat(200) + 'b',
  ' '.repeat(37),
  '\t\t\tindented\t \t text \t',
  'x \u00a0\u00a0 y\u3000z\u2003w \u0085 v \ufeff u',
  'trailing spaces   ',
  '   leading spaces',
  // contractions, any case, and the long s Oniguruma folds to s
  "DON'T I'M YOU'RE WE'VE SHE'LL HE'D IT'S",
  "don't i'm you're we've she'll he'd it's",
  "Don'T i'M yOu'Re 'S 'T 'ſ a'ſb 'll'LL'lL ''s '",
  "rock 'n' roll, 'quoted', o'clock, '123",
  // punctuation runs
  '...!!!???---===***',
  ' !!!\n\n?? \r\n',
  '<<48/2=24>>24 #### 72',
  'foo(bar[baz]{qux})',
  // special tokens inside text and adjacent to letters
  '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>',
  'abc<|endoftext|>def',
  '<|endoftext|><|endoftext|>',
  '<|im_end|>\u0338',
  'x<|im_start|',
  '<|im_start|>\u0301e',
  '<<|im_end|>>',
  '<|IM_END|> <|im_end |>',
  // lone surrogates (TextEncoder and HF both see U+FFFD)
  'a\ud800b',
  '\udc00',
  'x\ud83dy\ude00z',
  // other
  'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(20),
  'the the the the the the the the the the',
  'https://example.com/path?query=1&x=2#frag',
  'C:\\Users\\name\\file.txt',
  '\u0000\u0001\u0002\u001f\u007f',
  '\u200b\u200c\u200d\u2060',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛',
];

let tok: Tokenizer;
let ref: RefTokenizer;
let refPlain: RefTokenizer;
beforeAll(async () => {
  tok = await Tokenizer.load();
  ref = rustReference();
  refPlain = rustReference({ withAdded: false });
});

const ids = (a: Uint32Array) => Array.from(a);
/** No lone surrogates (String.prototype.isWellFormed is ES2024, newer than this project's lib setting). */
const wellFormed = (s: string) => !/\p{Surrogate}/u.test(s);
/**
 * What decode(encode(s)) must give: HF normalises (NFC) the text between special tokens, not across them, so a
 * combining mark right after "<|im_end|>" stays uncomposed. With allowSpecial: false it is plain NFC.
 */
const hfNormalized = (s: string) =>
  s
    .split(/(<\|endoftext\|>|<\|im_start\|>|<\|im_end\|>)/)
    .map((part, i) => (i % 2 ? part : hfNfc(part)))
    .join('');

describe('edge-case corpus', () => {
  it('identical ids to HF tokenizers, with special tokens matched', async () => {
    for (const text of EDGE) expect(ids(tok.encode(text)), JSON.stringify(text)).toEqual(await ref.encode(text));
  });

  it('allowSpecial: false treats special tokens as plain text (same ids as HF without added tokens)', async () => {
    for (const text of EDGE)
      expect(ids(tok.encode(text, { allowSpecial: false })), JSON.stringify(text)).toEqual(await refPlain.encode(text));
    const plain = ids(tok.encode('<|im_end|>', { allowSpecial: false }));
    expect(plain).not.toContain(151645);
    expect(tok.decode(plain)).toBe('<|im_end|>');
  });

  it('decode(encode(s)) is the normalised text for well-formed s, and equals HF decode', async () => {
    for (const text of EDGE) {
      const e = tok.encode(text);
      const d = tok.decode(e);
      expect(d, JSON.stringify(text)).toBe(await ref.decode(ids(e)));
      if (wellFormed(text)) {
        expect(d, JSON.stringify(text)).toBe(hfNormalized(text));
        expect(tok.decode(tok.encode(text, { allowSpecial: false })), JSON.stringify(text)).toBe(hfNfc(text));
      }
    }
    // the one place the two differ: NFC would compose ">" + U+0338 into U+226F across the special token
    expect(tok.decode(tok.encode('<|im_end|>\u0338'))).toBe('<|im_end|>\u0338');
  });

  it('empty input and empty ids', () => {
    expect(tok.encode('').length).toBe(0);
    expect(tok.decode([])).toBe('');
    expect(tok.encodeBatch(['', 'a', 'Hello world']).map(ids)).toEqual([[], [64], [9707, 1879]]);
  });

  it('decodes invalid UTF-8 like HF (U+FFFD per maximal subpart), skips unknown ids', async () => {
    const byte = (b: number) => tok.tokenToId(tok.idToToken(tok.encode(String.fromCharCode(b))[0])!)!; // ASCII byte ids
    const t = (s: string) => tok.tokenToId(s)!; // ByteLevel token strings
    const cases: number[][] = [
      [t('Ã')], // lone lead byte C3
      [t('Ã'), byte(0x41)], // lead byte then ASCII
      [t('ä½')], // E4 BD: truncated 3-byte sequence
      [t('ï¿½')], // U+FFFD itself
      [t('Â'), t('Â')],
      [t('ð'), t('Ł'), t('ĺ')], // F0 9F 98: truncated 4-byte emoji
      [t('ĳ'), t('Ĳ')],
      [151644, t('Ã'), 151645],
      [9707, 999999, 1879, 0xffffffff],
    ];
    for (const c of cases) {
      expect(c.every((x) => x !== undefined)).toBe(true);
      expect(tok.decode(c), JSON.stringify(c)).toBe(await ref.decode(c.filter((x) => x < tok.vocabSize)));
    }
    expect(tok.decode([t('Ã')])).toBe('\ufffd');
    expect(tok.decode([t('ï»¿'), 9707])).toBe('\ufeffHello'); // a leading BOM is kept, as HF keeps it
  });
});

describe('property tests against HF (fast-check)', () => {
  const tricky = fc.constantFrom(
    ' ',
    '  ',
    '\t',
    '\n',
    '\r',
    '\r\n',
    '\u00a0',
    '\u3000',
    '\u0085',
    "'",
    "'s",
    "'S",
    "'ll",
    "'ſ",
    'ſ',
    'a',
    'Z',
    'é',
    'e\u0301',
    '\u0301',
    '\u0338',
    '0',
    '7',
    '٣',
    '½',
    '!',
    '.',
    '<',
    '>',
    '|',
    '<|im_end|>',
    '<|im_start|>',
    '<|endoftext|>',
    '我',
    '👍🏽',
    '\u200d',
    '👨‍👩‍👧',
    'ก',
    'ी',
    '한',
    '\ud800',
    '\udfff',
    '\ufeff',
    'K',
    '\u212a',
    '\u07fd',
    '\u0341',
    '\u1df6',
    'g',
    '\u{11930}',
    '\u{11935}',
  );
  const mixed = fc
    .array(fc.oneof(tricky, fc.string({ unit: 'binary', maxLength: 4 }), fc.string({ unit: 'grapheme', maxLength: 4 })), { maxLength: 24 })
    .map((a) => a.join(''));
  const seed = 20240611;

  it('random tricky strings: same ids as HF; decode(encode(s)) === NFC(s) (between specials) when well-formed', async () => {
    await fc.assert(
      fc.asyncProperty(mixed, async (s) => {
        expect(ids(tok.encode(s)), JSON.stringify(s)).toEqual(await ref.encode(s));
        expect(ids(tok.encode(s, { allowSpecial: false })), JSON.stringify(s)).toEqual(await refPlain.encode(s));
        if (wellFormed(s)) {
          expect(tok.decode(tok.encode(s))).toBe(hfNormalized(s));
          expect(tok.decode(tok.encode(s, { allowSpecial: false }))).toBe(hfNfc(s));
        }
      }),
      { numRuns: 1500, seed },
    );
  });

  it('random full-Unicode strings: same ids as HF; round trip', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 40 }), async (s) => {
        expect(ids(tok.encode(s)), JSON.stringify(s)).toEqual(await ref.encode(s));
        expect(tok.decode(tok.encode(s))).toBe(hfNfc(s));
      }),
      { numRuns: 1500, seed },
    );
  });

  it('random ids decode like HF', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 151645 }), { maxLength: 12 }), async (a) => {
        expect(tok.decode(a)).toBe(await ref.decode(a));
      }),
      { numRuns: 500, seed },
    );
  });

  it('long inputs: a 200k-letter word (heap BPE path), 100k digits, 100k spaces', async () => {
    for (const s of [
      'ab'.repeat(100_000),
      'x'.repeat(3000) + ' ' + 'é'.repeat(5000),
      '7'.repeat(100_000),
      ' '.repeat(100_000) + 'z',
      'hello '.repeat(20_000),
    ]) {
      expect(ids(tok.encode(s)), `${JSON.stringify(s.slice(0, 12))}... (${s.length})`).toEqual(await ref.encode(s));
    }
  });
});

describe('fuzz: random bytes through every WASM entry point', () => {
  interface Ex {
    memory: WebAssembly.Memory;
    inputBuffer(n: number): number;
    allocBlob(n: number): number;
    loadModel(p: number, n: number): number;
    addToken(m: number, d: number, id: number, s: number): void;
    encode(n: number, a: number): number;
    decode(n: number): number;
    tokenId(n: number): number;
    tokenPtr(id: number): number;
    tokenLen(id: number): number;
    vocabSize(): number;
    outputPtr(): number;
  }
  const ex = () => (tok as unknown as { ex: Ex }).ex;
  const write = (e: Ex, bytes: Uint8Array) => {
    const p = e.inputBuffer(Math.max(bytes.length, 16));
    new Uint8Array(e.memory.buffer, p, bytes.length).set(bytes);
  };

  it('encode of random bytes (invalid UTF-8 included) terminates with ids in range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, allow) => {
        const e = ex();
        write(e, bytes);
        const n = e.encode(bytes.length, allow ? 1 : 0);
        expect(n).toBeGreaterThanOrEqual(0);
        expect(n).toBeLessThanOrEqual(bytes.length);
        const out = new Uint32Array(e.memory.buffer, e.outputPtr(), n);
        for (const id of out) expect(id).toBeLessThan(tok.vocabSize);
        // the ids decode back to exactly the input bytes
        const d = new Uint32Array(out);
        const p = e.inputBuffer(d.length * 4 + 16);
        new Uint32Array(e.memory.buffer, p, d.length).set(d);
        const len = e.decode(d.length);
        expect(len).toBe(bytes.length);
      }),
      { numRuns: 3000, seed: 7 },
    );
    // oversized lengths are clamped to the buffer, not read past it
    const e = ex();
    expect(e.encode(0x7fffffff, 1)).toBeGreaterThanOrEqual(0);
    expect(e.decode(0x7fffffff)).toBeGreaterThanOrEqual(0);
    expect(e.tokenId(0x7fffffff)).toBe(-1);
  });

  it('decode / tokenId / tokenPtr / tokenLen with random input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 50 }),
        fc.uint8Array({ maxLength: 40 }),
        (idList, bytes) => {
          const e = ex();
          const p = e.inputBuffer(idList.length * 4 + 16);
          new Uint32Array(e.memory.buffer, p, idList.length).set(idList);
          expect(e.decode(idList.length)).toBeGreaterThanOrEqual(0);
          write(e, bytes);
          const id = e.tokenId(bytes.length);
          expect(id).toBeGreaterThanOrEqual(-1);
          for (const x of idList.slice(0, 5)) {
            const l = e.tokenLen(x);
            expect(l === -1 || (l > 0 && l <= 256)).toBe(true);
            e.tokenPtr(x);
          }
          expect(tok.decode(idList)).toBeTypeOf('string');
        },
      ),
      { numRuns: 1000, seed: 11 },
    );
  });

  it('loadModel rejects random and corrupted blobs; the instance stays usable', async () => {
    const fresh = async () => instantiateEmbedded<Ex & WebAssembly.Exports>(wasmB64);
    const magic = [0x4c, 0x4c, 0x54, 0x4b];
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), fc.boolean(), async (rand, withMagic) => {
        const e = await fresh();
        const blob = withMagic ? Uint8Array.from([...magic, 1, ...rand]) : rand;
        const p = e.allocBlob(blob.length);
        new Uint8Array(e.memory.buffer, p, blob.length).set(blob);
        const rc = e.loadModel(p, blob.length);
        expect(rc).toBeLessThanOrEqual(0);
        // whatever happened, the entry points answer
        const q = e.inputBuffer(64);
        new Uint8Array(e.memory.buffer, q, 5).set([104, 101, 108, 108, 111]);
        const n = e.encode(5, 1);
        expect(rc === 0 ? n >= 0 : n === -1).toBe(true);
        expect(e.decode(4)).toBeGreaterThanOrEqual(0);
        expect(e.vocabSize()).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 300, seed: 3 },
    );
  });
});
