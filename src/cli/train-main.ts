// `examples/train.ts` and `latentlm train`: phase 1 on the embedded default model and synthetic task, or on any
// HF Qwen2 + GSM8K. Prints and saves loss curves (SVG), latent usage, decoded latents, accuracy with and without
// latents, and generated answers with their latent spans marked.
import { mkdirp, writeFileAtomic } from '../io/source.js';
import { Phase1Trainer, type EvalRecord, type Phase1Options } from '../latent/trainer.js';
import { phase1Report } from '../latent/report.js';
import { usageVerdict } from '../latent/diagnostics.js';
import { reward } from '../data/grade.js';
import { createProgress } from '../io/progress.js';
import { applyChatTemplate, loadData, loadModel, pickBackend } from '../setup/loaders.js';
import { CONDITION_SWITCHES, CONDITION_VALUE_FLAGS, conditionHelp, prepareSubsteps, resolveCondition } from '../setup/conditions.js';
import { parseFlags, UsageError } from './_args.js';
import { BACKEND_CHOICES, FlagReader, flagTable, joinNegativeValues, RUN_FLAGS, runFlagsHelp, valueFlagNames } from './flags.js';
import { installStopSignal, type StopSignal } from '../train/signals.js';
import { checkResume, readRecords } from '../train/resume.js';
import { DivergenceWatch } from '../train/divergence.js';
import { readCheckpointState } from '../latent/checkpoint.js';
import { measureLengths } from '../latent/length.js';
import type { StepRecord } from '../latent/trainer.js';

export const trainHelp = `latentlm train — phase 1: supervised training with latent tokens at calculator breakpoints

Usage: npx tsx examples/train.ts [flags]     (also: bun run examples/train.ts, deno run -A examples/train.ts)

  --steps N          optimizer steps (default 240)
  --mode M           full | two-trunk (default full)
  --latents K        latents per breakpoint (default 2; 0 = plain chain-of-thought)
  --baseline B       none | pause: 'pause' fills the same slots with K learned constant embeddings (default none)
  --feedback F       identity | scaled | gated: how a latent's hidden state re-enters (scaled = to the typical embedding
                     norm; gated = a learned gate mixes it with the embedding of the model's own next-token distribution)
  --supervise-latents W  weight of an auxiliary loss asking latent j's output to predict the j-th result token
                     (default 0 = off): forces the fed-back states to carry the result
${conditionHelp}
  --batch N          sequences per step (default 8)
  --lr X             peak learning rate (default 1e-3 for the default model, 1e-5 with --model)
  --curriculum N     Coconut stages: stage s puts latents at the first s breakpoints, advancing every N steps (default off)
  --model DIR|URL|ID an HF Qwen2 directory (config.json + model.safetensors) or a Hub id such as Qwen/Qwen2-0.5B[@rev]
                     (from the HF cache, downloaded into it if missing; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE apply)
                     instead of the embedded default
  --data PATH|URL|ID a GSM8K .jsonl file, a directory with train.jsonl/test.jsonl, or a Hub data set id such as
                     openai/gsm8k (its config main train/test parquet splits) (default: synthetic problems)
  --chat             wrap each question in the model's chat template (tokenizer_config.json; instruct models)
  --out DIR          where metrics.jsonl, report.svg, summary.json and checkpoint/ go (default runs/train)
  --eval-every N     steps between evaluations (default 40)
  --eval-rows N      held-out rows per evaluation (default 32)
  --gen-rows N       held-out problems answered by generation for accuracy (default 24)
  --max-len N        tokens per training sequence; longer rows are cut, with a warning (default 512)
  --ckpt-every N     steps between checkpoints (default 50; 0 = only at the end and on Ctrl-C)
${runFlagsHelp(21)}
  --seed N           data order, sampling and synthetic data (default 0)
  --help             this text

Ctrl-C stops after the current step, saves a checkpoint, says where and exits 130; a second Ctrl-C while it is
being written waits for it, one after that quits at once (the previous checkpoint stays whole).`;

const TRAIN_FLAGS = {
  ...RUN_FLAGS,
  ...flagTable(
    ['steps', 'mode', 'latents', 'baseline', 'batch', 'lr', 'curriculum', 'gen-rows', 'feedback', 'supervise-latents', 'max-len'],
    ['chat'],
  ),
  ...flagTable(CONDITION_VALUE_FLAGS, CONDITION_SWITCHES),
};

