// The end-of-run picture of an RL run: reward and accuracy, latent use and the decision rates, KL and clipping.
import { linePlot, multiPanel } from '../io/plot.js';
import type { GrpoStepRecord } from './grpo.js';

export interface RlEvalPoint {
  step: number;
  accuracy: number;
  latentsPerAnswer: number;
}

/** Trailing mean over `w` points, so a noisy per-step reward still shows its trend. */
export function smooth(points: [number, number][], w: number): [number, number][] {
  const out: [number, number][] = [];
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    sum += points[i][1];
    if (i >= w) sum -= points[i - w][1];
    out.push([points[i][0], sum / Math.min(i + 1, w)]);
  }
  return out;
}

export function rlReport(title: string, steps: GrpoStepRecord[], evals: RlEvalPoint[]): string {
  const w = Math.max(1, Math.round(steps.length / 30));
  const pts = (f: (s: GrpoStepRecord) => number) => steps.map((s) => [s.step, f(s)] as [number, number]);
  const panels = [
    linePlot({
      title: `${title}: reward`,
      xLabel: 'step',
      yLabel: 'mean reward / accuracy',
      series: [
        {
          name: `train reward (mean of ${w})`,
          points: smooth(
            pts((s) => s.reward),
            w,
          ),
        },
        {
          name: `train accuracy (mean of ${w})`,
          points: smooth(
            pts((s) => s.accuracy),
            w,
          ),
          dashed: true,
        },
        ...(evals.length
          ? [{ name: 'held-out accuracy (greedy text)', points: evals.map((e) => [e.step, e.accuracy] as [number, number]) }]
          : []),
      ],
    }),
    linePlot({
      title: 'latent use',
      xLabel: 'step',
      yLabel: 'latents per answer',
      series: [
        {
          name: `latents per answer (mean of ${w})`,
          points: smooth(
            pts((s) => s.latentsPerAnswer),
            w,
          ),
        },
        {
          name: `spans per answer (mean of ${w})`,
          points: smooth(
            pts((s) => s.spansPerAnswer),
            w,
          ),
          dashed: true,
        },
      ],
    }),
    linePlot({
      title: 'decisions',
      xLabel: 'step',
      yLabel: 'rate',
      series: [
        {
          name: 'start: P(open a span) per text position',
          points: smooth(
            pts((s) => s.startRate),
            w,
          ),
        },
        {
          name: 'end: P(close) per latent',
          points: smooth(
            pts((s) => s.endRate),
            w,
          ),
        },
        {
          name: 'zero-variance groups (fraction)',
          points: smooth(
            pts((s) => s.zeroVarianceGroups / Math.max(1, s.groups)),
            w,
          ),
          dashed: true,
        },
      ],
    }),
    linePlot({
      title: 'stability',
      xLabel: 'step',
      yLabel: 'value',
      series: [
        { name: 'KL to reference (k3, per action)', points: pts((s) => s.kl) },
        { name: 'clip fraction', points: pts((s) => s.clipFrac), dashed: true },
        {
          name: 'grad norm (pre-clip)',
          points: smooth(
            pts((s) => s.gradNorm),
            w,
          ),
        },
      ],
    }),
  ];
  return multiPanel(panels, 2);
}
