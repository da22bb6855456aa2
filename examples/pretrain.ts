// Pretrains the sub-step model (models/scratch): a small Qwen2 trained from scratch on chain-of-thought text of the
// synthetic task, over a restricted Qwen2 vocabulary. The text is a mixture of the default preset and the serial
// preset (one 2-digit x 2-digit product), each written either as plain chain-of-thought or in scratch form, with every
// calculator step's elementary sub-steps written out before its result (src/data/expand.ts):
//   ... 48 * 37 = 48 * 30 = 1440; 48 * 7 = 336; 1440 + 336 = 1776; 1776 marbles ...
// Why: the sub-step conditions (scratch, internalize; src/latent/curriculum.ts) start from scratch text, as Coconut's
// stage 0 starts from a CoT-trained model. A model that never saw the scratch form cannot do its partial products, and
// then a curriculum has nothing to internalize (the README's first serial grid: every condition under 1 %).
//   npx tsx examples/pretrain.ts [--steps 800] [--out models/scratch] [--backend wasm] [--seed 0]
// The embedded default (models/default) is this script run twice: the command above (models/scratch: the format of
// both presets, plain and scratch form), then a continuation with arithmetic drills (--drill-share, below), which is
// what taught it the partial products and sums (held-out serial accuracy 0 % -> 80 %, default preset 2 % -> 26 %):
//   npx tsx examples/pretrain.ts --init models/scratch --drill-share 0.6 --lr 2e-3 --steps 1500 --out models/default
// The previous default (plain chain-of-thought of the default preset only, 1,000 steps) was made by this script as it
// was at commit 6e67fc8 (`git show 6e67fc8:examples/pretrain.ts`); the README's 3,000-step table is on that model.
// The recipe (config, data, optimizer) is saved beside the weights as recipe.json, with the loss curve.
import { parseFlags, UsageError } from '../src/cli/_args.ts';
import { BACKEND_CHOICES, FlagReader, joinNegativeValues, valueFlagNames } from '../src/cli/flags.ts';
import { installStopSignal, yieldToEventLoop } from '../src/train/signals.ts';
import { relaunchOutsideTsxWrapper } from '../src/node/tsx-relaunch.ts';
import { readFileSync } from 'node:fs';
import { pickBackend, loadModel, EOS_ID, wrapTokenizer, splitRow } from '../src/setup/loaders.ts';
import { mkdirp, writeFileAtomic } from '../src/io/source.ts';
import { initQwen2Tensors, Qwen2, type Qwen2Config } from '../src/model/qwen2.ts';
import { VocabMap, allByteTokens } from '../src/text/vocab-map.ts';
import { AdamW } from '../src/train/adamw.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';
import { generateProblems, SYNTH_PRESETS } from '../src/data/synth.ts';
import { linePlot } from '../src/io/plot.ts';
import { Rng } from '../src/data/rng.ts';
import { createProgress } from '../src/io/progress.ts';
import { generate } from '../src/generation/generate.ts';
import { reward } from '../src/data/grade.ts';
import { expandAnnotation } from '../src/data/expand.ts';
import { withSubsteps } from '../src/latent/substeps.ts';
import { plainForm, scratchForm, scratchText, type SubstepRow } from '../src/latent/curriculum.ts';

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
  'scratch-share': { type: 'string' },
  'serial-share': { type: 'string' },
  'drill-share': { type: 'string' },
  init: { type: 'string' },
  threads: { type: 'string' },
} as const;
let values: ReturnType<typeof parseFlags<typeof FLAGS>>['values'];
let steps: number,
  B: number,
  peakLr: number,
  seed: number,
  backendName: string | undefined,
  scratchShare: number,
  serialShare: number,
  drillShare: number,
  threads: number | undefined;
