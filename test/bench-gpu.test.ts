// bench/gpu.ts --quick on the software adapter here: the GPU benchmark runs end to end (every matmul variant,
// both attention families, training with either kernel family) and reports the dispatch economy of a training
// step after warm-up: nothing created, and readbacks limited to the losses (one f32 per token) plus the 4-byte
// gradient norm AdamW needs for clipping. The figures themselves are only meaningful on a hardware GPU.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, run } from './_dist.js';
import { webgpuUnavailable } from './_backends.js';

const unavailable = await webgpuUnavailable('bench-gpu: skipped');
describe.skipIf(!!unavailable)('bench/gpu.ts --quick', () => {
  it('prints adapter, matmul, attention, training and latent-step figures as JSON lines, with 0 creations per step', async () => {
    const { stdout } = await run(join(ROOT, 'node_modules', '.bin', 'tsx'), ['bench/gpu.ts', '--quick', '--seconds', '0.01'], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    });
    const lines = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    const of = (figure: string) => lines.filter((l) => l.bench === 'gpu' && l.figure === figure);
    const [adapter] = of('adapter');
    expect(adapter.info).toMatch(/tiled kernels/);
    expect(adapter.auto).toBe(adapter.software ? 'simple' : 'tiled');
    const mm = of('matmul');
    expect(new Set(mm.map((l) => l.variant))).toEqual(
      new Set(['blocked 4x4 (simple)', 'tiled 64x64/4x4', ...(adapter.features.includes('shader-f16') ? ['tiled 64x64/4x4 f16'] : [])]),
    );
    for (const l of mm) expect(l.gflops, JSON.stringify(l)).toBeGreaterThanOrEqual(0);
    expect(
      of('attention')
        .map((l) => l.variant)
        .sort(),
    ).toEqual(['flash (tiled)', 'flash (tiled)', 'per-query (simple)', 'per-query (simple)']);
    const train = of('train');
    expect(train.map((l) => l.kernels)).toEqual(['simple', 'tiled']);
    for (const t of train) {
      console.log(
        `bench-gpu: ${t.kernels} kernels, one step of B=${t.B} x T=${t.T}: ${t.dispatches} dispatches, ${t.submits} submits, ${t.created} created, ${t.reads} reads of ${t.readBytes} bytes`,
      );
      expect(t.tokensPerSec).toBeGreaterThan(0);
      expect(t.dispatches).toBeGreaterThan(100);
      expect(t.created).toBe(0);
      expect(t.readBytes).toBe(4 * t.B * t.T + 4);
    }
    // phase-1 latent steps: aligned segments cut the dispatches of a step, the loss stays that of one forward each
    const [each, aligned] = of('latent-step');
    expect([each.batchForward, aligned.batchForward]).toEqual([false, true]);
    expect(aligned.dispatchesPerStep).toBeLessThan(each.dispatchesPerStep / 2);
    expect(aligned.lastLoss).toBeCloseTo(each.lastLoss, 4);
  }, 180_000);
});
