// Part of scripts/gen-unicode.mjs: finds the code points whose NFC behaviour in HF tokenizers differs from this
// JS engine's String.prototype.normalize, by asking the Rust binding's own NFC normalizer.
//
// Why: HF's NFC normalizer is the crate unicode-normalization-alignments, whose tables are Unicode 9.0.0 (checked
// against the binding: the 9.0 mark U+1E94A (ccc 7) is known to it, the 10.0 marks U+1DF6 / U+1DF9 and the 11.0
// mark U+07FD are not). Node's ICU is far newer (Unicode 17 in Node 20.20). No Unicode 9.0 data is available
// offline here (Debian's unicode-data is 15.0, Python's unicodedata 14.0), so instead of building 9.0 tables, the
// differences are derived by probing the reference itself. Unicode's stability policy freezes the normalization
// properties of assigned characters, so the differing code points are characters unassigned in 9.0 (a starter
// that never decomposes or composes there) that later versions gave a combining class, a decomposition or a
// composition. src/text/nfc.ts treats exactly these as inert: it normalises the text between them with the JS engine.
//
// Probes per code point c (any difference puts c on the list):
//   c                 its decomposition
//   "a" + c + U+0301  a combining class in (0, 230) does not block a + U+0301 -> U+00E1; > 230 reorders
//   "a" + c + U+0316  a combining class > 220 reorders U+0316 (ccc 220) before c
//   f + s             for every JS composition pair (f, s) with c = f or c = s
/** Returns sorted [first, last] ranges of the differing code points. */
export function nfcDifferences(hfNfc) {
  const N_CP = 0x110000;
  const js = (s) => s.normalize('NFC');
  const diff = new Uint8Array(N_CP);
  for (let cp = 0; cp < N_CP; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    for (const p of [c, 'a' + c + '\u0301', 'a' + c + '\u0316']) {
      if (hfNfc(p) !== js(p)) {
        diff[cp] = 1;
        break;
      }
    }
  }
  // Composition pairs of this JS engine: x is a primary composite when NFC(x) = x and its NFD is longer; its
  // pair is (NFC of the NFD without its last code point, that last code point).
  for (let cp = 0; cp < N_CP; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const x = String.fromCodePoint(cp);
    const d = [...x.normalize('NFD')];
    if (d.length < 2 || js(x) !== x) continue;
    const s = d.pop();
    const f = js(d.join(''));
    if (hfNfc(f + s) !== js(f + s)) {
      // Mark whichever of the two the reference does not know (both when it knows neither).
      for (const c of [...f, s]) if (hfNfc(c + c) === c + c && hfNfc('a' + c + '\u0301') === 'a' + c + '\u0301') diff[c.codePointAt(0)] = 1;
    }
  }
  const ranges = [];
  for (let cp = 0; cp < N_CP; cp++) {
    if (!diff[cp]) continue;
    if (ranges.length && ranges[ranges.length - 1][1] === cp - 1) ranges[ranges.length - 1][1] = cp;
    else ranges.push([cp, cp]);
  }
  return ranges;
}
