// The sweep's one table and one picture: per condition x k, the mean over seeds with per-seed values, accuracy with
// two 95 % intervals (pooled-problem Wilson and seed-to-seed t; see stats.ts for why both), post-breakpoint loss,
// the three latent-usage probes, reasoning positions per answer and wall time. Pure (no I/O).
import { barPlot, multiPanel } from '../io/plot.js';
import type { EvalRecord } from '../latent/trainer.js';
import type { Cell } from './grid.js';
import { meanInterval, wilsonInterval, type Interval, type MeanInterval } from './stats.js';

/** What the sweep reads from a finished cell's summary.json (written by `latentlm train`). */
export interface CellSummary {
  steps: number;
  seconds?: number;
  final?: EvalRecord;
  [field: string]: unknown;
}

export interface FinishedCell {
  cell: Cell;
  summary: CellSummary;
}

/** A quantity over the seeds of one condition x k: mean, t interval, and each seed's value (null: not measured). */
export interface SeedMetric extends MeanInterval {
  perSeed: (number | null)[];
}

export interface PooledAccuracy {
  correct: number;
  n: number;
  p: number;
  /** 95 % Wilson score interval. */
  ci: Interval;
}

export interface SweepRow {
  condition: string;
  k: number;
  seeds: number[];
  accuracy: SeedMetric;
  /** All seeds' graded problems as one binomial count; undefined when a cell did not record how many it graded. */
  accuracyPooled?: PooledAccuracy;
  accuracyNoLatents: SeedMetric;
  testLoss: SeedMetric;
  postBreakLoss: SeedMetric;
  gapZeroed: SeedMetric;
  gapSwapped: SeedMetric;
  gapRemoved: SeedMetric;
  positionsPerAnswer: SeedMetric;
  /** Positions between a breakpoint's text and its result (slots, markers, scratch text), where the trainer reports it. */
  positionsPerBreakpoint: SeedMetric;
  latentsPerAnswer: SeedMetric;
  /** Seconds of the train run that finished each cell. */
  seconds: SeedMetric;
}

function seedMetric(cells: FinishedCell[], pick: (s: CellSummary) => number | undefined, bounds?: Interval): SeedMetric {
  const perSeed = cells.map((c) => {
    const v = pick(c.summary);
    return v !== undefined && Number.isFinite(v) ? v : null;
  });
  const m = meanInterval(perSeed.map((v) => v ?? undefined));
  // a proportion's t interval can reach past 0 or 1; what lies outside is impossible, so it is cut off
  if (m.ci && bounds) m.ci = { lo: Math.max(bounds.lo, m.ci.lo), hi: Math.min(bounds.hi, m.ci.hi) };
  return { ...m, perSeed };
}

function pooledAccuracy(cells: FinishedCell[]): PooledAccuracy | undefined {
  let correct = 0,
    n = 0;
  for (const { summary } of cells) {
    const acc = summary.final?.accuracy,
      rows = summary.final?.accuracyRows;
    if (acc === undefined || !rows) return undefined;
    // accuracy is (problems right) / rows, so this recovers the integer count exactly
    correct += Math.round(acc * rows);
    n += rows;
  }
  return n ? { correct, n, p: correct / n, ci: wilsonInterval(correct, n) } : undefined;
}

