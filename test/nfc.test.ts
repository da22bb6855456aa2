// NFC like HF tokenizers (src/text/nfc.ts) against the Rust binding's own NFC normalizer, on the probes that expose a
// code point's combining class, decomposition and compositions, for every code point in the blocks of combining
// marks, every listed code point and its neighbours, and a seeded sample of the rest.
import { describe, expect, it } from 'vitest';
import { nfcLikeHf } from '../src/text/nfc.js';
import { HF_NFC_INERT } from '../src/text/unicode-nfc-data.js';
import { hfNfc } from './_tokenizer-ref.js';

const probes = (c: string) => [c, 'a' + c + '\u0301', 'a' + c + '\u0316', c + c, 'g' + c + '\u0341', '\u0915' + c + '\u093c'];

describe('NFC like HF tokenizers', () => {
  it('the issue case and the listed code points', () => {
    expect(nfcLikeHf('g\u07fd\u0341')).toBe('g\u07fd\u0301');
    expect(hfNfc('g\u07fd\u0341')).toBe('g\u07fd\u0301');
    expect('g\u07fd\u0341'.normalize('NFC')).not.toBe('g\u07fd\u0301'); // the JS engine's newer data differs
    expect(nfcLikeHf('cafe\u0301 \u212b')).toBe('caf\u00e9 \u00c5');
    expect(HF_NFC_INERT.length).toBeGreaterThan(10);
  });

  it('same as the Rust normalizer on every probe of the sampled code points', () => {
    const cps = new Set<number>();
    const blocks: [number, number][] = [
      [0, 0x24f],
      [0x300, 0x36f],
      [0x483, 0x489],
      [0x591, 0x8ff],
      [0x900, 0xdff],
      [0xf00, 0x109f],
      [0x1100, 0x11ff],
      [0x1ab0, 0x1aff],
      [0x1b00, 0x1bff],
      [0x1dc0, 0x1eff],
      [0x20d0, 0x20ff],
      [0x2cef, 0x2cf1],
      [0x302a, 0x309a],
      [0xa66f, 0xa6f1],
      [0xa8e0, 0xa8ff],
      [0xac00, 0xac40],
      [0xfb1d, 0xfb4f],
      [0xfe20, 0xfe2f],
      [0x10376, 0x1037a],
      [0x10a00, 0x10a3f],
      [0x10d24, 0x10d6f],
      [0x10eab, 0x10f85],
      [0x11000, 0x11fff],
      [0x16af0, 0x16f9f],
      [0x16d00, 0x16d7f],
      [0x1d165, 0x1d1ad],
      [0x1e000, 0x1e94f],
    ];
    for (const [a, b] of blocks) for (let c = a; c <= b; c++) cps.add(c);
    for (const [a, b] of HF_NFC_INERT) for (let c = a - 2; c <= b + 2; c++) cps.add(c);
    let seed = 7;
    for (let k = 0; k < 20000; k++) cps.add((seed = (seed * 1103515245 + 12345) >>> 0) % 0x110000);
    const bad: string[] = [];
    for (const cp of cps) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      for (const p of probes(String.fromCodePoint(cp)))
        if (nfcLikeHf(p) !== hfNfc(p) && bad.length < 10) bad.push(`U+${cp.toString(16)} in ${JSON.stringify(p)}`);
    }
    expect(bad).toEqual([]);
  });
});
