// `examples/train.ts` and `latentlm train`: phase 1 on the embedded default model and synthetic task, or on any
// HF Qwen2 + GSM8K. Prints and saves loss curves (SVG), latent usage, decoded latents, accuracy with and without
// latents, and generated answers with their latent spans marked.
import { parseArgs } from 'node:util';
import { mkdirp, writeFileAtomic } from '../io.js';
import { Phase1Trainer, type EvalRecord, type Phase1Options } from '../latent/trainer.js';
import { phase1Report } from '../latent/report.js';
import { usageVerdict } from '../latent/diagnostics.js';
import { reward } from '../reward.js';
import { createProgress } from '../progress.js';
import { loadData, loadModel, pickBackend } from './setup.js';
import { conditionHelp, conditionOptions, prepareSubsteps, resolveCondition } from './conditions.js';

export const trainHelp = `latentlm train — phase 1: supervised training with latent tokens at calculator breakpoints

Usage: npx tsx examples/train.ts [flags]     (also: bun run examples/train.ts, deno run -A examples/train.ts)

  --steps N          optimizer steps (default 240)
  --mode M           full | two-trunk (default full)
  --latents K        latents per breakpoint (default 2; 0 = plain chain-of-thought)
  --baseline B       none | pause: 'pause' fills the same slots with K learned constant embeddings (default none)
  --feedback F       identity | scaled: how a latent's hidden state re-enters (scaled = to the typical embedding norm)
  --supervise-latents W  weight of an auxiliary loss asking latent j's output to predict the j-th result token
                     (default 0 = off): forces the fed-back states to carry the result
${conditionHelp}
  --batch N          sequences per step (default 8)
  --lr X             peak learning rate (default 1e-3 for the default model, 1e-5 with --model)
  --curriculum N     Coconut stages: stage s puts latents at the first s breakpoints, advancing every N steps (default off)
  --model DIR|URL    an HF Qwen2 directory (config.json + model.safetensors) instead of the embedded default
  --data PATH|URL    a GSM8K .jsonl file or a directory with train.jsonl/test.jsonl (default: synthetic problems)
  --out DIR          where metrics.jsonl, report.svg, summary.json and checkpoint/ go (default runs/train)
  --eval-every N     steps between evaluations (default 40)
  --eval-rows N      held-out rows per evaluation (default 32)
  --gen-rows N       held-out problems answered by generation for accuracy (default 24)
  --resume           continue from OUT/checkpoint (same trajectory as an uninterrupted run)
  --backend B        webgpu | wasm | gpujs | cpu (default: the fastest available)
  --seed N           data order, sampling and synthetic data (default 0)
  --help             this text

Ctrl-C stops after the current step and saves a checkpoint.`;

