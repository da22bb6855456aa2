// Scratch-tensor arena: activations are taken by size during a step and all handed back at once afterwards.
// Creating GPU buffers (and the bind groups that name them) per op is the real per-step overhead on WebGPU,
// so a training step reuses last step's buffers instead of allocating new ones.
import type { Backend, DType, Tensor } from '../backend/types.js';

export class Arena {
  private free = new Map<string, Tensor[]>();
  private used: Tensor[] = [];
  constructor(private readonly be: Backend) {}

  /** A tensor of exactly `size` elements; its contents are undefined unless `zero` is set. */
  take(size: number, dtype: DType = 'f32', zero = false): Tensor {
    const key = `${dtype}:${size}`;
    const list = this.free.get(key);
    let t = list?.pop();
    if (!t) t = this.be.alloc(Math.max(1, size), dtype, `arena:${key}`);
    else if (zero) this.be.zero(t);
    this.used.push(t);
    return t;
  }

  /** Returns every tensor taken since the last reset to the free lists. */
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

  destroy(): void {
    this.reset();
    for (const list of this.free.values()) for (const t of list) this.be.free(t);
    this.free.clear();
  }
}
