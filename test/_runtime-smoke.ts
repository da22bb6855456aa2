// Public-API smoke test, run as a plain script by every runtime: `npx tsx`, `npx bun run`, `npx deno run -A`.
// test/runtimes.test.ts runs it against the sources; test/package.test.ts transpiles it, points the import below
// at the installed tarball ('latentlm') and runs it from an empty project. It prints one line
// `SMOKE {json}` and exits non-zero on the first failed check, naming it.
import * as lib from '../src/index.ts';

const checks: string[] = [];
function check(cond: unknown, what: string): void {
  if (!cond) throw new Error(`smoke check failed: ${what}`);
  checks.push(what);
}

const runtime =
  typeof (globalThis as { Deno?: unknown }).Deno !== 'undefined'
    ? 'deno'
    : typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined'
      ? 'bun'
      : 'node';
const t0 = performance.now();

// 1. Tokenizer (the embedded Qwen2 BPE, in WASM). Ids from HF `tokenizers` for Qwen/Qwen2-0.5B: "Hello world".
const tok = await lib.Tokenizer.load();
const hello = Array.from(tok.encode('Hello world'), Number);
check(JSON.stringify(hello) === '[9707,1879]', `Qwen2 ids of "Hello world" are [9707,1879] (got [${hello}])`);
const text = 'Natalia sold 48/2 = 24 clips in May. 🙂 ünïcödé';
check(tok.decode(tok.encode(text)) === text, 'decode(encode(text)) round-trips, emoji and accents included');

// 2. GSM8K row split at its calculator annotations (the WASM splitter).
const answer =
  'Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72';
const split = lib.splitAnswer(answer);
check(split.final === '72', `final answer is "72" (got ${JSON.stringify(split.final)})`);
check(
  split.annotations.length === 2 && split.annotations[1].expr === '48+24' && split.annotations[1].result === '72',
  'two annotations, the second 48+24=72',
);
check(lib.reward('... so the answer is\n#### 72', '72').reward === 1, 'reward() accepts the right final answer');
const expansion = lib.expandAnnotation({ expr: '48*37', result: '1776' });
check(
  expansion.ok && expansion.steps.join(' | ') === '48 * 30 = 1440 | 48 * 7 = 336 | 1440 + 336 = 1776',
  'expandAnnotation() writes 48*37 as three exact sub-steps',
);

// 3. One forward of a tiny random Qwen2 on the CPU backend: the loss of random weights is close to ln(vocab).
const config = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  vocab_size: 64,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  torch_dtype: 'float32',
} as unknown as lib.Qwen2Config;
const rng = new lib.Rng(1);
const tensors = new Map<string, Float32Array>();
for (const [name, shape] of lib.qwen2ParamShapes(config)) {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  if (name.endsWith('norm.weight')) a.fill(1);
  else for (let i = 0; i < n; i++) a[i] = (rng.float() - 0.5) * 0.04;
  tensors.set(name, a);
}
const be = new lib.CpuBackend();
const model = lib.Qwen2.fromTensors(be, config, tensors, 'smoke');
const T = 12;
const ids = Int32Array.from({ length: T }, (_, i) => (i * 7 + 3) % 64);
const r = await model.forward({ B: 1, T, ids, labels: ids }, { wantLogits: true });
const loss = r.lossSum / r.labelCount;
check(r.labelCount === T - 1, `${T - 1} labels (got ${r.labelCount})`);
check(
  Number.isFinite(loss) && Math.abs(loss - Math.log(64)) < 0.2,
  `tiny random model loss ${loss.toFixed(4)} is within 0.2 of ln(64) = ${Math.log(64).toFixed(4)}`,
);
check(r.logits?.length === T * 64, 'logits are [T, vocab]');
model.destroy();
be.destroy();

// 4. Which backend this runtime gets by default (informational; never fails the smoke test).
let auto = 'unavailable';
try {
  const b = await lib.createBackend({ prefer: 'auto' });
  auto = `${b.name}: ${b.info}`;
  b.destroy();
} catch (e) {
  auto = `error: ${(e as Error).message}`;
}

console.log(`SMOKE ${JSON.stringify({ runtime, ok: true, checks, loss, autoBackend: auto, ms: Math.round(performance.now() - t0) })}`);
// Dawn and gpu.js may keep handles alive; the smoke test is done.
if (typeof process !== 'undefined') process.exit(0);
