// `latentlm split`: GSM8K JSONL rows in, {"question","steps","final"} lines out (see src/gsm8k.ts).
import { parseGsm8kLine } from '../gsm8k.js';
import { mapJsonLines, parseFlags, type Command } from './_args.js';

const help = `latentlm split [--annotations] [FILE]

Reads GSM8K JSONL rows {"question","answer"} from FILE (or stdin) and prints one line per row:
  {"question": ..., "steps": [...], "final": "N"}
steps are the answer cut at each calculator annotation <<expr=result>> (the annotation removed; the text after a
cut starts with the result), without the final "#### N" line; final is N without commas.
  --annotations   also print "annotations": [{"expr","result"}, ...] (one per cut)
A blank line prints a blank line (output line N answers input line N). A malformed row prints {"error": "...", "line": N} in its place and the exit code is 1.`;

export const splitCommand: Command = {
  name: 'split',
  summary: 'split GSM8K answers into steps at calculator annotations (JSONL in, JSONL out)',
  help,
  async run(argv) {
    const { values, positionals } = parseFlags('split', argv, { annotations: { type: 'boolean' } }, 1);
    if (values.help) {
      console.log(help);
      return 0;
    }
    return mapJsonLines(
      'split',
      positionals[0],
      (line) => {
        const r = parseGsm8kLine(line);
        if (typeof r === 'string') throw new Error(r);
        const o: Record<string, unknown> = { question: r.question, steps: r.steps, final: r.final };
        if (values.annotations) o.annotations = r.annotations;
        return JSON.stringify(o);
      },
      'row',
    );
  },
};