try {
  values = parseFlags('pretrain', joinNegativeValues(process.argv.slice(2), valueFlagNames(FLAGS)), FLAGS).values;
  const f = new FlagReader('pretrain', values);
  steps = f.int('steps', 800, { min: 1 });
  B = f.int('batch', 16, { min: 1 });
  peakLr = f.number('lr', 3e-3, { above: 0, max: 10 });
  seed = f.int('seed', 0);
  scratchShare = f.number('scratch-share', 0.65, { min: 0, max: 1 });
  serialShare = f.number('serial-share', 0.6, { min: 0, max: 1 });
  drillShare = f.number('drill-share', 0, { min: 0, max: 1 });
  threads = f.has('threads') ? f.int('threads', 1, { min: 1 }) : undefined;
  backendName = f.has('backend') ? f.choice('backend', BACKEND_CHOICES, 'cpu') : undefined;
} catch (e) {
  console.error(`error: ${(e as Error).message}${e instanceof UsageError ? ' (see --help)' : ''}`);
  process.exit(e instanceof UsageError ? 2 : 1);
}
if (values.help) {
  console.log(
    'npx tsx examples/pretrain.ts [--steps 800] [--batch 16] [--lr 3e-3] [--scratch-share 0.65] [--serial-share 0.6] [--drill-share 0] [--init DIR] [--out models/scratch] [--backend B] [--threads N] [--seed 0]',
  );
  console.log('  --scratch-share: share of sequences written in scratch form (sub-steps spelled out), the rest plain chain-of-thought');
  console.log('  --serial-share: share of sequences from the serial preset, the rest from the default preset');
  console.log('  --drill-share: share of sequences that are arithmetic drills: breakpoints with their sub-steps and no prose');
  console.log('  --init DIR: continue from this model (its weights and vocab-map.json) instead of a random initialisation');
  process.exit(0);
}
const out = values.out ?? 'models/scratch';
const t0 = performance.now();
// no resume here: Ctrl-C stops after the current step and saves the weights so far beside OUT, never over it
const stop = installStopSignal({
  checkpointDir: `${out}.partial`,
  message: `Ctrl-C: finishing this step and saving the weights so far to ${out}.partial/ (Ctrl-C again to quit at once)`,
  log: (l) => console.log(l),
});

const full = await Tokenizer.load();
// Data: the default and serial presets for training (each problem in plain and scratch form); the vocabulary also
// covers the easy and hard presets, in both forms, so every preset and condition runs.
type Source = { name: 'default' | 'serial'; train: SubstepRow[]; test: SubstepRow[] };
const withSteps = (rows: { question: string; answer: string }[]) => withSubsteps(rows.map(splitRow), expandAnnotation).rows;
const sources: Source[] = (['default', 'serial'] as const).map((name) => ({
  name,
  train: withSteps(generateProblems({ ...SYNTH_PRESETS[name], seed, count: 20000, split: 'train' })),
  test: withSteps(generateProblems({ ...SYNTH_PRESETS[name], seed, count: 200, split: 'test' })),
}));
// Each sequence is plain chain-of-thought (plainForm: annotations removed, as the splitter leaves it), scratch form
// (scratchForm: each breakpoint's sub-steps written out, exactly as the scratch condition's sequences have them) or a
// drill; loss on every token.
// An arithmetic drill: three breakpoints of training problems with their sub-steps and result, no prose, e.g.
//   34 * 99 = 34 * 90 = 3060; 34 * 9 = 306; 3060 + 306 = 3366; 3366
// Why: in a word problem most tokens are prose the model learns early; the partial products and sums are a few
// tokens per problem, too few for a 0.9M-parameter model to learn them in a few thousand steps (the first sub-step
// model wrote the scratch form's structure on every serial problem but not its arithmetic). Drills come from the
// training problems only, so the held-out problems stay unseen.
const drillLine = (r: SubstepRow, j: number) =>
  `${r.annotations![j].expr.replace(/\s*([*+\-/])\s*/g, ' $1 ')} = ${r.substeps[j].map(scratchText).join('')}${r.annotations![j].result}\n`;
const drillText = (pick: () => SubstepRow) => {
  const lines: string[] = [];
  while (lines.length < 3) {
    const r = pick();
    for (let j = 0; j < r.annotations!.length && lines.length < 3; j++) lines.push(drillLine(r, j));
  }
  return lines.join('');
};
// The vocabulary (a fresh model only): the corpus also covers the easy and hard presets, in both forms
const vocabTexts = () => {
  const texts: string[] = [];
  for (const p of Object.values(SYNTH_PRESETS))
    for (const split of ['train', 'test'] as const)
      for (const r of withSteps(generateProblems({ ...p, seed, count: 3000, split }))) texts.push(plainForm(r), scratchForm(r));
  return texts;
};
// --init: continue from a model, keeping its vocabulary (its ids are what its embedding rows mean)
const readInitMap = (dir: string) => {
  const file = `${dir}/vocab-map.json`;
  try {
    return VocabMap.fromJSON(JSON.parse(readFileSync(file, 'utf8')), file);
  } catch (e) {
    console.error(
      `error: --init ${dir}: ${(e as Error).message} (a model made by this script has config.json, model.safetensors, vocab-map.json)`,
    );
    process.exit(1);
  }
};
const map = values.init ? readInitMap(values.init) : VocabMap.fromCorpus(full, vocabTexts(), [...allByteTokens(full), EOS_ID]);
const tok = wrapTokenizer(full, map);

