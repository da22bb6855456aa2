// `latentlm tokenize`: JSON strings in, JSON arrays of token ids out (or the reverse with --decode).
import { defineCommand, mapJsonLines } from './_args.js';

const help = `latentlm tokenize [--tokenizer PATH] [--decode] [FILE]

Reads one JSON string per line from FILE (or stdin) and prints its token ids as a JSON array per line.
  --tokenizer PATH   tokenizer.json, or a directory with tokenizer.json or vocab.json + merges.txt
                     (default: the embedded Qwen2 tokenizer)
  --decode           the reverse: each line a JSON array of ids, printed as a JSON string
A blank line prints a blank line (output line N answers input line N). A malformed line prints {"error": "...", "line": N} in its place and the exit code is 1.`;

export const tokenizeCommand = defineCommand({
  name: 'tokenize',
  summary: 'text to token ids and back (JSONL in, JSONL out)',
  help,
  options: { tokenizer: { type: 'string' }, decode: { type: 'boolean' } },
  positionals: 1,
  async run({ values, positionals }) {
    // Imported here so that other commands do not pay for the embedded vocabulary at startup.
    const { Tokenizer } = await import('../text/tokenizer.js');
    const tok = await Tokenizer.load(values.tokenizer);
    return mapJsonLines('tokenize', positionals[0], (line) => {
      const v: unknown = JSON.parse(line);
      if (values.decode) {
        if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0))
          throw new Error('line must be a JSON array of non-negative integer ids');
        return JSON.stringify(tok.decode(v as number[]));
      }
      if (typeof v !== 'string') throw new Error('line must be a JSON string');
      return JSON.stringify(Array.from(tok.encode(v)));
    });
  },
});
