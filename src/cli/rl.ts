// `latentlm rl` and `examples/rl.ts`: phase 2, GRPO-style RL with verifiable rewards. The policy writes text and
// latent spans freely (the start/end heads' decisions are sampled); only the text's final answer is graded.
// Writes OUT/metrics.jsonl (step, eval and sample records), OUT/report.svg, OUT/summary.json, OUT/checkpoint/.
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import type { Backend } from '../backend/types.js';
import { sourceExists, writeFileAtomic } from '../io/source.js';
import type { LogisticHead } from '../latent/heads.js';
import type { Condition } from '../latent/sequence.js';
import type { Qwen2 } from '../model/qwen2.js';
import { GrpoTrainer, type GrpoOptions, type GrpoStepRecord, type Task } from '../rl/grpo.js';
import { wasmChecker } from '../rl/rewards.js';
import { loadData, loadModel, pickBackend, type ModelTokenizer } from '../setup/loaders.js';
import { parseFlags, UsageError } from './_args.js';
import { EvalInterrupted, installStopSignal, yieldToEventLoop, type StopSignal } from '../train/signals.js';
import { checkResume, readRecords } from '../train/resume.js';
import { readCheckpointState } from '../latent/checkpoint.js';
import { BACKEND_CHOICES, FlagReader, flagTable, joinNegativeValues, RUN_FLAGS, runFlagsHelp, valueFlagNames } from './flags.js';
import { feedbackLabel, IDENTITY_FEEDBACK, type FeedbackSpec } from '../rl/feedback.js';
import { loadPhase1Checkpoint } from '../rl/initial.js';

export const rlHelp = `latentlm rl — phase 2: RL with verifiable rewards (GRPO-style); text and latents, only the answer is graded

Usage: npx tsx examples/rl.ts [flags]     (also: bun run examples/rl.ts, deno run -A examples/rl.ts, latentlm rl)

  --steps N            policy updates (default 300)
  --group G            completions per question (default 8)
  --questions Q        questions per step (default 2): a step trains on Q x G completions
  --lr X               learning rate (default 5e-5 for the default model, 1e-6 with --model)
  --beta X             KL coefficient to the frozen initial policy, k3 estimator (default 0: no reference model)
  --eps X              clip epsilon (default 0.2)
  --eps-high X         upper clip epsilon (default = --eps; DAPO uses 0.28)
  --ppo-epochs N       updates per sampled batch (default 1: on-policy)
  --latent-cost X      reward penalty per latent used (default 0)
  --format-reward X    reward for writing the answer as '#### N' (default 0)
  --strict             grade only '#### N' answers (no last-number fallback)
  --filter-zero-variance  leave groups whose rewards are all equal out of the loss
  --condition C        latent | pause | none (default: the --init checkpoint's, else latent)
  --mode M             full | two-trunk (default: the --init checkpoint's, else full)
  --max-latents N      cap on latents per span (default 8)
  --latent-budget N    cap on latents per answer (default 24)
  --max-new N          cap on text tokens per answer (default 160)
  --temperature X      sampling temperature for text (default 1)
  --head-lr X          Adam learning rate of the start/end heads (default 1e-3)
  --micro-batch N      text-only completions per replay forward (default = --group; lower it to save activation
                       memory); completions with latent spans always replay one at a time
  --init DIR           a phase-1 checkpoint (runs/train/checkpoint): weights, markers, start/end heads and its
                       latent feedback (identity, scaled or gated; the gate trains on with the latent parameters)
  --model DIR|URL|ID   an HF Qwen2 directory (config.json + model.safetensors) or a Hub id (Qwen/Qwen2-0.5B, through
                       the HF cache) instead of the embedded default
  --data PATH|URL|ID   a GSM8K .jsonl file, a directory with train.jsonl/test.jsonl, or a Hub data set id
                       (openai/gsm8k) (default: synthetic problems)
  --preset P           synthetic difficulty: easy | default | hard (default: default)
  --out DIR            output directory (default runs/rl)
  --eval-every N       steps between held-out evaluations (default 50; 0 = start and end only)
  --eval-rows N        held-out problems per evaluation (default 32)
  --sample-every N     log sampled completions (latent spans marked) every N steps (default 25)
  --ckpt-every N       steps between checkpoints (default 25; 0 = only at the end and on Ctrl-C)
${runFlagsHelp(23)}
  --seed N             data order and sampling (default 0)
  --help               this text

Ctrl-C stops after the current step and saves a checkpoint.`;

