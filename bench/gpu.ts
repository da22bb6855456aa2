// The WebGPU benchmark for a machine with a hardware GPU (`sh bench/gpu.sh`, about 5 minutes there): matmul
// GFLOP/s per kernel variant at Qwen2-0.5B's shapes (batch 8 x 256 = 2048 tokens; forward, dX and dW forms),
// attention forward/backward at T = 256 and 1024 (14 query heads over 2 KV heads, D = 64), and training tokens/s
// of the Qwen2-0.5B shape (random bf16 checkpoint, batch 8 x 256) with its dispatch economy, with the workgroup and (where
// the adapter has `subgroups`) the subgroup reductions, plus adapter info and the auto choices; and phase-1 latent
// steps of the embedded default model with one forward per sequence vs aligned segments (Phase1Options.batchForward).
// Prints one JSON line per figure ({"bench":"gpu",...}) and a table per section.
//   npx tsx bench/gpu.ts [--quick] [--peak-tflops 10.4] [--seconds 0.5] [--skip-train] [--dir /tmp/qwen2-0.5b-random]
// --quick: reduced shapes and a small model, for software adapters (what test/bench-gpu.test.ts runs).
// --peak-tflops: the adapter's fp32 peak (from its datasheet: WebGPU cannot tell), to print matmul % of peak.
import { parseArgs } from 'node:util';
import type { AttentionShape } from '../src/backend/types.js';
import { createWebGPUBackend } from '../src/backend/webgpu.js';
import { MATMUL_TILES, type KernelFamily, type MatmulKernel, type MatmulTile, type Reductions } from '../src/backend/webgpu-kernels.js';
import { Qwen2 } from '../src/model/qwen2.js';
import { QWEN2_05B, ensureRandomCheckpoint } from './random-checkpoint.js';
import { measureTraining, smallConfig } from './train.js';
import { loadData, loadDefaultModel } from '../src/setup/loaders.js';
import { Phase1Trainer } from '../src/latent/trainer.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    quick: { type: 'boolean' },
    'peak-tflops': { type: 'string' },
    seconds: { type: 'string' },
    'skip-train': { type: 'boolean' },
    dir: { type: 'string' },
  },
});
const quick = !!values.quick;
const peak = values['peak-tflops'] ? Number(values['peak-tflops']) * 1e12 : undefined;
if (peak !== undefined && !(peak > 0)) throw new Error(`--peak-tflops must be a positive number (got ${values['peak-tflops']})`);
const budget = Number(values.seconds ?? (quick ? 0.05 : 0.5));
if (!(budget > 0)) throw new Error(`--seconds must be a positive number (got ${values.seconds})`);

/** One figure: a JSON line now, a table row at the end of its section. */
function emit(figure: string, row: Record<string, unknown>): Record<string, unknown> {
  console.log(JSON.stringify({ bench: 'gpu', figure, ...row }));
  return row;
}

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) a[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.5;
  return a;
}

/** Seconds per call of `op`: one warm-up (pipeline compile), then batches of calls until `budget` has passed. */
async function secondsPer(op: () => void, sync: () => Promise<unknown>): Promise<number> {
  op();
  await sync();
  let n = 0,
    batch = 1;
  const t0 = performance.now();
  while (performance.now() - t0 < budget * 1000) {
    for (let i = 0; i < batch; i++) op();
    await sync();
    n += batch;
    batch = Math.min(batch * 2, 64);
  }
  return (performance.now() - t0) / 1000 / n;
}

const mk = (kernels: KernelFamily) => createWebGPUBackend({ kernels });
const probe = await mk('tiled');
const f16 = probe.features.has('shader-f16');
const subgroups = probe.features.has('subgroups');
const auto = await autoChoice();
emit('adapter', {
  info: probe.info,
  software: /software adapter/.test(probe.info),
  features: [...probe.features],
  auto: auto.kernels,
  autoReductions: auto.reductions,
  subgroupNote: auto.note,
});
probe.destroy();

async function autoChoice(): Promise<{ kernels: string; reductions: string; note: string }> {
  const be = await createWebGPUBackend({ kernels: 'auto' });
  const r = { kernels: be.kernels, reductions: be.reductions, note: be.subgroupNote };
  be.destroy();
  return r;
}

// ---------------------------------------------------------------- matmul
const M = quick ? 32 : 2048; // tokens: batch 8 x 256
const H = QWEN2_05B.hidden_size,
  I = QWEN2_05B.intermediate_size,
  KV = (H / QWEN2_05B.num_attention_heads) * QWEN2_05B.num_key_value_heads;
