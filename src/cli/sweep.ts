// `latentlm sweep`: conditions x k x seeds of `latentlm train`, in parallel child processes, resumable, into one
// table (table.md / table.json) and one SVG (grid.svg). The runner is src/sweep/run.ts; this file is flags and display.
import { joinSource, sourceExists } from '../io/source.js';
import { formatDuration, createProgress } from '../io/progress.js';
import { CONDITIONS, parseConditions, parseIntList, planCells, type GridSpec } from '../sweep/grid.js';
import { hasCheckpoint, readCompleteSummary, runSweep, type CellEvent } from '../sweep/run.js';
import { type Command, parseFlags, UsageError } from './_args.js';

const help = `latentlm sweep [flags] [-- train flags...]

Runs every cell of conditions x k x seeds as one 'latentlm train' run in OUT/<condition>-k<k>-s<seed>/, up to --jobs
at a time, then writes OUT/table.md, OUT/table.json and OUT/grid.svg: per condition x k, held-out accuracy with a
95 % Wilson interval on the pooled problems of all seeds and a 95 % t interval over seeds, post-breakpoint loss, the
zeroed/swapped/removed latent-usage gaps, reasoning positions per answer and wall time. A finished cell (complete
summary.json) is skipped, so rerunning the same command after a crash or Ctrl-C redoes only what is missing; a cell
with a checkpoint continues through train --resume.

  --conditions LIST  comma-separated (default none,pause,latent). Known: ${Object.keys(CONDITIONS).join(', ')};
                     or define one as name=--flag value ... (train flags, no commas), e.g. 'fast=--lr 2e-3';
                     one that sets its own --latents N is not crossed with --k
  --seeds LIST       training seeds, e.g. 0,1,2 or 0-4 (default 0,1,2)
  --k LIST           latents per breakpoint, e.g. 2 or 1,2,4 (default 2); 'none' always runs at k=0
  --steps N          optimizer steps per cell (default 240)
  --gen-rows N       held-out problems graded per cell (default 200: the whole synthetic test split, so 3 seeds
                     pool 600 problems; with GSM8K use 500 or more)
  --data DIR         a GSM8K-format directory (train.jsonl + test.jsonl) or .jsonl file for every cell (default synthetic)
  --out DIR          output directory (default runs/sweep)
  --jobs N           cells at a time (default: the number of CPU cores)
  --dry-run          print the cells, their state (new / resume / done) and train flags; run nothing
  -- FLAGS...        further train flags for every cell (e.g. -- --eval-every 500 --batch 4)

Ctrl-C stops the sweep: running cells save a checkpoint and stop; the same command continues later.`;

