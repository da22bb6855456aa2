// The grid runner: every cell of a GridSpec is one `latentlm train` child process (same Node binary and loader as
// this process), at most `jobs` at a time, each in `<out>/<cell id>/` with its own train.log. A cell is done when
// its summary.json (written atomically by the trainer, last) is complete; done cells are skipped, so a killed sweep
// reruns only what is missing: a cell with a checkpoint continues through the train command's --resume, one without
// restarts. When all cells have run, table.md, table.json and grid.svg are written from the finished cells.
// Node-only (child processes, files); node: modules are imported when the sweep runs, so bundles stay neutral.
import { joinSource, mkdirp, readText, sourceExists, writeFileAtomic } from '../io/source.js';
import { planCells, type Cell, type GridSpec } from './grid.js';
import { sweepMarkdown, sweepRows, sweepSvg, type CellSummary, type FinishedCell, type SweepRow } from './table.js';

export type CellStatus = 'done' | 'skipped' | 'failed' | 'stopped';

export interface CellEvent {
  type: 'start' | 'finish';
  cell: Cell;
  dir: string;
  /** finish: done (ran to completion now), skipped (was complete already), failed, stopped (interrupted). */
  status?: CellStatus;
  /** start: continuing from the cell's checkpoint. */
  resumed?: boolean;
  summary?: CellSummary;
  /** failed: why, with the log to read. */
  error?: string;
  /** Cells finished so far (any status) and in all. */
  finished: number;
  total: number;
}

export interface SweepOptions {
  /** Output directory: one subdirectory per cell, plus sweep.json, table.md, table.json, grid.svg. */
  out: string;
  /** Concurrent cells (default: os.availableParallelism()). */
  jobs?: number;
  /** argv prefix that runs `latentlm train` (default: this Node binary and its loader flags with the package's CLI). */
  trainCommand?: string[];
  onEvent?: (e: CellEvent) => void;
  /** Aborting starts no further cells; running ones are sent SIGINT (they checkpoint and stop) unless `interruptChildren` says no. */
  signal?: AbortSignal;
  /** Whether an abort with this reason should SIGINT the running cells (default yes). A terminal's Ctrl-C already reached them. */
  interruptChildren?: (reason: unknown) => boolean;
  /** Title of grid.svg. */
  title?: string;
}

export interface CellOutcome {
  cell: Cell;
  dir: string;
  status: CellStatus;
  summary?: CellSummary;
  error?: string;
}

export interface SweepResult {
  cells: CellOutcome[];
  rows: SweepRow[];
  /** table.md's text. */
  table: string;
  files: { tableMd: string; tableJson: string; svg: string };
  stopped: boolean;
}

/** What a cell directory's cell.json records: the flags it was (or is being) trained with. */
interface CellRecord {
  id: string;
  condition: string;
  k: number;
  seed: number;
  args: string[];
}

/** The argv that starts `latentlm train` through the CLI this module belongs to, in the same runtime and loader. */
export async function defaultTrainCommand(): Promise<string[]> {
  const { fileURLToPath } = await import('node:url');
  const here = import.meta.url;
  // source checkout: src/sweep/run.ts next to src/cli.ts; package: a dist/ chunk next to dist/cli.js
  const fromSource = /\.ts$/.test(here);
  const cli = fileURLToPath(new URL(fromSource ? '../cli.ts' : './cli.js', here));
  if (!(await sourceExists(cli))) throw new Error(`sweep: cannot find the latentlm CLI at ${cli}; pass trainCommand`);
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Deno) return [process.execPath, 'run', '-A', cli, 'train'];
  const execArgv = [...process.execArgv];
  // Node runs the TypeScript sources through tsx (Bun needs nothing)
  if (fromSource && !g.Bun && !execArgv.some((a) => /tsx/.test(a))) execArgv.push('--import', 'tsx');
  return [process.execPath, ...execArgv, cli, 'train'];
}

/**
 * The cell's summary.json if it records a finished run: at least `steps` steps, and a final evaluation at the last
 * step (a run stopped on its last step has none, and --resume then runs just that evaluation).
 */
export async function readCompleteSummary(dir: string, steps: number): Promise<CellSummary | undefined> {
  const file = joinSource(dir, 'summary.json');
  if (!(await sourceExists(file))) return undefined;
  let s: CellSummary;
  try {
    s = JSON.parse(await readText(file)) as CellSummary;
  } catch {
    return undefined; // not ours to judge further: rerunning the cell rewrites it atomically
  }
  return typeof s?.steps === 'number' && s.steps >= steps && typeof s.final?.step === 'number' && s.final.step >= steps ? s : undefined;
}

