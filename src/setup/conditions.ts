// The train command's experimental conditions and objectives, as flags (what `latentlm sweep` varies):
//   --condition none|pause|latent|scratch|internalize   (--latents 0 and --baseline pause stay as aliases)
//   --latents K        latents per breakpoint (latent/pause), or c slots per replaced sub-step (internalize/pause+stages)
//   --stages N, --stage-steps N, --mix P, --reset-optimizer      the sub-step curriculum (internalize; pause with --stages)
//   --step-decode W, --distill W                                  objectives that give latents content
import type { Condition } from '../latent/sequence.js';
import type { SubstepRow, SubstepSchedule } from '../latent/curriculum.js';
import type { SplitRow } from '../latent/sequence.js';
import { withSubsteps, type ExpansionCoverage } from '../latent/substeps.js';
import { expandAnnotation } from '../data/expand.js';

export type ConditionName = 'none' | 'pause' | 'latent' | 'scratch' | 'internalize';
export const CONDITIONS: readonly ConditionName[] = ['none', 'pause', 'latent', 'scratch', 'internalize'];

/** The condition flags that take a value, and the one switch (the train command's options table adds them). */
export const CONDITION_VALUE_FLAGS = [
  'condition',
  'stages',
  'stage-steps',
  'mix',
  'step-decode',
  'distill',
  'preset',
  'test-rows',
  'gen-no-latents',
] as const;
export const CONDITION_SWITCHES = ['reset-optimizer'] as const;

export const conditionHelp = `  --condition C      none | pause | latent | scratch | internalize (default latent; --latents 0 = none, --baseline pause = pause)
                     scratch: each breakpoint's expanded sub-steps written as text (the explicit upper bound);
                     internalize: stage s replaces the first s sub-steps of every breakpoint by K latents each
                     (pause with --stages: pause slots on the identical schedule)
  --stages N         curriculum stages, the last replacing every sub-step (default 4 for internalize)
  --stage-steps N    steps per stage before the last (default: steps / stages)
  --mix P            share of each batch built at an earlier stage (default 0)
  --reset-optimizer  reset AdamW's moments at every stage change
  --step-decode W    weight of step decoding: each group of K slots predicts the result of the sub-step it replaced
  --distill W        weight of hidden-state distillation from the same model reading the scratch text (no gradient)
  --preset P         synthetic preset: default | easy | hard | serial (default: default)
  --test-rows N      held-out synthetic problems generated (default max(200, --gen-rows, --eval-rows))
  --gen-no-latents B also answer with latents off (1/0, default 1)`;

type Values = Record<string, string | boolean | undefined>;

export interface ResolvedCondition {
  name: ConditionName;
  /** The model-level condition: what fills the slots. */
  condition: Condition;
  k: number;
  substeps?: SubstepSchedule;
}

export function resolveCondition(
  v: Values,
  steps: number,
  num: (s: string | undefined, d: number, name: string) => number,
): ResolvedCondition {
  const str = (n: string) => v[n] as string | undefined;
  const k = num(str('latents'), 2, 'latents');
  if (!(k >= 0) || !Number.isInteger(k)) throw new Error(`--latents must be a non-negative integer, got '${str('latents')}'`);
  const baseline = str('baseline') ?? 'none';
  if (baseline !== 'none' && baseline !== 'pause') throw new Error(`--baseline must be none or pause, got '${baseline}'`);
  let name = str('condition') as ConditionName | undefined;
  if (name !== undefined && !CONDITIONS.includes(name))
    throw new Error(`--condition must be one of ${CONDITIONS.join(', ')}, got '${name}'`);
  name ??= k === 0 ? 'none' : baseline === 'pause' ? 'pause' : 'latent';
  if ((name === 'latent' || name === 'pause' || name === 'internalize') && k === 0)
    throw new Error(`--condition ${name} needs --latents >= 1`);
  const stagesGiven = str('stages') !== undefined;
  const curriculum = name === 'internalize' || (name === 'pause' && stagesGiven);
  for (const f of ['stage-steps', 'mix', 'step-decode', 'distill'])
    if (str(f) !== undefined && !curriculum) throw new Error(`--${f} needs --condition internalize (or pause with --stages)`);
  if (v['reset-optimizer'] && !curriculum) throw new Error('--reset-optimizer needs --condition internalize (or pause with --stages)');
  if (stagesGiven && !curriculum) throw new Error('--stages needs --condition internalize or pause');
  const condition: Condition = name === 'none' || name === 'scratch' ? 'none' : name === 'pause' ? 'pause' : 'latent';
  if (name === 'scratch') return { name, condition, k: 0, substeps: { kind: 'scratch', c: 1, stages: 1, stageSteps: steps } };
  if (!curriculum) return { name, condition, k };
  const stages = num(str('stages'), 4, 'stages');
  if (!(stages >= 1) || !Number.isInteger(stages)) throw new Error(`--stages must be a positive integer, got '${str('stages')}'`);
  const mix = num(str('mix'), 0, 'mix');
  if (!(mix >= 0 && mix < 1)) throw new Error(`--mix must be in [0, 1), got '${str('mix')}'`);
  const stageSteps = num(str('stage-steps'), Math.max(1, Math.floor(steps / stages)), 'stage-steps');
  if (!(stageSteps >= 1)) throw new Error(`--stage-steps must be >= 1, got '${str('stage-steps')}'`);
  const stepDecode = num(str('step-decode'), 0, 'step-decode'),
    distill = num(str('distill'), 0, 'distill');
  if (!(stepDecode >= 0) || !(distill >= 0)) throw new Error('--step-decode and --distill must be >= 0');
  return {
    name,
    condition,
    k,
    substeps: { kind: 'internalize', c: k, stages, stageSteps, mix, resetOptimizer: !!v['reset-optimizer'], stepDecode, distill },
  };
}

/** Rows with sub-steps for a curriculum condition; the latents cap and span length that generation needs. */
export function prepareSubsteps(train: SplitRow[], test: SplitRow[], c: number) {
  const tr = withSubsteps(train, expandAnnotation),
    te = withSubsteps(test, expandAnnotation);
  let maxSub = 1;
  const counts = new Map<number, number>();
  for (const r of [...tr.rows, ...te.rows])
    for (const s of r.substeps) {
      maxSub = Math.max(maxSub, s.length);
      counts.set(s.length, (counts.get(s.length) ?? 0) + 1);
    }
  const typical = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 1;
  return {
    train: tr.rows as SubstepRow[],
    test: te.rows as SubstepRow[],
    coverage: tr.coverage as ExpansionCoverage,
    testCoverage: te.coverage,
    maxSlots: c * maxSub,
    typicalSlots: c * typical,
  };
}