/** One row per condition x k (in the grid's order), over the finished cells given. */
export function sweepRows(finished: FinishedCell[]): SweepRow[] {
  const groups = new Map<string, FinishedCell[]>();
  for (const f of finished) {
    const key = `${f.cell.condition}\u0000${f.cell.k}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.values()].map((cells) => {
    cells.sort((a, b) => a.cell.seed - b.cell.seed);
    const m = (pick: (s: CellSummary) => number | undefined, bounds?: Interval) => seedMetric(cells, pick, bounds);
    const unit = { lo: 0, hi: 1 };
    return {
      condition: cells[0]!.cell.condition,
      k: cells[0]!.cell.k,
      seeds: cells.map((c) => c.cell.seed),
      accuracy: m((s) => s.final?.accuracy, unit),
      accuracyPooled: pooledAccuracy(cells),
      accuracyNoLatents: m((s) => s.final?.accuracyNoLatents, unit),
      testLoss: m((s) => s.final?.testLoss),
      postBreakLoss: m((s) => s.final?.postBreakLoss),
      gapZeroed: m((s) => s.final?.usage?.gapZeroed),
      gapSwapped: m((s) => s.final?.usage?.gapSwapped),
      gapRemoved: m((s) => s.final?.usage?.gapRemoved),
      positionsPerAnswer: m((s) => s.final?.positionsPerAnswer),
      positionsPerBreakpoint: m((s) => (s.final as { reasoningPositions?: number } | undefined)?.reasoningPositions),
      latentsPerAnswer: m((s) => s.final?.latentsPerAnswer),
      seconds: m((s) => s.seconds),
    };
  });
}

export const rowLabel = (r: Pick<SweepRow, 'condition' | 'k'>) => (r.k ? `${r.condition} k=${r.k}` : r.condition);

const DASH = '–';
const ok = (x: number | undefined | null): x is number => x !== undefined && x !== null && Number.isFinite(x);
const pct = (x: number | undefined | null) => (ok(x) ? (100 * x).toFixed(1) : DASH);
const fix = (x: number | undefined | null, d = 3) => (ok(x) ? x.toFixed(d) : DASH);
const sgn = (x: number | undefined | null, d = 3) => (ok(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(d)}` : DASH);
const secs = (x: number | undefined | null) =>
  ok(x) ? (x >= 90 ? `${Math.floor(x / 60)}m${String(Math.round(x % 60)).padStart(2, '0')}s` : `${x.toFixed(0)} s`) : DASH;
const range = (ci: Interval | undefined, f: (x: number) => string) => (ci ? ` [${f(ci.lo)}, ${f(ci.hi)}]` : '');

/** `mean [lo, hi] (seed values)`; one seed: just its value. */
function cell(m: SeedMetric, f: (x: number | undefined | null) => string, withSeeds = true): string {
  if (!m.n) return DASH;
  const seeds = withSeeds && m.perSeed.length > 1 ? ` (${m.perSeed.map((v) => f(v)).join(' / ')})` : '';
  return `${f(m.mean)}${range(m.ci, f)}${seeds}`;
}

/** The markdown table with a legend saying which interval is which. */
export function sweepMarkdown(rows: SweepRow[], note?: string): string {
  // positions per breakpoint only where the trainer measures them
  const perBreak = rows.some((r) => r.positionsPerBreakpoint.n > 0);
  const head = [
    'condition',
    'seeds',
    'accuracy %, pooled problems [Wilson 95 %]',
    'accuracy %, mean of seeds [t 95 %] (per seed)',
    'latents off %',
    'post-break loss [t 95 %] (per seed)',
    'zeroed',
    'swapped',
    'removed',
    'positions / answer',
    ...(perBreak ? ['positions / breakpoint'] : []),
    'wall time / cell',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const pooled = r.accuracyPooled
      ? `${pct(r.accuracyPooled.p)}${range(r.accuracyPooled.ci, pct)} (${r.accuracyPooled.correct}/${r.accuracyPooled.n})`
      : DASH;
    lines.push(
      `| ${[
        rowLabel(r),
        r.seeds.join(','),
        pooled,
        cell(r.accuracy, pct),
        cell(r.accuracyNoLatents, pct, false),
        cell(r.postBreakLoss, fix),
        cell(r.gapZeroed, sgn, false),
        cell(r.gapSwapped, sgn, false),
        cell(r.gapRemoved, sgn, false),
        cell(r.positionsPerAnswer, (x) => fix(x, 1), false),
        ...(perBreak ? [cell(r.positionsPerBreakpoint, (x) => fix(x, 1), false)] : []),
        secs(r.seconds.mean),
      ].join(' | ')} |`,
    );
  }
  const legend =
    "Pooled accuracy: all seeds' graded held-out problems counted together, with a 95 % Wilson score interval (how well " +
    "this recipe's accuracy on these problems is known). Mean of seeds: the per-seed accuracies' mean with a 95 % Student-t " +
    'interval (n − 1 degrees of freedom: how much it moves between training seeds; none with one seed). Losses in nats/token ' +
    'on the first tokens after each calculator breakpoint; zeroed / swapped / removed: that loss with the latents zeroed, ' +
    'taken from another example, or removed, minus the normal one (mean over seeds [t 95 %]; > 0: the latents are used). ' +
    'Positions / answer: input positions of a generated answer with latents on (text tokens + latents + span markers)' +
    (perBreak ? "; positions / breakpoint: between a breakpoint's text and its result (slots, markers, scratch text). " : '. ') +
    'Wall time: mean over seeds of the train run that finished each cell.';
  return [lines.join('\n'), '', legend, ...(note ? ['', note] : [])].join('\n') + '\n';
}

/** One SVG: bars per condition x k with their 95 % intervals as whiskers. */
export function sweepSvg(rows: SweepRow[], title = 'sweep'): string {
  const categories = rows.map(rowLabel);
  const ci = (m: SeedMetric) => m.ci ?? null;
  const panel = (t: string, yLabel: string, values: number[], errors: (Interval | null)[], minTop?: number) =>
    barPlot({
      title: t,
      yLabel,
      categories,
      series: [{ name: yLabel, values, errors }],
      minTop,
      width: Math.max(420, 90 * rows.length + 120),
    });
  const panels = [
    panel(
      'held-out accuracy (pooled, Wilson 95 %)',
      'accuracy',
      rows.map((r) => r.accuracyPooled?.p ?? r.accuracy.mean),
      rows.map((r) => r.accuracyPooled?.ci ?? ci(r.accuracy)),
    ),
    // the other panels: a per-seed metric's mean with its seed-to-seed t interval
    ...(
      [
        ['post-breakpoint loss (mean of seeds, t 95 %)', 'nats/token', 'postBreakLoss'],
        ['latents from another example − normal (t 95 %)', 'swapped gap (nats)', 'gapSwapped'],
        ['latents removed − normal (t 95 %)', 'removed gap (nats)', 'gapRemoved'],
        ['reasoning positions per answer (t 95 %)', 'positions', 'positionsPerAnswer'],
      ] as const
    ).map(([t, yLabel, key]) =>
      panel(
        t,
        yLabel,
        rows.map((r) => r[key].mean),
        rows.map((r) => ci(r[key])),
      ),
    ),
  ];
  return multiPanel(panels, 3, { title });
}
