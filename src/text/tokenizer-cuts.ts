// Where a long text may be cut so that encoding the parts and concatenating the ids gives exactly the ids of the
// whole text. Used by Tokenizer.encode to encode a long text in bounded pieces of WASM memory.
//
// A position p (between text[p-1] and text[p]) is a cut when no pre-tokenizer piece of the Qwen2/Llama-3 split
// regex spans it, whatever the rest of the text (assembly/tokenizer.ts, nextPiece, has the branch rules):
//  - ASCII letter, then ' ' + ASCII letter: the letter run (\p{L}+, or a contraction ending in a letter) ends at
//    p, and " x..." starts the next piece (the optional prefix of [^\r\n\p{L}\p{N}]?\p{L}+).
//  - '\n', then a printable ASCII character other than ' ': every branch that can hold a '\n' ends at the last
//    CR/LF of its run, and nothing that starts a piece there can reach back over the '\n'.
//  - with \p{N} (one digit per piece, maxDigits 1): after an ASCII digit, and before one when an ASCII
//    non-whitespace character precedes it (a whitespace run's split depends on what follows it, and a non-ASCII
//    character may be whitespace, e.g. U+00A0).
// Only ASCII is tested, so the rules hold for any Unicode version of \p{L}. Added tokens are matched on the whole
// text before splitting, so a cut never falls inside an occurrence of one (the caller passes their contents).
const isAsciiLetter = (c: number) => (c | 32) >= 97 && (c | 32) <= 122;
const isDigit = (c: number) => c >= 48 && c <= 57;
const isWs = (c: number) => c === 32 || (c >= 9 && c <= 13);

function isCut(text: string, p: number, maxDigits: number): boolean {
  const a = text.charCodeAt(p - 1);
  const b = text.charCodeAt(p);
  if (b === 32 && isAsciiLetter(a) && p + 1 < text.length && isAsciiLetter(text.charCodeAt(p + 1))) return true;
  if (a === 10 && b > 32 && b < 127) return true;
  if (maxDigits === 1 && (isDigit(a) || (isDigit(b) && a < 128 && !isWs(a)))) return true;
  return false;
}

function insideAddedToken(text: string, p: number, tokens: readonly string[]): boolean {
  for (const t of tokens) {
    for (let i = Math.max(0, p - t.length + 1); i < p; i++) if (text.startsWith(t, i)) return true;
  }
  return false;
}

/**
 * End of the next part starting at `start`: the last cut in (start, start + target], else the first one after,
 * else text.length. Parts stay near `target` code units in ordinary text; a run with no cut in it (one huge word)
 * becomes one part, which the caller size-checks.
 */
export function nextCut(text: string, start: number, target: number, maxDigits: number, tokens: readonly string[]): number {
  if (text.length - start <= target) return text.length;
  const ok = (p: number) => isCut(text, p, maxDigits) && !insideAddedToken(text, p, tokens);
  for (let p = start + target; p > start; p--) if (ok(p)) return p;
  for (let p = start + target + 1; p < text.length; p++) if (ok(p)) return p;
  return text.length;
}
