// The scratch-tensor arena (src/model/arena.ts): size classes, reuse across passes, and the freeing of sizes that stop
// recurring (with aligned segments every step's passes have other row counts; kept forever, the default job's arena
// grew to 3.7 GB in 240 steps), through a backend that counts what is allocated and freed.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import type { Tensor } from '../src/backend/types.js';
import { Arena, IDLE_PASSES, sizeClass } from '../src/model/arena.js';

class CountingBackend extends CpuBackend {
  live = new Set<Tensor>();
  override alloc(size: number, dtype?: 'f32' | 'i32', label?: string): Tensor {
    const t = super.alloc(size, dtype, label);
    this.live.add(t);
    return t;
  }
  override free(t: Tensor): void {
    this.live.delete(t);
    super.free(t);
  }
}

describe('Arena', () => {
  it('sizeClass rounds up by at most 1/8, never down, to 8 classes per power of two', () => {
    const seen = new Set<number>();
    for (let n = 1; n <= 70000; n++) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      if (n > 64) expect(c).toBeLessThanOrEqual(n * 1.125);
      expect(sizeClass(c)).toBe(c); // a class is its own class
      if (n > 4096 && n <= 8192) seen.add(c);
    }
    expect(seen.size).toBe(8);
  });

  it('hands the same tensor to the next pass for a size of the same class, zeroed on request', async () => {
    const be = new CountingBackend();
    const a = new Arena(be);
    const t = a.take(1000);
    be.upload(t, new Float32Array(t.size).fill(3));
    a.tick();
    a.reset();
    const u = a.take(1010, 'f32', true);
    expect(u).toBe(t);
    expect(u.size).toBe(sizeClass(1010));
    expect(Array.from(await be.read(u)).every((x) => x === 0)).toBe(true);
    a.destroy();
    expect(be.live.size).toBe(0);
  });

  it(`frees a size not taken for ${IDLE_PASSES} passes, keeps recurring ones and never frees a tensor in use`, () => {
    const be = new CountingBackend();
    const a = new Arena(be);
    const pass = (sizes: number[]) => {
      a.tick();
      a.reset();
      return sizes.map((n) => a.take(n));
    };
    const first = pass([100000, 200]);
    for (let i = 0; i < IDLE_PASSES; i++) pass([200, 300 + i * 1000]);
    expect(be.live.has(first[0])).toBe(true); // idle for exactly IDLE_PASSES passes: still kept
    pass([200]);
    expect(be.live.has(first[0])).toBe(false); // one more: freed
    expect(be.live.has(first[1])).toBe(true); // 200 recurs every pass: the same tensor throughout
    expect(pass([200])[0]).toBe(first[1]);
    // in use (taken, no reset since): kept however many passes tick by (a grad pass waiting for backward while
    // decoding passes run on the model's other arenas tick this one)
    const inUse = pass([9000])[0];
    for (let i = 0; i < 3 * IDLE_PASSES; i++) a.tick();
    expect(be.live.has(inUse)).toBe(true);
    // a long run of varying sizes holds a bounded number of tensors
    for (let i = 0; i < 200; i++) pass([200, 1000 + 37 * i, 50000 + 911 * i]);
    expect(a.held).toBeLessThanOrEqual(1 + 2 * (IDLE_PASSES + 1));
    a.destroy();
    expect(be.live.size).toBe(0);
  });
});
