// `latentlm split`: GSM8K JSONL rows in, {"question","steps","final"} lines out (see src/gsm8k.ts).
import { parseGsm8kLine, type Annotation } from '../gsm8k.js';
import { expandAnnotations, expansionReport, formatExpandReport, DEFAULT_MAX_STEPS } from '../expand.js';
import { mapJsonLines, parseFlags, UsageError, type Command } from './_args.js';

const help = `latentlm split [--annotations] [--expand] [--report] [--max-steps N] [FILE]

Reads GSM8K JSONL rows {"question","answer"} from FILE (or stdin) and prints one line per row:
  {"question": ..., "steps": [...], "final": "N"}
steps are the answer cut at each calculator annotation <<expr=result>> (the annotation removed; the text after a
cut starts with the result), without the final "#### N" line; final is N without commas.
  --annotations   also print "annotations": [{"expr","result"}, ...] (one per cut)
  --expand        also print "expansions": one per annotation, {"ok":true,"steps":["48 * 30 = 1440", ...]} or
                  {"ok":false,"reason","detail"} (reasons: unparsed, wrong-result, too-long, unsupported, no-result)
  --report        print a coverage summary of the expansion instead of the rows (to stderr with --expand)
  --max-steps N   longest expansion accepted (default ${DEFAULT_MAX_STEPS}); longer ones are 'too-long'
Blank lines are skipped. A malformed row prints {"error": "...", "line": N} in its place and the exit code is 1.`;

export const splitCommand: Command = {
  name: 'split',
  summary: 'split GSM8K answers into steps at calculator annotations (JSONL in, JSONL out)',
  help,
  async run(argv) {
    const { values, positionals } = parseFlags(
      'split',
      argv,
      { annotations: { type: 'boolean' }, expand: { type: 'boolean' }, report: { type: 'boolean' }, 'max-steps': { type: 'string' } },
      1,
    );
    if (values.help) {
      console.log(help);
      return 0;
    }
    const maxSteps = values['max-steps'] === undefined ? DEFAULT_MAX_STEPS : Number(values['max-steps']);
    if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new UsageError(`split: --max-steps must be a positive integer, got '${values['max-steps']}'`);
    const seen: { annotations: Annotation[]; line: number }[] = [];
    const code = await mapJsonLines(
      'split',
      positionals[0],
      (line, lineNo) => {
        const r = parseGsm8kLine(line);
        if (typeof r === 'string') throw new Error(r);
        if (values.report) seen.push({ annotations: r.annotations, line: lineNo });
        if (values.report && !values.expand) return null;
        const o: Record<string, unknown> = { question: r.question, steps: r.steps, final: r.final };
        if (values.annotations) o.annotations = r.annotations;
        if (values.expand) o.expansions = expandAnnotations(r.annotations, { maxSteps });
        return JSON.stringify(o);
      },
      'row',
    );
    if (values.report) (values.expand ? console.error : console.log)(formatExpandReport(expansionReport(seen, { maxSteps })));
    return code;
  },
};