export async function trainMain(argv: string[]): Promise<number> {
  const { values } = parseFlags('train', joinNegativeValues(argv, valueFlagNames(TRAIN_FLAGS)), TRAIN_FLAGS);
  if (values.help) {
    console.log(trainHelp);
    return 0;
  }
  // installed before anything slow: a Ctrl-C while the model loads must not end the process unsaved
  const stop = installStopSignal({ checkpointDir: `${outDir(values)}/checkpoint`, log: (l) => console.log(l) });
  try {
    return await runTraining(values, stop);
  } finally {
    stop.dispose();
  }
}

type TrainValues = ReturnType<typeof parseFlags<typeof TRAIN_FLAGS>>['values'];
const outDir = (values: TrainValues) => values.out ?? 'runs/train';

async function runTraining(values: TrainValues, stop: StopSignal): Promise<number> {
  // every flag typed and range-checked (UsageError naming the flag) before anything loads
  const f = new FlagReader('train', values);
  const mode = f.choice('mode', ['full', 'two-trunk'] as const, 'full');
  // --baseline and --latents are range-checked here; resolveCondition below turns them into the condition
  f.choice('baseline', ['none', 'pause'] as const, 'none');
  f.int('latents', 2, { min: 0, max: 8 });
  const feedback = f.choice('feedback', ['identity', 'scaled', 'gated'] as const, 'identity');
  const seed = f.int('seed', 0);
  const steps = f.int('steps', 240, { min: 1 });
  const batchSize = f.int('batch', 8, { min: 1 });
  const lr = f.number('lr', values.model ? 1e-5 : 1e-3, { above: 0, max: 10 });
  const maxLen = f.int('max-len', 512, { min: 2 });
  const evalEvery = f.int('eval-every', 40, { min: 0 });
  const evalRows = f.int('eval-rows', 32, { min: 0 });
  const genRows = f.int('gen-rows', 24, { min: 0 });
  const ckptEvery = f.int('ckpt-every', 50, { min: 0 });
  const latentSupervision = f.number('supervise-latents', 0, { min: 0 });
  const curriculum = f.has('curriculum') ? f.int('curriculum', 0, { min: 1 }) : undefined;
  const backendName = f.has('backend') ? f.choice('backend', BACKEND_CHOICES, 'cpu') : undefined;
  const threads = f.has('threads') ? f.int('threads', 1, { min: 1, max: 1024 }) : undefined;
  const testRows = f.int('test-rows', Math.max(200, genRows, evalRows), { min: 1 });
  const num = (v: string | undefined, d: number, name: string) => (v === undefined ? d : f.number(name, d));
  let resolved: ReturnType<typeof resolveCondition>;
  try {
    resolved = resolveCondition(values, steps, num);
  } catch (e) {
    throw new UsageError(`train: ${(e as Error).message}`);
  }
  if (feedback === 'gated' && resolved.condition !== 'latent')
    throw new UsageError(
      `train: --feedback gated mixes fed-back latents; condition '${resolved.name}' has none (use --latents >= 1 without --baseline pause)`,
    );
  const out = outDir(values);
  const ckptDir = `${out}/checkpoint`;
  const metricsFile = `${out}/metrics.jsonl`;
  let k = resolved.k;
  const t0 = performance.now();
  const saved = values.resume ? await readCheckpointState(ckptDir) : null;
  if (values.resume && !saved)
    throw new UsageError(`train: --resume: there is no checkpoint in ${ckptDir} to continue (run without --resume to start afresh)`);
  const be = await pickBackend(backendName, (l) => console.log(l), threads);
  const { model, tok, source, dir } = await loadModel(be, values.model, { allowNonFinite: values['allow-nonfinite'] });
  const data = await loadData(values.data, { seed, preset: values.preset, testCount: testRows });
  if (values.chat) console.log(`chat template: ${await applyChatTemplate(data, dir)}`);
  const condition = resolved.condition;
  let maxLatents: number | undefined, coverage: unknown;
  if (resolved.substeps) {
    // sub-step rows; generation caps a latent span at the longest breakpoint, and pause spans (no end head) at the typical one
    const sub = prepareSubsteps(data.train, data.test, resolved.substeps.c);
    Object.assign(data, { train: sub.train, test: sub.test });
    k = condition === 'pause' ? sub.typicalSlots : sub.maxSlots;
    maxLatents = Math.max(8, sub.maxSlots);
    coverage = { train: sub.coverage, test: sub.testCoverage };
    console.log(
      `sub-steps: ${sub.coverage.annotations} train annotations, ${sub.coverage.multiStep} expanded into several sub-steps (mean ${sub.coverage.meanSubsteps.toFixed(2)} per breakpoint), not expanded: ${JSON.stringify(sub.coverage.failed)}`,
    );
  }
  console.log(
    `model: ${source} (${model.L} layers, hidden ${model.H}, vocab ${model.V}); data: ${data.source} (${data.train.length} train / ${data.test.length} test rows)`,
  );
  console.log(
    `phase 1: mode ${mode}, condition ${resolved.name}, k=${k}${resolved.substeps ? `, sub-steps ${JSON.stringify(resolved.substeps)}` : ''}`,
  );
  const lengths = measureLengths(data.train, tok, { condition, k, eosId: tok.eosId }, maxLen);
  if (lengths.empty === lengths.rows)
    throw new UsageError(
      `train: --max-len ${maxLen} leaves no answer token in any training row (the longest has ${lengths.longest} tokens): nothing to train`,
    );
  if (lengths.cut)
    console.error(
      `warning: ${lengths.cut} of ${lengths.rows} training rows are longer than --max-len ${maxLen} tokens (longest ${lengths.longest}) and are cut: their answers lose the end, '#### N' included${lengths.empty ? `; ${lengths.empty} keep no answer token at all` : ''}. Raise --max-len to keep them whole.`,
    );
  const divergence = new DivergenceWatch({ warn: (m) => console.error(`\nwarning: ${m}`) });
  await mkdirp(out);
  const { JsonlWriter } = await import('../io/jsonl.js');
  const progress = await createProgress({ total: steps, label: 'phase 1' });
  let jsonl: import('../io/jsonl.js').JsonlWriter | undefined;
  const marker = tok.encode('<<');
  const opts: Phase1Options = {
    mode,
    condition,
    k,
    steps,
    feedback,
    substeps: resolved.substeps,
    maxLatents,
    genWithoutLatents: values['gen-no-latents'] !== '0',
    latentSupervision,
    batchSize,
    lr,
    warmupSteps: Math.min(20, Math.floor(steps / 10)),
    curriculumStepsPerStage: curriculum,
    markerInit: marker.length === 1 ? { kind: 'token', id: marker[0] } : { kind: 'mean' },
    evalEvery,
    evalRows,
    genRows,
    maxNewTokens: 96,
    ckptEvery,
    outDir: out,
    resume: !!values.resume,
    seed,
    eosId: tok.eosId,
    maxLen,
    runInfo: { model: source, data: data.source, heldOut: data.test.length, backend: be.name }, // heldOut: --test-rows changes the synthetic test split
    log: (rec) => {
      jsonl!.write(rec);
      if (rec.type === 'eval') {
        printEval(rec as unknown as EvalRecord);
        divergence.eval(rec.step as number, rec.testLoss as number);
      }
    },
    onStep: (step, rec) => {
      progress.update(step, { loss: rec.loss.toFixed(3), 'tok/s': Math.round(rec.tokPerSec) });
      divergence.step(step, rec.loss);
    },
    shouldStop: () => stop.requested,
    guardSave: (save) => stop.guardSave(save),
    reward: (c, g) => reward(c, g),
    tokenText: (id) => tok.tokenText(id),
    decodeIds: tok.vocabSize < 5000 ? Array.from({ length: model.V }, (_, i) => i) : undefined,
  };
  const trainer = new Phase1Trainer(model, tok, data.train, data.test, opts);
  if (saved) {
    await checkResume('train', saved, trainer.trajectoryOptions(), {
      anyway: !!values['resume-anyway'],
      metricsFile,
      savedKey: 'options',
      refuse: (m) => new UsageError(m),
    });
    divergence.replay(await readRecords(metricsFile)); // so summary.json's warnings cover the whole run
    console.log(`resuming from ${saved.dir} at step ${saved.state.step}`);
  }
  jsonl = await JsonlWriter.open(metricsFile, { append: !!values.resume });
  const result = await trainer.run();
  progress.done();
  jsonl.close();
  // the report and summary cover the whole run, the sessions before a resume included
  const records = await readRecords(metricsFile);
  const allSteps = records.filter((r) => r.type === 'step') as unknown as StepRecord[];
  const allEvals = records.filter((r) => r.type === 'eval') as unknown as EvalRecord[];
  await writeFileAtomic(`${out}/report.svg`, phase1Report(`${mode}, ${resolved.name}${k ? ` k=${k}` : ''}`, allSteps, allEvals));
  const last = allEvals[allEvals.length - 1];
  const seconds = (performance.now() - t0) / 1000;
  const summary = {
    mode,
    condition: resolved.name,
    slots: condition,
    substeps: resolved.substeps,
    expansion: coverage,
    preset: values.preset ?? 'default',
    grid: last ? gridFigures(last, seconds) : undefined,
    k,
    feedback,
    latentSupervision,
    verdict: last ? usageVerdict(last.usage) : undefined,
    steps: trainer.step,
    seconds,
    backend: be.name,
    model: source,
    data: data.source,
    final: last,
    firstTrainLoss: allSteps[0]?.loss,
    lastTrainLoss: allSteps[allSteps.length - 1]?.loss,
    stoppedEarly: result.stoppedEarly,
    warnings: divergence.warnings,
  };
  await writeFileAtomic(`${out}/summary.json`, JSON.stringify(summary, null, 2));
  model.destroy();
  be.destroy();
  if (result.stoppedEarly) {
    console.log(`stopped at step ${trainer.step} of ${steps}: checkpoint saved in ${ckptDir}; continue with the same flags and --resume`);
    return 130;
  }
  console.log(`done in ${seconds.toFixed(0)} s: ${out}/report.svg, ${metricsFile}, ${out}/summary.json, ${ckptDir}/`);
  return 0;
}

