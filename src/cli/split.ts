// `latentlm split`: GSM8K JSONL rows in, {"question","steps","final"} lines out (see src/data/gsm8k.ts).
import { parseGsm8kLine, type Annotation } from '../data/gsm8k.js';
import { expandAnnotations, expansionReport, formatExpandReport, DEFAULT_MAX_STEPS } from '../data/expand.js';
import { defineCommand, mapJsonLines, readLines, UsageError } from './_args.js';

const help = `latentlm split [--annotations] [--expand] [--report] [--max-steps N] [FILE]

Reads GSM8K JSONL rows {"question","answer"} from FILE (or stdin) and prints one line per row:
  {"question": ..., "steps": [...], "final": "N"}
steps are the answer cut at each calculator annotation <<expr=result>> (the annotation removed; the text after a
cut starts with the result), without the final "#### N" line; final is N without commas.
  --expand        also print "expansions": one per annotation, {"ok":true,"steps":["48 * 30 = 1440", ...]} or
                  {"ok":false,"reason","detail"} (reasons: unparsed, wrong-result, too-long, unsupported, no-result)
  --report        print only a coverage summary of the expansion (share expanded, failures by reason with examples)
  --max-steps N   longest expansion accepted (default ${DEFAULT_MAX_STEPS}); longer ones are 'too-long'
  --annotations   also print "annotations": [{"expr","result"}, ...] (one per cut)
A blank line prints a blank line (output line N answers input line N). A malformed row prints {"error": "...", "line": N} in its place and the exit code is 1.`;

export const splitCommand = defineCommand({
  name: 'split',
  summary: 'split GSM8K answers into steps at calculator annotations (JSONL in, JSONL out)',
  help,
  options: { annotations: { type: 'boolean' }, expand: { type: 'boolean' }, report: { type: 'boolean' }, 'max-steps': { type: 'string' } },
  positionals: 1,
  async run({ values, positionals }) {
    const maxSteps = values['max-steps'] === undefined ? DEFAULT_MAX_STEPS : Number(values['max-steps']);
    if (!Number.isInteger(maxSteps) || maxSteps < 1)
      throw new UsageError(`split: --max-steps must be a positive integer, got '${values['max-steps']}'`);
    if (values.report) {
      if (values.expand || values.annotations)
        throw new UsageError('split: --report prints only the summary; run it without --expand/--annotations');
      return reportCoverage(positionals[0], maxSteps);
    }
    return mapJsonLines(
      'split',
      positionals[0],
      (line) => {
        const r = parseGsm8kLine(line);
        if (typeof r === 'string') throw new Error(r);
        const o: Record<string, unknown> = { question: r.question, steps: r.steps, final: r.final };
        if (values.annotations) o.annotations = r.annotations;
        if (values.expand) o.expansions = expandAnnotations(r.annotations, { maxSteps });
        return JSON.stringify(o);
      },
      'row',
    );
  },
});

/** `split --report`: expands every annotation of FILE and prints the summary; malformed rows are listed, exit 1. */
async function reportCoverage(file: string | undefined, maxSteps: number): Promise<number> {
  const rows: { annotations: Annotation[]; line: number }[] = [];
  const malformed: string[] = [];
  let n = 0;
  for await (const line of readLines(file)) {
    n++;
    if (!line.trim()) continue;
    const r = parseGsm8kLine(line);
    if (typeof r === 'string') malformed.push(`line ${n}: ${r}`);
    else rows.push({ annotations: r.annotations, line: n });
  }
  console.log(formatExpandReport(expansionReport(rows, { maxSteps })));
  if (!malformed.length) return 0;
  console.log(`malformed rows ${malformed.length} (not counted above):\n${malformed.map((m) => `  ${m}`).join('\n')}`);
  console.error(`latentlm split: ${malformed.length} malformed row${malformed.length > 1 ? 's' : ''}`);
  return 1;
}
