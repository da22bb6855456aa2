// Reproduces the committed default model (models/default): a small Qwen2 trained from scratch on plain
// chain-of-thought text of the synthetic task (Coconut's stage 0), over a restricted Qwen2 vocabulary.
//   npx tsx examples/pretrain.ts [--steps 1200] [--out models/default] [--backend wasm] [--seed 0]
// The recipe (config, data, optimizer) is saved beside the weights as recipe.json, with the loss curve.
import { parseFlags, UsageError } from '../src/cli/_args.ts';
import { BACKEND_CHOICES, FlagReader, joinNegativeValues, valueFlagNames } from '../src/cli/flags.ts';
import { installStopSignal, yieldToEventLoop } from '../src/train/signals.ts';
import { relaunchOutsideTsxWrapper } from '../src/node/tsx-relaunch.ts';
import { pickBackend, EOS_ID, wrapTokenizer, splitRow } from '../src/setup/loaders.ts';
import { mkdirp, writeFileAtomic } from '../src/io/source.ts';
import { Qwen2, qwen2ParamShapes, type Qwen2Config } from '../src/model/qwen2.ts';
import { VocabMap, allByteTokens } from '../src/text/vocab-map.ts';
import { AdamW } from '../src/train/adamw.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { generateProblems, SYNTH_PRESETS } from '../src/data/synth.ts';
import { linePlot } from '../src/io/plot.ts';
import { Rng } from '../src/data/rng.ts';
import { createProgress } from '../src/io/progress.ts';
import { generate } from '../src/generation/generate.ts';
import { reward } from '../src/data/grade.ts';

// under `npx tsx` the training runs in a child of this process, so that Ctrl-C can save (see tsx-relaunch.ts)
const relaunched = await relaunchOutsideTsxWrapper();
if (relaunched !== undefined) process.exit(relaunched);

const FLAGS = {
  steps: { type: 'string' },
  out: { type: 'string' },
  backend: { type: 'string' },
  seed: { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
} as const;
let values: ReturnType<typeof parseFlags<typeof FLAGS>>['values'];
let steps: number, B: number, peakLr: number, seed: number, backendName: string | undefined;
try {
  values = parseFlags('pretrain', joinNegativeValues(process.argv.slice(2), valueFlagNames(FLAGS)), FLAGS).values;
  const f = new FlagReader('pretrain', values);
  steps = f.int('steps', 1200, { min: 1 });
  B = f.int('batch', 16, { min: 1 });
  peakLr = f.number('lr', 3e-3, { above: 0, max: 10 });
  seed = f.int('seed', 0);
  backendName = f.has('backend') ? f.choice('backend', BACKEND_CHOICES, 'cpu') : undefined;
} catch (e) {
  console.error(`error: ${(e as Error).message}${e instanceof UsageError ? ' (see --help)' : ''}`);
  process.exit(e instanceof UsageError ? 2 : 1);
}
if (values.help) {
  console.log('npx tsx examples/pretrain.ts [--steps 1200] [--batch 16] [--lr 3e-3] [--out models/default] [--backend B] [--seed 0]');
  process.exit(0);
}
const out = values.out ?? 'models/default';
const t0 = performance.now();
// no resume here: Ctrl-C stops after the current step and saves the weights so far beside OUT, never over it
const stop = installStopSignal({
  checkpointDir: `${out}.partial`,
  message: `Ctrl-C: finishing this step and saving the weights so far to ${out}.partial/ (Ctrl-C again to quit at once)`,
  log: (l) => console.log(l),
});

const full = await Tokenizer.load();
// Data: the default preset for training; the vocabulary also covers the easy and hard presets so every preset runs.
const preset = SYNTH_PRESETS.default;
const trainRows = generateProblems({ ...preset, seed, count: 20000, split: 'train' });
const testRows = generateProblems({ ...preset, seed, count: 200, split: 'test' });
const vocabTexts: string[] = [];
for (const p of Object.values(SYNTH_PRESETS))
  for (const split of ['train', 'test'] as const)
    for (const r of generateProblems({ ...p, seed, count: 3000, split })) vocabTexts.push(r.question + '\n' + r.answer);
const map = VocabMap.fromCorpus(full, vocabTexts, [...allByteTokens(full), EOS_ID]);
const tok = wrapTokenizer(full, map);
console.log(`vocabulary: ${map.size} tokens (of ${full.vocabSize}); ${trainRows.length} training problems`);

const config: Qwen2Config = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  vocab_size: map.size,
  hidden_size: 128,
  intermediate_size: 384,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
  bos_token_id: tok.eosId,
  eos_token_id: tok.eosId,
  torch_dtype: 'float32',
};
// HF-style init: normal(0, 0.02) weights, zero biases, unit norms.
const rng = new Rng(seed);
const tensors = new Map<string, Float32Array>();
for (const [name, shape] of qwen2ParamShapes(config)) {
  const n = shape.reduce((a, b) => a * b, 1);
  const t = new Float32Array(n);
  if (name.endsWith('norm.weight') || name.includes('layernorm')) t.fill(1);
  else if (!name.endsWith('.bias')) for (let i = 0; i < n; i++) t[i] = 0.02 * rng.normal();
  tensors.set(name, t);
}
const be = await pickBackend(backendName, (l) => console.log(l));
const model = Qwen2.fromTensors(be, config, tensors, 'init');
const opt = new AdamW(model, { lr: peakLr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 });

