// Several phase-1 runs side by side: the question every latent experiment asks is "did this run beat its baseline on
// the step the latents should help, and does it use its latents?", which a single run's report cannot answer.
// Pure (no I/O) so the browser demo and the CLI (`latentlm compare`) draw the same picture.
import { barPlot, linePlot, multiPanel, PALETTE } from '../io/plot.js';
import type { EvalRecord } from './trainer.js';

export interface RunForComparison {
  /** Legend label, e.g. the run directory's name. */
  name: string;
  evals: EvalRecord[];
}

export interface RunComparison {
  svg: string;
  /** Markdown table of each run's last evaluation (what a README or a note quotes). */
  table: string;
}

const pts = (evals: EvalRecord[], pick: (e: EvalRecord) => number | undefined) =>
  evals.map((e) => [e.step, pick(e) ?? NaN] as [number, number]).filter((p) => Number.isFinite(p[1]));

const signed = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`);
const fixed = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(3));
const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(1)} %`);

/**
 * Overlays runs: test loss and post-breakpoint loss over steps (log scale), the swapped and removed usage gaps over
 * steps after step 0 (a run without latents has none), and the last accuracy with and without latents as bars.
 */
export function compareRuns(runs: RunForComparison[], title = 'phase-1 runs compared'): RunComparison {
  if (!runs.length) throw new Error('compareRuns: no runs given');
  // one colour per run in every panel (a run without latents has no gap series, so index colours would shift)
  const evs = runs.map((r, i) => ({
    name: r.name,
    color: PALETTE[i % PALETTE.length]!,
    ev: r.evals.filter((e) => Number.isFinite(e.testLoss)),
  }));
  // the gaps at step 0 (untrained markers, latents never seen) are off the scale of everything after; leave them out
  const trained = (ev: EvalRecord[]) => (ev.some((e) => e.step > 0) ? ev.filter((e) => e.step > 0) : ev);
  const panels = [
    linePlot({
      title: `${title}: post-breakpoint loss (the step latents should help)`,
      xLabel: 'step',
      yLabel: 'nats/token',
      logY: true,
      series: evs.map(({ name, color, ev }) => ({ name, color, points: pts(ev, (e) => e.postBreakLoss) })),
    }),
    linePlot({
      title: 'test loss (all answer tokens)',
      xLabel: 'step',
      yLabel: 'nats/token',
      logY: true,
      series: evs.map(({ name, color, ev }) => ({ name, color, points: pts(ev, (e) => e.testLoss) })),
    }),
  ];
  const swapped = evs
    .map(({ name, color, ev }) => ({ name, color, points: pts(trained(ev), (e) => e.usage.gapSwapped) }))
    .filter((s) => s.points.length);
  if (swapped.length)
    panels.push(
      linePlot({
        title: 'latents from another example − normal (> 0: content used)',
        xLabel: 'step',
        yLabel: 'loss gap (nats)',
        series: swapped,
      }),
    );
  const removed = evs
    .map(({ name, color, ev }) => ({ name, color, points: pts(trained(ev), (e) => e.usage.gapRemoved) }))
    .filter((s) => s.points.length);
  if (removed.length)
    panels.push(
      linePlot({ title: 'latents removed − normal (> 0: slots used)', xLabel: 'step', yLabel: 'loss gap (nats)', series: removed }),
    );
  const lastAcc = runs.map((r) => [...r.evals].reverse().find((e) => e.accuracy !== undefined));
  if (lastAcc.some((e) => e)) {
    panels.push(
      barPlot({
        title: 'held-out accuracy at the last evaluation',
        yLabel: 'accuracy',
        minTop: 1,
        categories: runs.map((r) => r.name),
        series: [
          { name: 'with latents', values: lastAcc.map((e) => e?.accuracy ?? NaN) },
          { name: 'latents off', values: lastAcc.map((e) => e?.accuracyNoLatents ?? NaN) },
        ],
      }),
    );
  }
  const rows = runs.map((r, i) => {
    const last = evs[i]!.ev[evs[i]!.ev.length - 1];
    const acc = lastAcc[i];
    return `| ${r.name} | ${last?.step ?? '–'} | ${fixed(last?.testLoss)} | ${fixed(last?.postBreakLoss)} | ${signed(last?.usage.gapZeroed)} | ${signed(last?.usage.gapSwapped)} | ${signed(last?.usage.gapRemoved)} | ${pct(acc?.accuracy)} / ${pct(acc?.accuracyNoLatents)} |`;
  });
  const table = [
    '| run | step | test loss | post-break loss | zeroed | swapped | removed | accuracy (latents on / off) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  return { svg: multiPanel(panels, Math.min(panels.length, 3)), table };
}