/** The figures a grid compares, flat (what `latentlm sweep` reads from summary.json). */
function gridFigures(e: EvalRecord, seconds: number) {
  return {
    heldOutAccuracy: e.accuracy,
    heldOutCount: e.accuracyRows,
    accuracyNoLatents: e.accuracyNoLatents,
    postBreakLoss: e.postBreakLoss,
    testLoss: e.testLoss,
    gapZeroed: e.usage.gapZeroed,
    gapSwapped: e.usage.gapSwapped,
    gapRemoved: e.usage.gapRemoved,
    reasoningPositions: e.reasoningPositions,
    resultTokenAccuracy: e.resultTokenAccuracy,
    resultExactAccuracy: e.resultExactAccuracy,
    wallSeconds: seconds,
  };
}

function fmt(x: number | undefined, d = 3) {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d);
}

export function printEval(e: EvalRecord): void {
  const u = e.usage;
  console.log(`\n[eval @ step ${e.step}] test loss ${fmt(e.testLoss)}  post-breakpoint loss ${fmt(e.postBreakLoss)}`);
  if (e.resultTokenAccuracy !== undefined)
    console.log(
      `  result tokens after breakpoints (teacher-forced argmax): ${fmt(e.resultTokenAccuracy * 100, 1)}% of digits, ${fmt((e.resultExactAccuracy ?? NaN) * 100, 1)}% of whole results; ${fmt(e.reasoningPositions, 1)} reasoning positions per breakpoint`,
    );
  if (u.zeroed)
    console.log(
      `  latent usage (post-breakpoint loss): normal ${fmt(u.normal.postBreakLoss)} | zeroed ${fmt(u.zeroed.postBreakLoss)} (+${fmt(u.gapZeroed)}) | swapped ${fmt(u.swapped?.postBreakLoss)} (+${fmt(u.gapSwapped)}) | removed ${fmt(u.removed?.postBreakLoss)} (+${fmt(u.gapRemoved)})`,
    );
  if (u.zeroed) console.log(`  verdict: ${usageVerdict(u)}`);
  if (e.start)
    console.log(
      `  start head: precision ${fmt(e.start.precision, 2)} recall ${fmt(e.start.recall, 2)} F1 ${fmt(e.start.f1, 2)}${e.end ? `; end head accuracy ${fmt(e.end.accuracy, 2)}` : ''}`,
    );
  if (e.decoded?.length) {
    console.log(`  decoded latents (typical token-embedding norm ${fmt(e.typicalEmbeddingNorm, 2)}):`);
    for (const d of e.decoded.slice(0, 4))
      console.log(
        `    ex${d.example} span${d.span} #${d.latent}: norm ${fmt(d.d.norm, 2)}  nearest ${d.d.nearest.map((n) => `${JSON.stringify(n.token)}(${n.cos.toFixed(2)})`).join(' ')}  lm-head ${d.d.lmTop.map((n) => JSON.stringify(n.token)).join(' ')}`,
      );
  }
  if (e.accuracy !== undefined)
    console.log(
      `  accuracy: ${fmt(e.accuracy * 100, 1)}%${e.accuracyNoLatents !== undefined ? ` with latents, ${fmt(e.accuracyNoLatents * 100, 1)}% with latents off` : ''} (greedy, held-out, WASM reward checker)`,
    );
  for (const s of e.samples?.slice(0, 2) ?? [])
    console.log(
      `  Q: ${s.question.slice(0, 100)}\n  A: ${s.text.replace(/\n/g, ' ⏎ ')}  [gold ${s.gold}: ${s.reward ? 'right' : 'wrong'}]`,
    );
}