interface Initial {
  model: Qwen2;
  tok: ModelTokenizer;
  source: string;
  heads: { start?: LogisticHead; end?: LogisticHead };
  phase1?: Record<string, unknown>;
  /** The latent feedback the --init checkpoint trained with (identity without --init). */
  feedback: FeedbackSpec;
}

/** The initial policy: the base model (default or --model), then a phase-1 checkpoint over it (--init). */
async function loadInitial(be: Backend, model: string | undefined, init: string | undefined, allowNonFinite = false): Promise<Initial> {
  const loaded = await loadModel(be, model, { allowNonFinite });
  const out: Initial = { model: loaded.model, tok: loaded.tok, source: loaded.source, heads: {}, feedback: IDENTITY_FEEDBACK };
  if (init) {
    const p1 = await loadPhase1Checkpoint(init, loaded.model);
    out.heads = p1.heads;
    out.phase1 = p1.options;
    out.feedback = p1.feedback;
    out.source += ` + phase-1 checkpoint ${init} (step ${p1.step})`;
  }
  return out;
}

const RL_FLAGS = {
  ...RUN_FLAGS,
  // the GRPO objective; sampling; the policy's start and the synthetic data
  ...flagTable(['steps', 'group', 'questions', 'lr', 'beta', 'eps', 'eps-high', 'ppo-epochs', 'latent-cost', 'format-reward', 'head-lr']),
  ...flagTable(['condition', 'mode', 'max-latents', 'latent-budget', 'max-new', 'temperature', 'sample-every', 'micro-batch']),
  ...flagTable(['init', 'preset'], ['strict', 'filter-zero-variance']),
};
const parseRlFlags = (argv: string[]) => parseFlags('rl', joinNegativeValues(argv, valueFlagNames(RL_FLAGS)), RL_FLAGS);

/** The numeric flags, typed and range-checked (UsageError naming the flag otherwise). */
function rlNumbers(f: FlagReader, hasModel: boolean) {
  return {
    seed: f.int('seed', 0),
    ckptEvery: f.int('ckpt-every', 25, { min: 0 }),
    evalRows: f.int('eval-rows', 32, { min: 0 }),
    steps: f.int('steps', 300, { min: 1 }),
    beta: f.number('beta', 0, { min: 0 }),
    evalEvery: f.int('eval-every', 50, { min: 0 }),
    group: f.int('group', 8, { min: 1 }),
    questions: f.int('questions', 2, { min: 1 }),
    lr: f.number('lr', hasModel ? 1e-6 : 5e-5, { above: 0, max: 10 }),
    eps: f.number('eps', 0.2, { above: 0, max: 1 }),
    epsHigh: f.has('eps-high') ? f.number('eps-high', 0.2, { above: 0, max: 10 }) : undefined,
    ppoEpochs: f.int('ppo-epochs', 1, { min: 1 }),
    maxNew: f.int('max-new', 160, { min: 1 }),
    temperature: f.number('temperature', 1, { min: 0 }),
    maxLatents: f.int('max-latents', 8, { min: 1 }),
    latentBudget: f.int('latent-budget', 24, { min: 0 }),
    latentCost: f.number('latent-cost', 0),
    formatReward: f.number('format-reward', 0),
    headLr: f.number('head-lr', 1e-3, { above: 0, max: 10 }),
    microBatch: f.has('micro-batch') ? f.int('micro-batch', 8, { min: 1 }) : undefined,
    sampleEvery: f.int('sample-every', 25, { min: 0 }),
    threads: f.has('threads') ? f.int('threads', 1, { min: 1, max: 1024 }) : undefined,
  };
}