// Plain chain-of-thought text (annotations removed, as the splitter leaves it), loss on every token.
const textOf = (r: { question: string; answer: string }) => {
  const s = splitRow(r);
  return `${s.question}\n${s.steps.join('')}\n#### ${s.final}`;
};
const encodeRow = (r: { question: string; answer: string }) => [...tok.encode(textOf(r)), tok.eosId];
const dataRng = rng.fork('data');
let order = dataRng.shuffle(trainRows.map((_, i) => i)),
  cursor = 0;
const batchOf = () => {
  const seqs: number[][] = [];
  for (let b = 0; b < B; b++) {
    if (cursor >= order.length) (order = dataRng.shuffle(order)), (cursor = 0);
    seqs.push(encodeRow(trainRows[order[cursor++]]));
  }
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = new Int32Array(B * T).fill(tok.eosId),
    labels = new Int32Array(B * T).fill(-100);
  seqs.forEach((s, b) => s.forEach((id, t) => ((ids[b * T + t] = id), (labels[b * T + t] = id))));
  return { B, T, ids, labels, n: seqs.reduce((a, s) => a + s.length - 1, 0) };
};
const testBatch = (() => {
  const seqs = testRows.slice(0, 64).map(encodeRow);
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = new Int32Array(seqs.length * T).fill(tok.eosId),
    labels = new Int32Array(seqs.length * T).fill(-100);
  seqs.forEach((s, b) => s.forEach((id, t) => ((ids[b * T + t] = id), (labels[b * T + t] = id))));
  return { B: seqs.length, T, ids, labels };
})();

const lrAt = (s: number) =>
  s <= 50 ? (peakLr * s) / 50 : peakLr * (0.1 + 0.45 * (1 + Math.cos((Math.PI * (s - 50)) / Math.max(1, steps - 50))));
const log: { step: number; loss: number; test?: number }[] = [];
await mkdirp(out);
const progress = await createProgress({ total: steps, label: 'pretrain' });
for (let step = 1; step <= steps; step++) {
  await yieldToEventLoop(); // the step's awaits resolve without a turn of the event loop: let a SIGINT be seen
  if (stop.requested) {
    progress.done();
    await stop.guardSave(() => model.save(`${out}.partial`, { dtype: 'F32' }));
    await writeFileAtomic(`${out}.partial/vocab-map.json`, JSON.stringify(map.toJSON()));
    console.log(
      `stopped at step ${step - 1} of ${steps}: weights saved in ${out}.partial/ (pretraining has no --resume; ${out}/ is unchanged)`,
    );
    process.exit(130);
  }
  const ts = performance.now();
  const batch = batchOf();
  model.zeroGrads();
  const r = await model.forward(batch, { grad: true, lossScale: 1 / batch.n });
  model.backward();
  const loss = r.lossSum / r.labelCount;
  if (!Number.isFinite(loss)) throw new Error(`pretrain step ${step}: loss is ${loss}`);
  await opt.update(lrAt(step));
  const rec: { step: number; loss: number; test?: number } = { step, loss };
  if (step % 100 === 0 || step === steps) {
    const t = await model.forward(testBatch);
    rec.test = t.lossSum / t.labelCount;
  }
  log.push(rec);
  progress.update(step, {
    loss: loss.toFixed(3),
    ...(rec.test ? { test: rec.test.toFixed(3) } : {}),
    'tok/s': Math.round((batch.B * batch.T) / ((performance.now() - ts) / 1000)),
  });
}
progress.done();

// Greedy accuracy on held-out problems (plain CoT, no latents).
let correct = 0;
const nEval = 50;
for (const row of testRows.slice(0, nEval)) {
  const s = splitRow(row);
  const g = await generate(model, tok, s.question + '\n', { maxNewTokens: 120, condition: 'none', eosId: tok.eosId });
  correct += reward(g.plain, s.final).reward;
}
const accuracy = correct / nEval;
const seconds = (performance.now() - t0) / 1000;
console.log(`held-out greedy accuracy: ${(accuracy * 100).toFixed(1)}% (${correct}/${nEval}); ${seconds.toFixed(0)} s`);

await model.save(out, { dtype: 'F32' });
await writeFileAtomic(`${out}/vocab-map.json`, JSON.stringify(map.toJSON()));
await writeFileAtomic(
  `${out}/recipe.json`,
  JSON.stringify(
    {
      script: 'examples/pretrain.ts',
      steps,
      batch: B,
      peakLr,
      seed,
      warmup: 50,
      schedule: 'cosine to 10%',
      adamw: { beta1: 0.9, beta2: 0.95, weightDecay: 0.1, clipNorm: 1 },
      data: {
        generator: 'src/data/synth.ts',
        preset: 'default',
        trainProblems: trainRows.length,
        format: 'question \\n steps (annotations removed) \\n#### final <eos>',
      },
      backend: be.name,
      seconds,
      finalTrainLoss: log[log.length - 1].loss,
      finalTestLoss: log[log.length - 1].test,
      heldOutAccuracy: accuracy,
    },
    null,
    2,
  ),
);
await writeFileAtomic(`${out}/pretrain-metrics.jsonl`, log.map((r) => JSON.stringify(r)).join('\n') + '\n');
await writeFileAtomic(
  `${out}/pretrain-loss.svg`,
  linePlot({
    title: 'default model pretraining (plain chain-of-thought, synthetic task)',
    xLabel: 'step',
    yLabel: 'cross-entropy (nats/token)',
    logY: true,
    series: [
      { name: 'train', points: log.map((r) => [r.step, r.loss] as [number, number]) },
      { name: 'held-out', points: log.filter((r) => r.test !== undefined).map((r) => [r.step, r.test!] as [number, number]) },
    ],
  }),
);
console.log(`saved ${out}/ (config.json, model.safetensors, vocab-map.json, recipe.json, pretrain-loss.svg)`);
model.destroy();
be.destroy();
