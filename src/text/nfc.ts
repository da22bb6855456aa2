// NFC as HF tokenizers computes it. HF's normalizer uses Unicode 9.0 data, JS engines their own ICU's (Unicode 17
// in Node 20.20), and the two disagree on characters added since 9.0: "g\u07fd\u0341" is "g\u07fd\u0301" for HF
// (U+07FD is unassigned in 9.0, so it blocks the composition) but "\u01f5\u07fd" for JS (U+07FD has ccc 220).
// Assigned characters never change their normalization properties (Unicode's stability policy), so the only
// differences are the code points in HF_NFC_INERT (derived from the Rust binding, see scripts/unicode-nfc.mjs):
// for HF each is a starter that neither decomposes nor composes, so the text between them normalises on its own
// and they stay as they are. A runtime whose Unicode is older than Node's simply knows fewer of them, which is
// the same answer; one newer than Unicode 17 may differ on what it adds.
import { HF_NFC_INERT } from './unicode-nfc-data.js';

const hex = (cp: number) => `\\u{${cp.toString(16)}}`;
const INERT = new RegExp(`[${HF_NFC_INERT.map(([a, b]) => (a === b ? hex(a) : `${hex(a)}-${hex(b)}`)).join('')}]`, 'u');
const INERT_SPLIT = new RegExp(`(${INERT.source})`, 'u');

/** NFC with HF tokenizers' Unicode data (see above); identical to text.normalize('NFC') on most text. */
export function nfcLikeHf(text: string): string {
  if (!INERT.test(text)) return text.normalize('NFC');
  // split with a capture keeps the separators at the odd indices
  const parts = text.split(INERT_SPLIT);
  for (let i = 0; i < parts.length; i += 2) parts[i] = parts[i].normalize('NFC');
  return parts.join('');
}