console.log(
  `vocabulary: ${map.size} tokens (of ${full.vocabSize}); ${sources.map((s) => `${s.train.length} ${s.name}`).join(' + ')} training problems; ${(scratchShare * 100).toFixed(0)} % of sequences in scratch form, ${(serialShare * 100).toFixed(0)} % from the serial preset`,
);

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
const be = await pickBackend(backendName, (l) => console.log(l), threads);
// HF-style init (normal(0, 0.02) weights, zero biases, unit norms), or the --init model's weights
const rng = new Rng(seed);
const model = values.init ? (await loadModel(be, values.init)).model : Qwen2.fromTensors(be, config, initQwen2Tensors(config, rng), 'init');
if (values.init && model.V !== config.vocab_size)
  throw new Error(`--init ${values.init}: vocab_size ${model.V}, its vocab-map.json has ${map.size}`);
const opt = new AdamW(model, { lr: peakLr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 });

const encode = (text: string) => [...tok.encode(text), tok.eosId];
const dataRng = rng.fork('data');
const cursors = sources.map((src) => ({ order: dataRng.shuffle(src.train.map((_, i) => i)), at: 0 }));
const batchOf = () => {
  const seqs: number[][] = [];
  const next = () => {
    const si = dataRng.float() < serialShare ? 1 : 0;
    const c = cursors[si];
    if (c.at >= c.order.length) (c.order = dataRng.shuffle(c.order)), (c.at = 0);
    return sources[si].train[c.order[c.at++]];
  };
  for (let b = 0; b < B; b++) {
    // the drill draw comes first and only when drills are on, so --drill-share 0 keeps the old data order
    if (drillShare > 0 && dataRng.float() < drillShare) {
      seqs.push(encode(drillText(next)));
      continue;
    }
    const row = next();
    seqs.push(encode(dataRng.float() < scratchShare ? scratchForm(row) : plainForm(row)));
  }
  // T rounded up to a multiple of 16 (padding is unlabelled, after every real token, so causal attention never sees
  // it): the model's activation arena keeps one set of buffers per distinct shape, and the mixture's lengths vary
  // enough (short serial plain CoT to long default scratch form) that one set per exact T outgrew WASM's 4 GiB.
  const T = Math.ceil(Math.max(...seqs.map((s) => s.length)) / 16) * 16;
  const ids = new Int32Array(B * T).fill(tok.eosId),
    labels = new Int32Array(B * T).fill(-100);
  seqs.forEach((s, b) => s.forEach((id, t) => ((ids[b * T + t] = id), (labels[b * T + t] = id))));
  return { B, T, ids, labels, n: seqs.reduce((a, s) => a + s.length - 1, 0) };
};
// held-out loss: 16 problems of each preset in each form
const testBatch = (() => {
  const seqs = sources.flatMap((src) => src.test.slice(0, 16).flatMap((r) => [encode(plainForm(r)), encode(scratchForm(r))]));
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

// Greedy accuracy on held-out problems of each preset (no latents; the model writes plain or scratch form as it
// likes), and how often it chose to write the sub-steps out.
const nEval = 50;
const heldOut: Record<string, { accuracy: number; correct: number; problems: number; wroteScratch: number }> = {};
for (const src of sources) {
  let correct = 0,
    wroteScratch = 0;
  for (const row of src.test.slice(0, nEval)) {
    const g = await generate(model, tok, row.question + '\n', { maxNewTokens: 160, condition: 'none', eosId: tok.eosId });
    correct += reward(g.plain, row.final).reward;
    if (g.plain.includes('; ')) wroteScratch++;
  }
  heldOut[src.name] = { accuracy: correct / nEval, correct, problems: nEval, wroteScratch };
  console.log(
    `held-out greedy accuracy, ${src.name} preset: ${((correct / nEval) * 100).toFixed(1)}% (${correct}/${nEval}; sub-steps written out in ${wroteScratch})`,
  );
}
const seconds = (performance.now() - t0) / 1000;
console.log(`${seconds.toFixed(0)} s`);

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
        generator: 'src/synth.ts',
        presets: Object.fromEntries(sources.map((s) => [s.name, s.train.length])),
        serialShare,
        scratchShare,
        drillShare,
        ...(values.init ? { init: values.init } : {}),
        format:
          'question \\n steps (annotations removed; in scratch form each breakpoint is preceded by its sub-steps "A op B = C; ") \\n#### final <eos>',
      },
      backend: be.name,
      seconds,
      finalTrainLoss: log[log.length - 1].loss,
      finalTestLoss: log[log.length - 1].test,
      heldOut,
    },
    null,
    2,
  ),
);
await writeFileAtomic(`${out}/pretrain-metrics.jsonl`, log.map((r) => JSON.stringify(r)).join('\n') + '\n');
await writeFileAtomic(
  `${out}/pretrain-loss.svg`,
  linePlot({
    title: 'default model pretraining (plain and scratch-form chain-of-thought, default + serial presets)',
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
