// `latentlm compare RUN_DIR...`: phase-1 runs (examples/train.ts --out DIR) overlaid in one SVG, plus a markdown table
// of their last evaluations. The usual use: a latent run against its `--latents 0` and `--baseline pause` controls.
import { basename } from 'node:path';
import { joinSource, sourceExists, writeFileAtomic } from '../io/source.js';
import { readJsonlFile } from '../io/jsonl.js';
import { compareRuns, type RunForComparison } from '../latent/compare.js';
import type { EvalRecord } from '../latent/trainer.js';
import { defineCommand, UsageError } from './_args.js';

const help = `latentlm compare RUN_DIR [RUN_DIR ...] [--out FILE.svg] [--names a,b,...]

Reads each run's metrics.jsonl (written by examples/train.ts / latentlm train --out RUN_DIR) and draws them together:
post-breakpoint and test loss over steps, the swapped/removed latent-usage gaps, and the last accuracy with and
without latents. Prints a markdown table of each run's last evaluation.

  --out FILE.svg   where the plot goes (default compare.svg; written atomically)
  --names a,b,...  legend labels (default: the directories' names)`;

export const compareCommand = defineCommand({
  name: 'compare',
  summary: 'overlay phase-1 runs (loss after breakpoints, latent-usage gaps, accuracy) in one SVG + a table',
  help,
  options: { out: { type: 'string' }, names: { type: 'string' } },
  positionals: Infinity,
  async run({ values, positionals }) {
    if (!positionals.length) throw new UsageError('compare: give at least one run directory');
    const names = values.names ? values.names.split(',') : positionals.map((d) => basename(d.replace(/[/\\]+$/, '')) || d);
    if (names.length !== positionals.length)
      throw new UsageError(`compare: --names has ${names.length} labels for ${positionals.length} runs`);
    const runs: RunForComparison[] = [];
    for (const [i, dir] of positionals.entries()) {
      const file = joinSource(dir, 'metrics.jsonl');
      if (!(await sourceExists(file))) throw new Error(`${file}: not found (is ${dir} a run directory from examples/train.ts --out?)`);
      const rows = await readJsonlFile<{ type?: string }>(file);
      const evals = rows.filter((r): r is EvalRecord => r.type === 'eval');
      if (!evals.length)
        throw new Error(`${file}: no evaluation lines ({"type":"eval",...}); a phase-1 run writes one every --eval-every steps`);
      runs.push({ name: names[i]!, evals });
    }
    const { svg, table } = compareRuns(runs);
    const out = values.out ?? 'compare.svg';
    await writeFileAtomic(out, svg);
    console.log(table);
    console.log(`\nplot: ${out}`);
    return 0;
  },
});