// [label, M, N, K, transA, transB]: forward y = x W^T (W [out, in] as in HF), dX = dY W, dW = dY^T X
const shapes: [string, number, number, number, boolean, boolean][] = quick
  ? [
      ['q/o proj fwd (1/4 width)', M, H / 4, H / 4, false, true],
      ['k/v proj dW (1/4 width)', KV, H / 4, M, true, false],
    ]
  : [
      ['q/o proj fwd', M, H, H, false, true],
      ['k/v proj fwd', M, KV, H, false, true],
      ['gate/up proj fwd', M, I, H, false, true],
      ['down proj fwd', M, H, I, false, true],
      ['lm_head fwd (16384 of 151936 rows)', M, 16384, H, false, true],
      ['gate/up proj dX', M, H, I, false, false],
      ['gate/up proj dW', I, H, M, true, false],
    ];
// --quick: the default tile only (the others compile slowly on software adapters; test/backend-webgpu.test.ts covers them)
const tiles = Object.entries(MATMUL_TILES).slice(0, quick ? 1 : undefined);
type Variant = { name: string; kernel: MatmulKernel; tile?: MatmulTile; f16?: boolean };
const variants: Variant[] = [
  ...(quick ? [] : [{ name: 'naive', kernel: 'naive' as const }]),
  { name: 'blocked 4x4 (simple)', kernel: 'blocked' },
  ...tiles.map(([n, tile]) => ({ name: `tiled ${n}`, kernel: 'tiled' as const, tile })),
  ...(f16 ? tiles.map(([n, tile]) => ({ name: `tiled ${n} f16`, kernel: 'tiled' as const, tile, f16: true })) : []),
];
const matmulRows: Record<string, unknown>[] = [];
{
  const be = await mk('tiled');
  for (const [label, m, n, k, transA, transB] of shapes) {
    const a = be.alloc(m * k),
      b = be.alloc(n * k),
      c = be.alloc(m * n);
    be.upload(a, rand(m * k, 1));
    be.upload(b, rand(n * k, 2));
    const row: Record<string, unknown> = { shape: `${label}: M=${m} N=${n} K=${k}` };
    for (const v of variants) {
      be.matmulKernel = v.kernel;
      if (v.tile) be.matmulTile = v.tile;
      be.matmulF16 = !!v.f16;
      const s = await secondsPer(
        () => be.matmul({ a, b, c, M: m, N: n, K: k, transA, transB }),
        () => be.read(c, 0, 1),
      );
      const gflops = (2 * m * n * k) / s / 1e9;
      emit('matmul', {
        shape: label,
        M: m,
        N: n,
        K: k,
        transA,
        transB,
        variant: v.name,
        ms: +(s * 1e3).toFixed(3),
        gflops: +gflops.toFixed(1),
        ...(peak ? { pctPeak: +((gflops * 1e9 * 100) / peak).toFixed(1) } : {}),
      });
      row[v.name] = gflops.toFixed(1);
    }
    matmulRows.push(row);
    for (const t of [a, b, c]) be.free(t);
  }
  be.destroy();
}
console.log(`\nmatmul GFLOP/s${peak ? ` (fp32 peak given: ${(peak / 1e12).toFixed(1)} TFLOP/s)` : ''}`);
console.table(matmulRows);

// ---------------------------------------------------------------- attention
const attnRows: Record<string, unknown>[] = [];
for (const [B, T] of quick
  ? [
      [1, 16],
      [1, 40],
    ]
  : [
      [8, 256],
      [2, 1024],
    ]) {
  const s: AttentionShape = {
    B,
    Tq: T,
    Hq: QWEN2_05B.num_attention_heads,
    Hkv: QWEN2_05B.num_key_value_heads,
    D: H / QWEN2_05B.num_attention_heads,
    qStart: 0,
    kvCap: T,
  };
  const nq = B * T * s.Hq * s.D,
    nkv = B * T * s.Hkv * s.D,
    nl = B * s.Hq * T;
  // causal: half the T x T scores; forward 2 matmuls (QK^T, PV), backward 5 (recompute S, dV, dP, dQ, dK)
  const fwdFlop = (2 * 2 * B * s.Hq * s.D * (T * (T + 1))) / 2,
    bwdFlop = 2.5 * fwdFlop;
  const row: Record<string, unknown> = { shape: `B=${B} T=${T} Hq=${s.Hq} Hkv=${s.Hkv} D=${s.D}` };
  for (const family of ['simple', 'tiled'] as const) {
    const be = await mk(family);
    const t = [nq, nkv, nkv, nq, nl, nq, nq, nkv, nkv].map((n, i) => {
      const x = be.alloc(n);
      be.upload(x, rand(n, 10 + i));
      return x;
    });
    const [q, k, v, o, l, g, dq, dk, dv] = t;
    const f = await secondsPer(
      () => be.attention({ q, kCache: k, vCache: v, out: o, lse: l, ...s }),
      () => be.read(l, 0, 1),
    );
    const bw = await secondsPer(
      () => be.attentionBackward({ dOut: g, q, kCache: k, vCache: v, out: o, lse: l, dq, dkCache: dk, dvCache: dv, ...s }),
      () => be.read(dq, 0, 1),
    );
    const name = family === 'tiled' ? 'flash (tiled)' : 'per-query (simple)';
    emit('attention', {
      B,
      T,
      Hq: s.Hq,
      Hkv: s.Hkv,
      D: s.D,
      variant: name,
      fwdMs: +(f * 1e3).toFixed(2),
      bwdMs: +(bw * 1e3).toFixed(2),
      fwdGflops: +(fwdFlop / f / 1e9).toFixed(1),
      bwdGflops: +(bwdFlop / bw / 1e9).toFixed(1),
    });
    row[`${name} fwd ms`] = (f * 1e3).toFixed(2);
    row[`${name} bwd ms`] = (bw * 1e3).toFixed(2);
    t.forEach((x) => be.free(x));
    be.destroy();
  }
  attnRows.push(row);
}
console.log('\nattention forward / backward');
console.table(attnRows);

