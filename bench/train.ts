// Training throughput (tokens/s of forward+backward+AdamW) of a small Qwen2 on every available backend,
// with the plain-JS CpuBackend measured in the same run as the baseline (these machines are noisy: compare ratios).
// For a backend that counts its work (WebGPU), also the dispatch economy of one training step after warm-up:
// dispatches, queue submits, GPU objects created (buffers + bind groups; 0 once warm) and bytes read back.
//   npx tsx bench/train.ts [--json] [--backend webgpu|wasm|gpujs] [--seconds 4]
// Machine-readable form, one JSON object {backend, threads, config, tokensPerSec, bestStepTokensPerSec} per line:
//   npx tsx bench/train.ts --json --config small|mid [--threads N] [--backend wasm|cpu|webgpu|gpujs] [--seconds S] [--torch]
// (wasm without --threads: every thread count 1..cores; --torch adds PyTorch on the same config, bench/torch_train.py).
import { parseArgs } from 'node:util';
import type { Backend } from '../src/backend/types.js';
import { CpuBackend } from '../src/backend/cpu.js';
import { Qwen2, qwen2ParamShapes, type Qwen2Config } from '../src/model/qwen2.js';
import { AdamW } from '../src/train/adamw.js';

export const smallConfig: Qwen2Config = {
  vocab_size: 512,
  hidden_size: 128,
  intermediate_size: 384,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
  max_position_embeddings: 4096,
};

/** The issue-13 "mid" model: a step up from a toy, where BLAS-backed PyTorch used to win on a laptop. */
export const midConfig: Qwen2Config = {
  vocab_size: 4096,
  hidden_size: 512,
  intermediate_size: 1536,
  num_hidden_layers: 8,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
  max_position_embeddings: 4096,
};

/** The named bench configurations with their batch shape. */
export const TRAIN_CONFIGS: Record<'small' | 'mid', { config: Qwen2Config; B: number; T: number }> = {
  small: { config: smallConfig, B: 4, T: 64 },
  mid: { config: midConfig, B: 4, T: 128 },
};

export function randomTensors(c: Qwen2Config, seed = 1): Map<string, Float32Array> {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
  const out = new Map<string, Float32Array>();
  for (const [n, shape] of qwen2ParamShapes(c)) {
    const len = shape.reduce((a, b) => a * b, 1);
    out.set(
      n,
      Float32Array.from({ length: len }, () => (n.includes('norm') ? 1 : 0.04 * rnd())),
    );
  }
  return out;
}

/** What one training step costs in GPU work items (see WebGPUBackend.stats); `created` = buffers + bind groups. */
export interface StepEconomy {
  dispatches: number;
  submits: number;
  created: number;
  buffersCreated: number;
  bindGroupsCreated: number;
  reads: number;
  readBytes: number;
}

type Counters = Omit<StepEconomy, 'created'>;
const countersOf = (be: Backend): Counters | undefined => (be as { stats?: Counters }).stats;

/** Counts what `step` costs on a backend with WebGPU-style stats (undefined on the others). */
export async function stepEconomy(be: Backend, step: () => Promise<void>): Promise<StepEconomy | undefined> {
  const s = countersOf(be);
  if (!s || typeof s.buffersCreated !== 'number') {
    await step();
    return undefined;
  }
  const before = { ...s };
  await step();
  const d = (k: keyof Counters) => s[k] - before[k];
  return {
    dispatches: d('dispatches'),
    submits: d('submits'),
    created: d('buffersCreated') + d('bindGroupsCreated'),
    buffersCreated: d('buffersCreated'),
    bindGroupsCreated: d('bindGroupsCreated'),
    reads: d('reads'),
    readBytes: d('readBytes'),
  };
}

export async function trainTokensPerSec(be: Backend, c = smallConfig, B = 4, T = 64, seconds = 4): Promise<number> {
  return (await measureTraining(be, c, B, T, seconds)).tokensPerSec;
}

/** One training step of `model` (forward + backward + AdamW) on a fixed batch of B x T ids; destroy() frees model and optimizer. */
export function trainingStep(model: Qwen2, B: number, T: number): { step: () => Promise<void>; destroy: () => void } {
  const c = model.config;
  const opt = new AdamW(model);
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % c.vocab_size);
  return {
    step: async () => {
      model.zeroGrads();
      await model.forward({ B, T, ids, labels: ids }, { grad: true, lossScale: 1 / (B * (T - 1)) });
      model.backward();
      await opt.update(1e-4);
    },
    destroy: () => {
      opt.destroy();
      model.destroy();
    },
  };
}

/**
 * Tokens/s of training steps after `warmup` steps, and the economy of the first step after them. `model`
 * (destroyed at the end) defaults to random weights of config `c`.
 */
