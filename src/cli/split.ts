// `latentlm split`: GSM8K JSONL rows in, {"question","steps","final"} lines out (see src/gsm8k.ts).
import { parseGsm8kLine } from '../gsm8k.js';
import { lineWriter, parseFlags, readLines, type Command } from './_args.js';

const help = `latentlm split [--annotations] [FILE]

Reads GSM8K JSONL rows {"question","answer"} from FILE (or stdin) and prints one line per row:
  {"question": ..., "steps": [...], "final": "N"}
steps are the answer cut at each calculator annotation <<expr=result>> (the annotation removed; the text after a
cut starts with the result), without the final "#### N" line; final is N without commas.
  --annotations   also print "annotations": [{"expr","result"}, ...] (one per cut)
Blank lines are skipped. A malformed row prints {"error": "...", "line": N} in its place and the exit code is 1.`;

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
    const out = lineWriter();
    let bad = 0;
    let n = 0;
    for await (const line of readLines(positionals[0])) {
      n++;
      if (!line.trim()) continue;
      const r = parseGsm8kLine(line);
      if (typeof r === 'string') {
        bad++;
        await out.write(JSON.stringify({ error: r, line: n }));
        continue;
      }
      const o: Record<string, unknown> = { question: r.question, steps: r.steps, final: r.final };
      if (values.annotations) o.annotations = r.annotations;
      await out.write(JSON.stringify(o));
    }
    await out.end();
    if (bad) console.error(`latentlm split: ${bad} malformed row${bad > 1 ? 's' : ''}`);
    return bad ? 1 : 0;
  },
};
