// `latentlm reward`: {"completion","gold"} lines in, {"reward","format","extracted"} lines out (see src/data/grade.ts).
import { reward, type Gold } from '../data/grade.js';
import { defineCommand, mapJsonLines } from './_args.js';

const help = `latentlm reward [--strict] [FILE]

Reads JSON lines {"completion": "...", "gold": "72"} from FILE (or stdin) and prints one line per input:
  {"reward": 1|0, "format": 1|0, "extracted": "72"}
The answer is the number after the last "####" (format 1), else the last number in the completion (format 0).
'$' and ',' are ignored and numbers compare exactly as decimals (7.50 = 7.5, 072 = 72, -3 != 3).
  --strict   only "#### N" counts: no fallback to the last number
A blank line prints a blank line (output line N answers input line N). A malformed line prints {"error": "...", "line": N} in its place and the exit code is 1.`;

export const rewardCommand = defineCommand({
  name: 'reward',
  summary: 'score completions against gold answers (JSONL in, JSONL out)',
  help,
  options: { strict: { type: 'boolean' } },
  positionals: 1,
  async run({ values, positionals }) {
    return mapJsonLines('reward', positionals[0], (line) => {
      const v = JSON.parse(line) as { completion?: unknown; gold?: unknown } | null;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('line is not a JSON object');
      for (const k of ['completion', 'gold'] as const) if (v[k] === undefined) throw new Error(`missing field "${k}"`);
      if (typeof v.completion !== 'string') throw new Error('"completion" must be a string');
      if (typeof v.gold !== 'string' && typeof v.gold !== 'number') throw new Error('"gold" must be a string or number');
      return JSON.stringify(reward(v.completion, v.gold as Gold, { strict: values.strict }));
    });
  },
});
