// The end-of-run picture: train/test loss curves, the latent-usage gaps and accuracy, one SVG readable anywhere.
import { barPlot, linePlot, multiPanel } from '../io/plot.js';
import type { EvalRecord, StepRecord } from './trainer.js';

export function phase1Report(title: string, steps: StepRecord[], evals: EvalRecord[]): string {
  const ev = evals.filter((e) => Number.isFinite(e.testLoss));
  const loss = linePlot({
    title: `${title}: loss`,
    xLabel: 'step',
    yLabel: 'cross-entropy (nats/token)',
    logY: true,
    series: [
      { name: 'train', points: steps.map((s) => [s.step, s.loss] as [number, number]) },
      { name: 'test', points: ev.map((e) => [e.step, e.testLoss] as [number, number]) },
      { name: 'test, first tokens after a breakpoint', points: ev.map((e) => [e.step, e.postBreakLoss] as [number, number]), dashed: true },
    ],
  });
  const usageSeries = [
    {
      name: 'zeroed - normal',
      points: ev.filter((e) => e.usage.gapZeroed !== undefined).map((e) => [e.step, e.usage.gapZeroed!] as [number, number]),
    },
    {
      name: 'swapped - normal',
      points: ev.filter((e) => e.usage.gapSwapped !== undefined).map((e) => [e.step, e.usage.gapSwapped!] as [number, number]),
    },
    {
      name: 'removed - normal',
      points: ev.filter((e) => e.usage.gapRemoved !== undefined).map((e) => [e.step, e.usage.gapRemoved!] as [number, number]),
    },
  ].filter((s) => s.points.length);
  const panels = [loss];
  if (usageSeries.length)
    panels.push(
      linePlot({
        title: 'latent usage: post-breakpoint loss gap (> 0: latents are used)',
        xLabel: 'step',
        yLabel: 'loss gap (nats)',
        series: usageSeries,
      }),
    );
  const last = [...evals].reverse().find((e) => e.accuracy !== undefined);
  if (last) {
    const categories = ['with latents'],
      values = [last.accuracy!];
    if (last.accuracyNoLatents !== undefined) categories.push('latents off'), values.push(last.accuracyNoLatents);
    panels.push(
      barPlot({
        title: `held-out accuracy at step ${last.step}`,
        yLabel: 'accuracy',
        categories,
        series: [{ name: 'accuracy', values }],
        minTop: 1,
      }),
    );
  }
  return multiPanel(panels, Math.min(panels.length, 3));
}
