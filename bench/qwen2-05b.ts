// Scale smoke test: a random-weight model of Qwen2-0.5B's exact shape, written as a bf16 HF checkpoint (~1 GB),
// loaded back through the real loader, then forward + backward on a short sequence. Reports load time, seconds per
// token and peak memory. Not part of `npm test` (it needs ~10 GB of RAM and minutes on a software adapter).
//   npx tsx bench/qwen2-05b.ts [--backend webgpu|wasm|cpu] [--tokens 16] [--dir /tmp/qwen2-0.5b-random] [--bf16]
import { parseArgs } from 'node:util';
import { createBackend } from '../src/backend/index.js';
import type { BackendName } from '../src/backend/types.js';
import { Qwen2 } from '../src/model/qwen2.js';
import { QWEN2_05B, ensureRandomCheckpoint } from './random-checkpoint.js';

export { QWEN2_05B };

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { backend: { type: 'string' }, tokens: { type: 'string' }, dir: { type: 'string' }, bf16: { type: 'boolean' } },
});
const dir = values.dir ?? '/tmp/qwen2-0.5b-random';
const T = Number(values.tokens ?? 16);
let peakRss = 0;
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
const timer = setInterval(sample, 200);

await ensureRandomCheckpoint(dir, QWEN2_05B);

const be = await createBackend({ prefer: (values.backend as BackendName) ?? 'webgpu', log: (l) => console.log(l) });
let t0 = performance.now();
// --bf16: weights stay bf16 on the device (frozen: inference, or the frozen trunk of two-trunk training)
const model = await Qwen2.load(be, dir, { storage: values.bf16 ? 'bf16' : 'f32' });
sample();
console.log(`loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const ids = Int32Array.from({ length: T }, (_, i) => (i * 7919 + 13) % QWEN2_05B.vocab_size);
t0 = performance.now();
const fwd = await model.forward({ B: 1, T, ids, labels: ids });
const tf = (performance.now() - t0) / 1000;
console.log(
  `forward: loss ${(fwd.lossSum / fwd.labelCount).toFixed(4)} (ln V = ${Math.log(QWEN2_05B.vocab_size).toFixed(4)}), ${tf.toFixed(1)} s, ${(tf / T).toFixed(2)} s/token`,
);
sample();
const dev = (be as { stats?: { peakBytes: number } }).stats;
console.log(
  `after load + forward: peak RSS ${(peakRss / 2 ** 30).toFixed(2)} GiB${dev ? `, peak device buffers ${(dev.peakBytes / 2 ** 30).toFixed(2)} GiB` : ''} (${values.bf16 ? 'bf16' : 'f32'} weight storage)`,
);
if (values.bf16) process.exit(0); // bf16 weights are frozen: no gradients to take
t0 = performance.now();
model.zeroGrads();
const r = await model.forward({ B: 1, T, ids, labels: ids }, { grad: true, lossScale: 1 / (T - 1) });
model.backward();
const g = await model.readGrad('model.layers.0.self_attn.q_proj.weight');
const tb = (performance.now() - t0) / 1000;
let gn = 0;
for (const x of g) gn += x * x;
sample();
console.log(
  `forward+backward: loss ${(r.lossSum / r.labelCount).toFixed(4)}, ${tb.toFixed(1)} s, ${(tb / T).toFixed(2)} s/token; |grad q_proj.0| = ${Math.sqrt(gn).toExponential(3)}`,
);
console.log(`peak RSS ${(peakRss / 2 ** 30).toFixed(2)} GiB (host; a software adapter's device memory is host memory too)`);
clearInterval(timer);
model.destroy();
be.destroy();