// ---------------------------------------------------------------- training
if (!values['skip-train']) {
  const trainRows: Record<string, unknown>[] = [];
  const [B, T] = quick ? [1, 16] : [8, 256];
  const config = quick ? smallConfig : QWEN2_05B;
  // per kernel family, and with each reduction variant where the adapter has subgroups (RMSNorm, cross-entropy, grad norm)
  const runs: [KernelFamily, Reductions][] = [];
  for (const family of quick ? (['simple', 'tiled'] as const) : (['tiled'] as const)) {
    runs.push([family, 'workgroup']);
    if (subgroups) runs.push([family, 'subgroup']);
  }
  for (const [family, reductions] of runs) {
    const be = await createWebGPUBackend({ kernels: family, reductions });
    let model: Qwen2 | undefined;
    if (!quick) {
      const dir = values.dir ?? '/tmp/qwen2-0.5b-random';
      await ensureRandomCheckpoint(dir, QWEN2_05B);
      model = await Qwen2.load(be, dir);
    }
    // two warm-up steps: the first creates pipelines, buffers and AdamW state; in the second, pooled buffers
    // settle into the roles they keep (bind groups are cached per buffer), so from the third on nothing is created
    const r = await measureTraining(be, config, B, T, quick ? 0.2 : 20, 2, model);
    const label = quick
      ? `small Qwen2 (H=${config.hidden_size}, L=${config.num_hidden_layers}, V=${config.vocab_size})`
      : 'Qwen2-0.5B shape (random bf16 checkpoint, f32 training)';
    trainRows.push(
      emit('train', {
        model: label,
        kernels: family,
        reductions,
        B,
        T,
        tokensPerSec: +r.tokensPerSec.toFixed(1),
        steps: r.steps,
        peakDeviceGiB: +(be.stats.peakBytes / 2 ** 30).toFixed(2),
        ...r.economy,
      }),
    );
    be.destroy();
  }
  console.log('\ntraining tokens/s and the dispatch economy of one step after warm-up');
  console.table(trainRows);
}

// ---------------------------------------------------------------- phase-1 latent steps
// The main job's kind of step (2 latents at every calculator breakpoint, the embedded default model, 8 problems) with
// one forward per sequence and with aligned segments: on a GPU the dispatch count per step is what batching cuts.
{
  const latentRows: Record<string, unknown>[] = [];
  const [batchSize, steps] = quick ? [4, 2] : [8, 12];
  for (const family of quick ? (['simple'] as const) : (['tiled'] as const))
    for (const batchForward of [false, true]) {
      const be = await createWebGPUBackend({ kernels: family });
      const { model, tok } = await loadDefaultModel(be);
      const data = await loadData(undefined, { seed: 0, trainCount: 200, testCount: 8 });
      const trainer = new Phase1Trainer(model, tok, data.train, data.test, {
        mode: 'full',
        condition: 'latent',
        k: 2,
        steps,
        batchSize,
        lr: 1e-3,
        evalEvery: 0,
        evalRows: 0,
        genRows: 0,
        seed: 0,
        eosId: tok.eosId,
        batchForward,
      });
      await trainer.trainStep(); // warm-up: pipelines, buffers, marker init
      const d0 = be.stats.dispatches,
        t0 = performance.now();
      let tokens = 0,
        loss = 0;
      for (let i = 1; i < steps; i++) {
        const r = await trainer.trainStep();
        tokens += r.tokens;
        loss = r.loss;
      }
      const sec = (performance.now() - t0) / 1000;
      latentRows.push(
        emit('latent-step', {
          kernels: family,
          batchForward,
          batchSize,
          steps: steps - 1,
          tokensPerSec: +(tokens / sec).toFixed(1),
          dispatchesPerStep: Math.round((be.stats.dispatches - d0) / (steps - 1)),
          lastLoss: +loss.toFixed(6),
        }),
      );
      model.destroy();
      be.destroy();
    }
  console.log('\nphase-1 latent steps (embedded default model): one forward per sequence vs aligned segments');
  console.table(latentRows);
}