export const sweepCommand: Command = {
  name: 'sweep',
  summary: 'grid of train runs (conditions x k x seeds) in parallel, resumable, into one table + SVG',
  help,
  async run(argv: string[]): Promise<number> {
    const dd = argv.indexOf('--');
    const own = dd < 0 ? argv : argv.slice(0, dd),
      extra = dd < 0 ? [] : argv.slice(dd + 1);
    const { values } = parseFlags('sweep', own, {
      conditions: { type: 'string' },
      seeds: { type: 'string' },
      k: { type: 'string' },
      steps: { type: 'string' },
      'gen-rows': { type: 'string' },
      data: { type: 'string' },
      out: { type: 'string' },
      jobs: { type: 'string' },
      'dry-run': { type: 'boolean' },
    });
    if (values.help) {
      console.log(help);
      return 0;
    }
    const usage = <T>(f: () => T): T => {
      try {
        return f();
      } catch (e) {
        const msg = (e as Error).message;
        throw new UsageError(msg.startsWith('sweep:') ? msg : `sweep: ${msg}`);
      }
    };
    const positiveInt = (v: string | undefined, d: number, flag: string) => {
      if (v === undefined) return d;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`sweep: ${flag} expects a positive integer, got '${v}'`);
      return n;
    };
    const conditions = usage(() => parseConditions(values.conditions ?? 'none,pause,latent'));
    const seeds = usage(() => parseIntList(values.seeds ?? '0,1,2', '--seeds'));
    const ks = usage(() => parseIntList(values.k ?? '2', '--k'));
    const steps = positiveInt(values.steps, 240, '--steps');
    const genRows = positiveInt(values['gen-rows'], 200, '--gen-rows');
    const jobs = values.jobs === undefined ? undefined : positiveInt(values.jobs, 1, '--jobs');
    const out = values.out ?? 'runs/sweep';
    if (extra.some((a) => a === '--gen-rows' || a.startsWith('--gen-rows=') || a === '--data' || a.startsWith('--data=')))
      throw new UsageError('sweep: give --gen-rows and --data as sweep flags (before --), not train flags');
    if (values.data) await checkData(values.data);
    const trainFlags = [...(values.data ? ['--data', values.data] : []), '--gen-rows', String(genRows), ...extra];
    const spec: GridSpec = { conditions, seeds, ks, steps, trainFlags };
    const cells = usage(() => planCells(spec));

    if (values['dry-run']) {
      for (const c of cells) {
        const dir = joinSource(out, c.id);
        const state = (await readCompleteSummary(dir, steps)) ? 'done' : (await hasCheckpoint(dir)) ? 'resume' : 'new';
        console.log(
          `${c.id.padEnd(Math.max(...cells.map((x) => x.id.length)))}  ${state.padEnd(6)}  train ${c.args.join(' ')} --out ${dir}`,
        );
      }
      console.log(`${cells.length} cells into ${out}/`);
      return 0;
    }

    console.log(
      `sweep: ${cells.length} cell${cells.length === 1 ? '' : 's'} (${conditions.map((c) => c.name).join(', ')} x k ${ks.join(',')} x seeds ${seeds.join(',')}), ${steps} steps each, into ${out}/`,
    );
    // after the header: a bar must be the last thing on the terminal
    const display = await cellDisplay(cells.length);
    const ac = new AbortController();
    const onSigint = () => (ac.signal.aborted ? process.exit(130) : ac.abort('SIGINT'));
    const onSigterm = () => ac.abort('SIGTERM');
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
    const t0 = performance.now();
    try {
      const r = await runSweep(spec, {
        out,
        jobs,
        signal: ac.signal,
        onEvent: display.event,
        // Ctrl-C in a terminal reaches the cells itself (same process group); a second SIGINT would make them quit unsaved
        interruptChildren: (reason) => reason !== 'SIGINT',
      });
      display.done();
      console.log(
        `\n${r.table}\ntable: ${r.files.tableMd}, ${r.files.tableJson}; plot: ${r.files.svg} (sweep took ${formatDuration((performance.now() - t0) / 1000)})`,
      );
      const failed = r.cells.filter((c) => c.status === 'failed');
      for (const f of failed) console.error(`failed: ${f.error}`);
      if (r.stopped) {
        console.error('sweep stopped: rerun the same command to finish the remaining cells');
        return 130;
      }
      return failed.length ? 1 : 0;
    } finally {
      display.done(); // idempotent: also stops the bar when the sweep throws
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
    }
  },
};

async function checkData(data: string) {
  if (/\.jsonl$/i.test(data)) {
    if (!(await sourceExists(data))) throw new Error(`--data ${data}: file not found`);
    return;
  }
  for (const f of ['train.jsonl', 'test.jsonl'])
    if (!(await sourceExists(joinSource(data, f))))
      throw new Error(`--data ${data}: no ${f} there (a GSM8K-format directory has train.jsonl and test.jsonl)`);
}

function describe(e: CellEvent): string {
  const f = e.summary?.final;
  const acc =
    f?.accuracy !== undefined
      ? `accuracy ${(100 * f.accuracy).toFixed(1)} %${f.accuracyRows ? ` (${Math.round(f.accuracy * f.accuracyRows)}/${f.accuracyRows})` : ''}`
      : '';
  const loss = f && Number.isFinite(f.postBreakLoss) ? `post-break loss ${f.postBreakLoss.toFixed(3)}` : '';
  const what =
    e.status === 'skipped'
      ? 'already done'
      : e.status === 'done'
        ? `done in ${formatDuration(e.summary?.seconds ?? NaN)}`
        : e.status === 'stopped'
          ? 'stopped'
          : `FAILED: ${e.error}`;
  return `[${e.finished}/${e.total}] ${e.cell.id} ${what}${[acc, loss].filter(Boolean).length ? `: ${[acc, loss].filter(Boolean).join(', ')}` : ''}`;
}

/** A bar over cells on a terminal; one line per finished cell elsewhere (logs, pipes). */
async function cellDisplay(total: number) {
  if (process.stdout.isTTY) {
    const bar = await createProgress({ total, label: 'sweep', mode: 'bar' });
    let failed = 0;
    return {
      event: (e: CellEvent) => {
        if (e.type !== 'finish') return;
        if (e.status === 'failed') failed++;
        bar.update(e.finished, { last: `${e.cell.id} ${e.status}`, ...(failed ? { failed } : {}) });
      },
      done: () => bar.done(),
    };
  }
  return { event: (e: CellEvent) => (e.type === 'finish' ? console.log(describe(e)) : undefined), done: () => {} };
}