export async function trainMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      steps: { type: 'string' }, mode: { type: 'string' }, latents: { type: 'string' }, baseline: { type: 'string' },
      batch: { type: 'string' }, lr: { type: 'string' }, curriculum: { type: 'string' }, model: { type: 'string' }, data: { type: 'string' },
      out: { type: 'string' }, 'eval-every': { type: 'string' }, 'eval-rows': { type: 'string' }, 'gen-rows': { type: 'string' },
      ...conditionOptions,
      resume: { type: 'boolean' }, feedback: { type: 'string' }, 'supervise-latents': { type: 'string' }, backend: { type: 'string' }, seed: { type: 'string' }, 'max-len': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(trainHelp);
    return 0;
  }
  const num = (v: string | undefined, d: number, name: string) => {
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${name} expects a number, got '${v}'`);
    return n;
  };
  const mode = (values.mode ?? 'full') as 'full' | 'two-trunk';
  if (mode !== 'full' && mode !== 'two-trunk') throw new Error(`--mode must be full or two-trunk, got '${values.mode}'`);
  const steps = num(values.steps, 240, 'steps');
  const resolved = resolveCondition(values, steps, num);
  let k = resolved.k;
  const feedback = (values.feedback ?? 'identity') as 'identity' | 'scaled';
  if (feedback !== 'identity' && feedback !== 'scaled') throw new Error(`--feedback must be identity or scaled, got '${values.feedback}'`);
  const seed = num(values.seed, 0, 'seed');
  const out = values.out ?? 'runs/train';
  const t0 = performance.now();

  const be = await pickBackend(values.backend, (l) => console.log(l));
  const { model, tok, source } = await loadModel(be, values.model);
  const testCount = num(values['test-rows'], Math.max(200, num(values['gen-rows'], 24, 'gen-rows'), num(values['eval-rows'], 32, 'eval-rows')), 'test-rows');
  const data = await loadData(values.data, { seed, preset: values.preset, testCount });
  const condition = resolved.condition;
  let maxLatents: number | undefined, coverage: unknown;
  if (resolved.substeps) {
    // sub-step rows; generation caps a latent span at the longest breakpoint, and pause spans (no end head) at the typical one
    const sub = prepareSubsteps(data.train, data.test, resolved.substeps.c);
    Object.assign(data, { train: sub.train, test: sub.test });
    k = condition === 'pause' ? sub.typicalSlots : sub.maxSlots;
    maxLatents = Math.max(8, sub.maxSlots);
    coverage = { train: sub.coverage, test: sub.testCoverage };
    console.log(`sub-steps: ${sub.coverage.annotations} train annotations, ${sub.coverage.multiStep} expanded into several sub-steps (mean ${sub.coverage.meanSubsteps.toFixed(2)} per breakpoint), not expanded: ${JSON.stringify(sub.coverage.failed)}`);
  }
  console.log(`model: ${source} (${model.L} layers, hidden ${model.H}, vocab ${model.V}); data: ${data.source} (${data.train.length} train / ${data.test.length} test rows)`);
  console.log(`phase 1: mode ${mode}, condition ${resolved.name}, k=${k}${resolved.substeps ? `, sub-steps ${JSON.stringify(resolved.substeps)}` : ''}`);
  await mkdirp(out);
  const lines: string[] = [];
  const { JsonlWriter } = await import('../jsonl.js');
  const jsonl = await JsonlWriter.open(`${out}/metrics.jsonl`, { append: !!values.resume });
  const progress = await createProgress({ total: steps, label: 'phase 1' });
  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130);
    stop = true;
    console.log('\nCtrl-C: finishing this step and saving a checkpoint (again to quit at once)');
  };
  if (typeof process !== 'undefined' && process.on) process.on('SIGINT', onSigint);
  const marker = tok.encode('<<');
  const opts: Phase1Options = {
    mode, condition, k, steps, feedback, substeps: resolved.substeps, maxLatents, genWithoutLatents: values['gen-no-latents'] !== '0', latentSupervision: num(values['supervise-latents'], 0, 'supervise-latents'),
    batchSize: num(values.batch, 8, 'batch'),
    lr: num(values.lr, values.model ? 1e-5 : 1e-3, 'lr'),
    warmupSteps: Math.min(20, Math.floor(steps / 10)),
    curriculumStepsPerStage: values.curriculum ? num(values.curriculum, 0, 'curriculum') : undefined,
    markerInit: marker.length === 1 ? { kind: 'token', id: marker[0] } : { kind: 'mean' },
    evalEvery: num(values['eval-every'], 40, 'eval-every'),
    evalRows: num(values['eval-rows'], 32, 'eval-rows'),
    genRows: num(values['gen-rows'], 24, 'gen-rows'),
    maxNewTokens: 96,
    ckptEvery: 50,
    outDir: out,
    resume: !!values.resume,
    seed,
    eosId: tok.eosId,
    maxLen: num(values['max-len'], 512, 'max-len'),
    log: (rec) => {
      jsonl.write(rec);
      if (rec.type === 'eval') printEval(rec as unknown as EvalRecord);
    },
    onStep: (step, rec) => progress.update(step, { loss: rec.loss.toFixed(3), 'tok/s': Math.round(rec.tokPerSec) }),
    shouldStop: () => stop,
    reward: (c, g) => reward(c, g),
    tokenText: (id) => tok.tokenText(id),
    decodeIds: tok.vocabSize < 5000 ? Array.from({ length: model.V }, (_, i) => i) : undefined,
  };
  const trainer = new Phase1Trainer(model, tok, data.train, data.test, opts);
  const result = await trainer.run();
  progress.done();
  await jsonl.close();
  if (typeof process !== 'undefined' && process.off) process.off('SIGINT', onSigint);
  const svg = phase1Report(`${mode}, ${resolved.name}${k ? ` k=${k}` : ''}`, result.steps, result.evals);
  await writeFileAtomic(`${out}/report.svg`, svg);
  const last = result.evals[result.evals.length - 1];
  const seconds = (performance.now() - t0) / 1000;
  const summary = { mode, condition: resolved.name, slots: condition, substeps: resolved.substeps, expansion: coverage, preset: values.preset ?? 'default', grid: last ? gridFigures(last, seconds) : undefined, k, feedback, latentSupervision: opts.latentSupervision, verdict: last ? usageVerdict(last.usage) : undefined, steps: trainer.step, seconds, backend: be.name, model: source, data: data.source, final: last, firstTrainLoss: result.steps[0]?.loss, lastTrainLoss: result.steps[result.steps.length - 1]?.loss };
  await writeFileAtomic(`${out}/summary.json`, JSON.stringify(summary, null, 2));
  lines.push(`done in ${seconds.toFixed(0)} s: ${out}/report.svg, ${out}/metrics.jsonl, ${out}/summary.json, ${out}/checkpoint/`);
  console.log(lines.join('\n'));
  model.destroy();
  be.destroy();
  return 0;
}

/** The figures a grid compares, flat (what `latentlm sweep` reads from summary.json). */
function gridFigures(e: EvalRecord, seconds: number) {
  return {
    heldOutAccuracy: e.accuracy, heldOutCount: e.genCount, accuracyNoLatents: e.accuracyNoLatents, postBreakLoss: e.postBreakLoss, testLoss: e.testLoss,
    gapZeroed: e.usage.gapZeroed, gapSwapped: e.usage.gapSwapped, gapRemoved: e.usage.gapRemoved,
    reasoningPositions: e.reasoningPositions, resultTokenAccuracy: e.resultTokenAccuracy, resultExactAccuracy: e.resultExactAccuracy, wallSeconds: seconds,
  };
}

function fmt(x: number | undefined, d = 3) {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d);
}

export function printEval(e: EvalRecord): void {
  const u = e.usage;
  console.log(`\n[eval @ step ${e.step}] test loss ${fmt(e.testLoss)}  post-breakpoint loss ${fmt(e.postBreakLoss)}`);
  if (e.resultTokenAccuracy !== undefined) console.log(`  result tokens after breakpoints (teacher-forced argmax): ${fmt(e.resultTokenAccuracy * 100, 1)}% of digits, ${fmt((e.resultExactAccuracy ?? NaN) * 100, 1)}% of whole results; ${fmt(e.reasoningPositions, 1)} reasoning positions per breakpoint`);
  if (u.zeroed) console.log(`  latent usage (post-breakpoint loss): normal ${fmt(u.normal.postBreakLoss)} | zeroed ${fmt(u.zeroed.postBreakLoss)} (+${fmt(u.gapZeroed)}) | swapped ${fmt(u.swapped?.postBreakLoss)} (+${fmt(u.gapSwapped)}) | removed ${fmt(u.removed?.postBreakLoss)} (+${fmt(u.gapRemoved)})`);
  if (u.zeroed) console.log(`  verdict: ${usageVerdict(u)}`);
  if (e.start) console.log(`  start head: precision ${fmt(e.start.precision, 2)} recall ${fmt(e.start.recall, 2)} F1 ${fmt(e.start.f1, 2)}${e.end ? `; end head accuracy ${fmt(e.end.accuracy, 2)}` : ''}`);
  if (e.decoded?.length) {
    console.log(`  decoded latents (typical token-embedding norm ${fmt(e.typicalEmbeddingNorm, 2)}):`);
    for (const d of e.decoded.slice(0, 4))
      console.log(`    ex${d.example} span${d.span} #${d.latent}: norm ${fmt(d.d.norm, 2)}  nearest ${d.d.nearest.map((n) => `${JSON.stringify(n.token)}(${n.cos.toFixed(2)})`).join(' ')}  lm-head ${d.d.lmTop.map((n) => JSON.stringify(n.token)).join(' ')}`);
  }
  if (e.accuracy !== undefined)
    console.log(`  accuracy: ${fmt(e.accuracy * 100, 1)}%${e.accuracyNoLatents !== undefined ? ` with latents, ${fmt(e.accuracyNoLatents * 100, 1)}% with latents off` : ''} (greedy, held-out, WASM reward checker)`);
  for (const s of e.samples?.slice(0, 2) ?? []) console.log(`  Q: ${s.question.slice(0, 100)}\n  A: ${s.text.replace(/\n/g, ' ⏎ ')}  [gold ${s.gold}: ${s.reward ? 'right' : 'wrong'}]`);
}