export async function measureTraining(
  be: Backend,
  c = smallConfig,
  B = 4,
  T = 64,
  seconds = 4,
  warmup = 2,
  model = Qwen2.fromTensors(be, c, randomTensors(c)),
): Promise<{ tokensPerSec: number; bestStepTokensPerSec: number; economy?: StepEconomy; steps: number }> {
  const { step, destroy } = trainingStep(model, B, T);
  for (let i = 0; i < warmup; i++) await step(); // warm-up: pipelines, buffers, bind groups, AdamW state, JIT
  const economy = await stepEconomy(be, step);
  const t0 = performance.now();
  let n = 0,
    best = Infinity;
  while (performance.now() - t0 < seconds * 1000 || n < 2) {
    const s = performance.now();
    await step();
    best = Math.min(best, performance.now() - s);
    n++;
  }
  const tps = (n * B * T) / ((performance.now() - t0) / 1000);
  destroy();
  // the fastest step too: on a shared host a slow spell lowers the window's mean, rarely every step
  return { tokensPerSec: tps, bestStepTokensPerSec: (B * T) / (best / 1000), economy, steps: n };
}

export interface TrainRow extends Partial<StepEconomy> {
  backend: string;
  info: string;
  tokensPerSec: number;
  vsJs: number;
}

/** The plain-JS baseline, then each backend of `only` (default: all) that can be created here. */
export async function benchTrain(seconds = 4, only?: string[]): Promise<TrainRow[]> {
  const rows: TrainRow[] = [];
  const js = await trainTokensPerSec(new CpuBackend(), smallConfig, 4, 64, seconds);
  rows.push({ backend: 'cpu (plain JS baseline)', info: 'CpuBackend', tokensPerSec: js, vsJs: 1 });
  const makers: [string, () => Promise<Backend>][] = [
    ['wasm', async () => (await import('../src/backend/wasm.js')).createWasmBackend()],
    ['webgpu', async () => (await import('../src/backend/webgpu.js')).createWebGPUBackend()],
    ['gpujs', async () => (await import('../src/backend/gpujs.js')).createGpujsBackend()],
  ];
  for (const [name, make] of makers) {
    if (only && !only.includes(name)) continue;
    let be: Backend;
    try {
      be = await make();
    } catch (e) {
      rows.push({ backend: name, info: `unavailable: ${(e as Error).message.split('\n')[0]}`, tokensPerSec: NaN, vsJs: NaN });
      continue;
    }
    const { tokensPerSec: tps, economy } = await measureTraining(be, smallConfig, 4, 64, seconds);
    rows.push({ backend: name, info: be.info, tokensPerSec: tps, vsJs: tps / js, ...economy });
    be.destroy();
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      json: { type: 'boolean' },
      config: { type: 'string' },
      threads: { type: 'string' },
      backend: { type: 'string' },
      seconds: { type: 'string' },
      torch: { type: 'boolean' },
    },
  });
  if (values.json) await jsonMain(values);
  else {
    const seconds = Number(values.seconds ?? 4);
    if (!(seconds > 0)) throw new Error(`--seconds must be a positive number (got ${values.seconds})`);
    const rows = await benchTrain(seconds, values.backend?.split(','));
    console.table(
      rows.map((r) => ({ ...r, tokensPerSec: r.tokensPerSec.toFixed(0), vsJs: r.vsJs.toFixed(2) + 'x', info: r.info.slice(0, 60) })),
    );
  }
}

/** One JSON line per backend x thread count: {backend, threads, config, tokensPerSec} plus, on WebGPU, the step's economy. */
async function jsonMain(v: { config?: string; threads?: string; backend?: string; seconds?: string; torch?: boolean }): Promise<void> {
  const name = v.config ?? 'small';
  if (name !== 'small' && name !== 'mid') throw new Error(`--config must be small or mid, got '${name}'`);
  const { config, B, T } = TRAIN_CONFIGS[name];
  const seconds = v.seconds === undefined ? 4 : Number(v.seconds);
  if (!(seconds > 0)) throw new Error(`--seconds expects a positive number, got '${v.seconds}'`);
  const backend = v.backend ?? 'wasm';
  const { createBackend } = await import('../src/backend/index.js');
  const { parseThreads } = await import('../src/setup/loaders.js');
  const { availableCores } = await import('../src/backend/wasm.js');
  const fixed = parseThreads(v.threads);
  const counts = fixed ? [fixed] : backend === 'wasm' ? Array.from({ length: await availableCores() }, (_, i) => i + 1) : [1];
  for (const threads of counts) {
    const be = await createBackend({ prefer: backend as 'wasm', threads });
    const { tokensPerSec: tps, bestStepTokensPerSec: best, economy } = await measureTraining(be, config, B, T, seconds);
    console.log(
      JSON.stringify({
        backend,
        threads: (be as { threads?: number }).threads ?? 1,
        config: name,
        tokensPerSec: Math.round(tps * 10) / 10,
        bestStepTokensPerSec: Math.round(best * 10) / 10,
        ...economy,
      }),
    );
    be.destroy();
  }
  if (v.torch) {
    const { runTorch } = await import('./torch.js');
    for (const threads of counts) {
      for (const r of runTorch(threads, { train: [{ name, config, B, T }], seconds })) {
        if ('note' in r) console.error(`pytorch: ${r.note}`);
        else console.log(JSON.stringify(r));
      }
    }
  }
}