async function readCellRecord(dir: string): Promise<CellRecord | undefined> {
  const file = joinSource(dir, 'cell.json');
  if (!(await sourceExists(file))) return undefined;
  try {
    return JSON.parse(await readText(file)) as CellRecord;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); remove the cell directory to rerun it`);
  }
}

/** Whether a cell directory has a checkpoint to continue from (the checkpoint writer's fallback copy counts). */
export const hasCheckpoint = async (dir: string) =>
  (await sourceExists(`${dir}/checkpoint/state.json`)) || (await sourceExists(`${dir}/checkpoint.old/state.json`));

/** Runs (or completes) the grid and writes its table. Resolves when every cell has finished or the sweep was stopped. */
export async function runSweep(spec: GridSpec, opts: SweepOptions): Promise<SweepResult> {
  const os = await import('node:os');
  const { join } = await import('node:path');
  const cells = planCells(spec);
  const jobs = opts.jobs ?? os.availableParallelism?.() ?? os.cpus().length;
  if (!(Number.isInteger(jobs) && jobs >= 1)) throw new Error(`sweep: --jobs must be a positive integer, got ${opts.jobs}`);
  const trainCommand = opts.trainCommand ?? (await defaultTrainCommand());
  const dirOf = (c: Cell) => join(opts.out, c.id);

  // Check every existing cell before launching anything: a directory trained with other flags would mix two
  // experiments in one table.
  for (const c of cells) {
    const rec = await readCellRecord(dirOf(c));
    if (rec && JSON.stringify(rec.args) !== JSON.stringify(c.args))
      throw new Error(
        `${dirOf(c)} was trained with other flags (${rec.args.join(' ')}) than this sweep gives it (${c.args.join(' ')}); use another --out or remove that directory`,
      );
    if (!rec && (await sourceExists(joinSource(dirOf(c), 'summary.json'))))
      throw new Error(`${dirOf(c)} holds a run this sweep did not start (no cell.json); use another --out or remove that directory`);
  }
  await mkdirp(opts.out);
  const unlock = await lockSweep(join(opts.out, 'sweep.lock'));
  try {
    return await runCells(spec, opts, cells, jobs, trainCommand, dirOf);
  } finally {
    await unlock();
  }
}

/**
 * One sweep per output directory at a time: two would train the same cells into the same files. The lock holds the
 * owner's pid, so a lock left by a killed sweep (its pid gone) is taken over rather than blocking forever.
 */
async function lockSweep(file: string): Promise<() => Promise<void>> {
  const fs = await import('node:fs/promises');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx' });
      return () => fs.rm(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      if (pid && pid !== process.pid && isAlive(pid))
        throw new Error(`${file}: another sweep (pid ${pid}) is running into this directory; wait for it or stop it`);
      await fs.rm(file, { force: true }); // stale: its sweep was killed
    }
  }
  throw new Error(`${file}: cannot take the sweep lock`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function runCells(
  spec: GridSpec,
  opts: SweepOptions,
  cells: Cell[],
  jobs: number,
  trainCommand: string[],
  dirOf: (c: Cell) => string,
): Promise<SweepResult> {
  const { join } = await import('node:path');
  await writeFileAtomic(join(opts.out, 'sweep.json'), JSON.stringify({ ...spec, cells: cells.map((c) => c.id) }, null, 2));

  const outcomes: CellOutcome[] = new Array(cells.length);
  const running = new Set<import('node:child_process').ChildProcess>();
  let finished = 0;
  const report = (e: Omit<CellEvent, 'finished' | 'total'>) => opts.onEvent?.({ ...e, finished, total: cells.length });
  const settle = (i: number, o: CellOutcome) => {
    if (outcomes[i]) return; // settled once (an onEvent that throws must not count a cell twice)
    outcomes[i] = o;
    finished++;
    report({ type: 'finish', cell: o.cell, dir: o.dir, status: o.status, summary: o.summary, error: o.error });
  };
  const onAbort = () => {
    if (opts.interruptChildren && !opts.interruptChildren(opts.signal?.reason)) return;
    for (const ch of running) ch.kill('SIGINT');
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const runCell = async (i: number) => {
    const cell = cells[i]!,
      dir = dirOf(cell);
    if (opts.signal?.aborted) return settle(i, { cell, dir, status: 'stopped' });
    await mkdirp(dir);
    const record: CellRecord = { id: cell.id, condition: cell.condition, k: cell.k, seed: cell.seed, args: cell.args };
    await writeFileAtomic(join(dir, 'cell.json'), JSON.stringify(record, null, 2));
    const resumed = await hasCheckpoint(dir);
    const argv = [...trainCommand.slice(1), ...cell.args, '--out', dir, ...(resumed ? ['--resume'] : [])];
    report({ type: 'start', cell, dir, resumed });
    const exit = await spawnLogged(trainCommand[0]!, argv, join(dir, 'train.log'), running);
    const summary = await readCompleteSummary(dir, spec.steps);
    if (summary) return settle(i, { cell, dir, status: 'done', summary });
    const why = exit.error ?? (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`);
    const status: CellStatus = opts.signal?.aborted ? 'stopped' : 'failed';
    settle(i, { cell, dir, status, error: `${cell.id}: train ${why} without a complete summary.json; see ${join(dir, 'train.log')}` });
  };

  // Finished cells first, in grid order; then a fixed pool of `jobs` workers pulling the next pending cell: at most
  // `jobs` children at any time.
  const pending: number[] = [];
  for (const [i, cell] of cells.entries()) {
    const done = await readCompleteSummary(dirOf(cell), spec.steps);
    if (done) settle(i, { cell, dir: dirOf(cell), status: 'skipped', summary: done });
    else pending.push(i);
  }
  let next = 0;
  const worker = async () => {
    while (next < pending.length) {
      const i = pending[next++]!;
      // a cell that cannot even be set up (unwritable directory, ...) fails alone; the others still run
      await runCell(i).catch((e: Error) =>
        settle(i, { cell: cells[i]!, dir: dirOf(cells[i]!), status: 'failed', error: `${cells[i]!.id}: ${e.message}` }),
      );
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, pending.length) }, worker));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }

  const finishedCells: FinishedCell[] = outcomes.filter((o) => o.summary).map((o) => ({ cell: o.cell, summary: o.summary! }));
  const rows = sweepRows(finishedCells);
  const missing = outcomes.filter((o) => !o.summary).map((o) => o.cell.id);
  const sources = [...new Set(finishedCells.map((f) => f.summary.data).filter((d): d is string => typeof d === 'string'))];
  const synthetic = sources.every((d) => d.startsWith('synthetic'));
  const note = [
    `${finishedCells.length} of ${cells.length} cells finished${missing.length ? ` (missing: ${missing.join(', ')})` : ''}; ${spec.steps} steps each; data: ${sources.join('; ') || 'unknown'}.`,
    !sources.length
      ? ''
      : synthetic
        ? 'Synthetic data: each seed draws its own held-out problems, so the pooled problems are distinct.'
        : 'Every seed grades the same held-out problems, so the pooled count has each problem once per seed.',
  ]
    .join(' ')
    .trim();
  const table = sweepMarkdown(rows, note);
  const files = { tableMd: join(opts.out, 'table.md'), tableJson: join(opts.out, 'table.json'), svg: join(opts.out, 'grid.svg') };
  await writeFileAtomic(files.tableMd, table);
  await writeFileAtomic(
    files.tableJson,
    JSON.stringify({ spec, rows, cells: outcomes.map((o) => ({ id: o.cell.id, dir: o.dir, status: o.status, error: o.error })) }, null, 2),
  );
  await writeFileAtomic(files.svg, sweepSvg(rows, opts.title ?? `sweep (${spec.steps} steps)`));
  return { cells: outcomes, rows, table, files, stopped: !!opts.signal?.aborted };
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: string;
}

/** Spawns a child whose stdout and stderr are appended to `log`; resolves when it exits. */
async function spawnLogged(
  cmd: string,
  args: string[],
  log: string,
  running: Set<import('node:child_process').ChildProcess>,
): Promise<Exit> {
  const { spawn } = await import('node:child_process');
  const fs = await import('node:fs');
  const fd = fs.openSync(log, 'a');
  try {
    fs.writeSync(
      fd,
      `\n# ${new Date().toISOString()} ${[cmd, ...args].map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n`,
    );
    return await new Promise<Exit>((resolve) => {
      // same process group as the sweep: killing the sweep's group (or a terminal's Ctrl-C) reaches every cell
      const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
      running.add(child);
      child.once('error', (e) => {
        running.delete(child);
        resolve({ code: null, signal: null, error: `could not start ${cmd}: ${e.message}` });
      });
      child.once('exit', (code, signal) => {
        running.delete(child);
        resolve({ code, signal });
      });
    });
  } finally {
    fs.closeSync(fd);
  }
}