export async function rlMain(argv: string[]): Promise<number> {
  const { values } = parseRlFlags(argv);
  if (values.help) {
    console.log(rlHelp);
    return 0;
  }
  const f = new FlagReader('rl', values);
  const backendName = f.has('backend') ? f.choice('backend', BACKEND_CHOICES, 'cpu') : undefined;
  const n = rlNumbers(f, !!values.model); // every numeric flag checked before anything loads
  const out = values.out ?? 'runs/rl';
  const t0 = performance.now();
  // installed before anything slow, so a Ctrl-C while the model loads cannot end the run unsaved
  const stop = installStopSignal({ checkpointDir: `${out}/checkpoint`, log: (l) => console.log(l) });
  try {
    return await rlRun(values, n, out, t0, stop, backendName);
  } finally {
    stop.dispose();
  }
}

async function rlRun(
  values: ReturnType<typeof parseRlFlags>['values'],
  n: ReturnType<typeof rlNumbers>,
  out: string,
  t0: number,
  stop: StopSignal,
  backendName: string | undefined,
): Promise<number> {
  const seed = n.seed;
  const ckptDir = `${out}/checkpoint`;
  const saved = values.resume ? await readCheckpointState(ckptDir) : null;
  if (values.resume && !saved)
    throw new UsageError(`rl: --resume: there is no checkpoint in ${ckptDir} to continue (run without --resume to start afresh)`);
  const be = await pickBackend(backendName, (l) => console.log(l), n.threads);
  let initial: Initial;
  try {
    initial = await loadInitial(be, values.model, values.init, values['allow-nonfinite']);
  } catch (e) {
    if (!values.model && /default model|default-model/i.test((e as Error).message)) {
      console.error(
        `The embedded default model (models/default) is not built in this checkout, so there is nothing to train.\n` +
          `Build it first (npx tsx examples/pretrain.ts), or run on a real Qwen2 with --model DIR --data PATH.\n(${(e as Error).message})`,
      );
      be.destroy();
      return 2;
    }
    throw e;
  }
  const { model, tok } = initial;
  const p1 = initial.phase1 ?? {};
  const condition = (values.condition ?? (p1.condition as string | undefined) ?? 'latent') as Condition;
  if (!['latent', 'pause', 'none'].includes(condition))
    throw new UsageError(`rl: --condition must be latent, pause or none, got '${condition}'`);
  const mode = values.mode ?? (model.twoTrunk ? 'two-trunk' : 'full');
  if (mode !== 'full' && mode !== 'two-trunk') throw new UsageError(`rl: --mode must be full or two-trunk, got '${values.mode}'`);
  if (mode === 'two-trunk' && !model.twoTrunk) model.enableTwoTrunk();
  if (mode === 'full' && model.twoTrunk) throw new Error('--mode full: the --init checkpoint is a two-trunk model; use --mode two-trunk');
  const data = await loadData(values.data, { seed, preset: values.preset });
  const toTask = (r: { question: string; final: string }): Task => ({ question: r.question, gold: r.final });
  const tasks = data.train.map(toTask),
    evalTasks = data.test.slice(0, n.evalRows).map(toTask);
  const steps = n.steps;
  const beta = n.beta;
  console.log(
    `model: ${initial.source} (${model.L} layers, hidden ${model.H}, vocab ${model.V}, ${mode}); data: ${data.source} (${tasks.length} train / ${data.test.length} test)`,
  );

  // beta > 0 on resume: the reference is the INITIAL policy, loaded again (the checkpoint holds the trained one)
  let reference: Qwen2 | null = null;
  if (values.resume && beta > 0 && (await sourceExists(`${out}/checkpoint/state.json`))) {
    reference = (await loadInitial(be, values.model, values.init, values['allow-nonfinite'])).model;
    if (mode === 'two-trunk' && !reference.twoTrunk) reference.enableTwoTrunk();
  }
  await mkdir(out, { recursive: true });
  const metrics = `${out}/metrics.jsonl`;
  if (!values.resume) await writeFile(metrics, '');
  let pending = '';
  // records logged so far, the sessions before a resume included (stored in each checkpoint)
  let logged = typeof saved?.state.records === 'number' ? saved.state.records : 0;
  const log = (rec: Record<string, unknown>) => {
    pending += JSON.stringify(rec) + '\n';
    logged++;
  };
  const flush = async () => {
    if (pending) await appendFile(metrics, pending);
    pending = '';
  };
  const evalEvery = n.evalEvery;
  const opts: GrpoOptions = {
    steps,
    beta,
    seed,
    condition,
    group: n.group,
    questionsPerStep: n.questions,
    lr: n.lr,
    eps: n.eps,
    epsHigh: n.epsHigh,
    ppoEpochs: n.ppoEpochs,
    filterZeroVariance: !!values['filter-zero-variance'],
    maxNewTokens: n.maxNew,
    temperature: n.temperature,
    maxLatents: n.maxLatents,
    latentBudget: n.latentBudget,
    latentsPerSpan: typeof p1.k === 'number' && p1.k > 0 ? p1.k : undefined,
    rewards: { latentCost: n.latentCost, formatReward: n.formatReward, strict: !!values.strict },
    headLr: n.headLr,
    microBatch: n.microBatch,
    sampleEvery: n.sampleEvery,
    samplesPerLog: 4,
    outDir: out,
    ckptEvery: n.ckptEvery,
    resume: !!values.resume,
    eosId: tok.eosId,
    // identity is left out, so the trajectory (and the --resume check) of every run without feedback is unchanged
    feedback: initial.feedback.kind === 'identity' ? undefined : initial.feedback,
    log,
    shouldStop: () => stop.requested,
  };
  const trainer = new GrpoTrainer(model, tok, tasks, wasmChecker, opts, initial.heads, reference);
  const trajectory = JSON.parse(
    JSON.stringify({
      ...opts,
      log: undefined,
      shouldStop: undefined,
      resume: undefined,
      outDir: undefined,
      model: initial.source,
      data: data.source,
      backend: be.name,
      mode,
    }),
  );
  // an evaluation that Ctrl-C interrupted (or kept from starting) is done first by the resumed run
  let pendingEval = saved?.state.pendingEval === true;
  trainer.extraState = () => ({ records: logged, trajectory, pendingEval });
  if (saved) {
    await checkResume('rl', saved, trajectory, {
      anyway: !!values['resume-anyway'],
      metricsFile: metrics,
      refuse: (m) => new UsageError(m),
    });
    await trainer.restore(ckptDir);
    console.log(`resumed from ${ckptDir} at step ${trainer.step}`);
  }
  console.log(
    `rl: G=${opts.group} x Q=${opts.questionsPerStep}, lr ${opts.lr}, beta ${beta}, eps ${opts.eps}${opts.epsHigh !== undefined ? `/${opts.epsHigh}` : ''}, condition ${condition}, feedback ${feedbackLabel(initial.feedback)}, latent cost ${opts.rewards.latentCost}`,
  );
  const runEval = async () => {
    pendingEval = true;
    if (stop.requested) return;
    let e: Awaited<ReturnType<typeof trainer.evaluate>>;
    try {
      e = await trainer.evaluate(evalTasks);
    } catch (err) {
      if (err instanceof EvalInterrupted) return;
      throw err;
    }
    pendingEval = false;
    log(e as unknown as Record<string, unknown>);
    console.log(
      `[eval @ ${e.step}] held-out accuracy ${(100 * e.accuracy).toFixed(1)}% (n=${e.n}), format ${(100 * e.formatRate).toFixed(0)}%, latents/answer ${e.latentsPerAnswer.toFixed(2)}`,
    );
    for (const s of e.samples.slice(0, 1))
      console.log(
        `  Q: ${s.question.slice(0, 100)}\n  A: ${s.text.replace(/\n/g, ' ⏎ ').slice(0, 300)}  [gold ${s.gold}: ${s.correct ? 'right' : 'wrong'}]`,
      );
    await flush();
  };
  if (evalTasks.length && (trainer.step === 0 || pendingEval)) await runEval();
  for (;;) {
    await yieldToEventLoop(); // a step's awaits may all resolve without a turn of the event loop: let a SIGINT be seen
    if (trainer.step >= steps || stop.requested) break;
    const r: GrpoStepRecord = await trainer.trainStep();
    console.log(
      `step ${r.step}/${steps}  reward ${r.reward.toFixed(3)}  acc ${(100 * r.accuracy).toFixed(0)}%  latents ${r.latentsPerAnswer.toFixed(2)}  start ${r.startRate.toFixed(3)} end ${r.endRate.toFixed(2)}  zero-var ${r.zeroVarianceGroups}/${r.groups}  clip ${r.clipFrac.toFixed(3)}  kl ${r.kl.toFixed(4)}  ${Math.round(r.tokPerSec)} tok/s`,
    );
    if (evalEvery > 0 && r.step % evalEvery === 0 && r.step < steps && evalTasks.length) await runEval();
    // flushed first: a checkpoint counts only records already in metrics.jsonl
    await flush();
    if (opts.ckptEvery && r.step % opts.ckptEvery === 0 && !stop.requested) await stop.guardSave(() => trainer.save(ckptDir));
  }
  let stoppedEarly = trainer.step < steps || pendingEval;
  await flush();
  await stop.guardSave(() => trainer.save(ckptDir));
  if (!stoppedEarly && evalTasks.length) {
    await runEval();
    stoppedEarly = pendingEval;
  }
  await flush();
  // the summary and report cover the whole run, the sessions before a resume included
  const all = await readRecords(metrics);
  const recs = all.filter((r) => r.type === 'step') as unknown as GrpoStepRecord[];
  const evals = all.filter((r) => r.type === 'eval') as unknown as { step: number; accuracy: number; latentsPerAnswer: number }[];
  const window = (a: GrpoStepRecord[]) => (a.length ? a.reduce((s, r) => s + r.reward, 0) / a.length : NaN);
  const k = Math.max(1, Math.min(20, Math.floor(recs.length / 4)));
  const summary = {
    steps: trainer.step,
    stoppedEarly,
    seconds: (performance.now() - t0) / 1000,
    backend: be.name,
    model: initial.source,
    data: data.source,
    mode,
    condition,
    options: { ...opts, log: undefined, shouldStop: undefined, resume: undefined },
    rewardFirst: window(recs.slice(0, k)),
    rewardLast: window(recs.slice(-k)),
    windowSteps: k,
    evals,
  };
  await writeFileAtomic(`${out}/summary.json`, JSON.stringify(summary, null, 2));
  try {
    const { rlReport } = await import('../rl/report.js');
    await writeFileAtomic(`${out}/report.svg`, rlReport(`RL (${mode}, ${condition})`, recs, evals));
  } catch (e) {
    console.error(`warning: no report.svg (${(e as Error).message})`);
  }
  console.log(
    `done in ${summary.seconds.toFixed(0)} s: mean reward ${summary.rewardFirst.toFixed(3)} (first ${k} steps) -> ${summary.rewardLast.toFixed(3)} (last ${k}); ${out}/metrics.jsonl, ${out}/report.svg, ${out}/summary.json, ${out}/checkpoint/`,
  );
  trainer.destroy();
  model.destroy();
  be.destroy();
  if (stoppedEarly) {
    console.log(`stopped at step ${trainer.step} of ${steps}: checkpoint saved in ${ckptDir}; continue with the same flags and --resume`);
    return 130;
  }
  return 0;
}

export const rlCommand = {
  name: 'rl',
  summary: 'phase 2: GRPO-style RL with verifiable rewards; the policy decides when to think in latents',
  help: rlHelp,
  run: rlMain,
};
