// Scratch-tensor arena: activations are taken by size during a step and all handed back at once afterwards.
// Creating GPU buffers (and the bind groups that name them) per op is the real per-step overhead on WebGPU,
// so a training step reuses last step's buffers instead of allocating new ones.
//
// Sizes that stop recurring are freed: with aligned segments (src/latent/batch.ts) a pass's segments have as many rows
// as the step's sequences happen to put between their latents, so sizes vary from step to step. Kept forever, every
// size ever seen stayed allocated: the default job's arena grew to 3.7 GB over its 240 steps (and a longer run would
// hit the WASM backend's 4 GiB), and every new size touched fresh pages. A size not taken during the last IDLE_PASSES
// passes is returned to the backend, whose allocator hands the memory to the next new size. A pass is what the owner
// says it is (tick()): the model ticks all its arenas once per forward, so the per-layer arena (reset for every layer)
// keeps the sizes of every segment of a forward, not only the last few layers'. And sizes are rounded up to one of eight
// classes per power of two (sizeClass), so a pass a few rows longer or shorter than the last reuses its tensors.
import type { Backend, DType, Tensor } from '../backend/types.js';

/** Passes (ticks) a size may go untaken before its tensors are freed. */
export const IDLE_PASSES = 8;

/**
 * The size an arena hands out for a request of n elements: n rounded up to the next multiple of 1/8 of its power of
 * two (so at most 12.5% more), with at least 64 elements. Eight classes per octave instead of every size.
 */
export function sizeClass(n: number): number {
  if (n <= 64) return 64;
  const step = 2 ** (Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

export class Arena {
  private free = new Map<string, Tensor[]>();
  /** The pass (tick count) in which each size was last taken. */
  private lastTaken = new Map<string, number>();
  private passes = 0;
  private used: Tensor[] = [];
  constructor(private readonly be: Backend) {}

  /**
   * A tensor of at least `size` elements (its size class, at most 1/8 more: sizeClass), so that a pass whose rows
   * differ a little from the last one's still reuses its tensors. Its contents are undefined unless `zero` is set
   * (then all of it is zero). Ops take their ranges from their own arguments, so the extra elements are never read;
   * a caller reading one back names the length it wants.
   */
  take(size: number, dtype: DType = 'f32', zero = false): Tensor {
    const n = sizeClass(size);
    const key = `${dtype}:${n}`;
    const list = this.free.get(key);
    let t = list?.pop();
    if (!t) t = this.be.alloc(n, dtype, `arena:${key}`);
    else if (zero) this.be.zero(t);
    this.used.push(t);
    this.lastTaken.set(key, this.passes);
    return t;
  }

  /** Returns every tensor taken since the last reset to the free lists (they stay allocated for the next take). */
  reset(): void {
    // In reverse, so the next pass's take() sequence gets the same tensors in the same roles: a backend that
    // caches per-buffer objects (WebGPU bind groups) then creates nothing in steady state.
    for (const t of this.used.reverse()) {
      const key = `${t.dtype}:${t.size}`;
      let list = this.free.get(key);
      if (!list) this.free.set(key, (list = []));
      list.push(t);
    }
    this.used = [];
  }

  /** Starts the next pass: frees the sizes not taken in the last IDLE_PASSES passes (tensors in use are kept). */
  tick(): void {
    this.passes++;
    for (const [key, list] of this.free)
      if (this.passes - (this.lastTaken.get(key) ?? 0) > IDLE_PASSES) {
        for (const t of list) this.be.free(t);
        this.free.delete(key);
        this.lastTaken.delete(key);
      }
  }

  /** Tensors the arena holds (taken or free), for tests and diagnostics. */
  get held(): number {
    let n = this.used.length;
    for (const list of this.free.values()) n += list.length;
    return n;
  }

  destroy(): void {
    this.reset();
    for (const list of this.free.values()) for (const t of list) this.be.free(t);
    this.free.clear();
    this.lastTaken.clear();
  }
}
