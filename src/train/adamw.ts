// AdamW with decoupled weight decay and global grad-norm clipping, over a model's trainable parameters.
// Optimizer state (m, v) exists only for trainable parameters: in two-trunk mode the frozen language trunk
// costs no optimizer memory. The clip factor is folded into the update kernel (one read per step: the norm).
import type { Backend, Tensor } from '../backend/types.js';
import type { Qwen2 } from '../model/qwen2.js';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this (0 = no clipping). */
  clipNorm: number;
  /** Parameters that get no weight decay (default: none, as torch.optim.AdamW with one param group). */
  noDecay?: (name: string) => boolean;
}

export const defaultAdamW: AdamWConfig = { lr: 1e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, clipNorm: 1.0 };

export class AdamW {
  step = 0;
  readonly m = new Map<string, Tensor>();
  readonly v = new Map<string, Tensor>();
  private readonly normBuf: Tensor;
  constructor(
    readonly model: Qwen2,
    readonly cfg: AdamWConfig = defaultAdamW,
  ) {
    this.normBuf = model.be.alloc(1, 'f32', 'gradnorm');
  }

  private state(name: string, size: number) {
    const be: Backend = this.model.be;
    let m = this.m.get(name),
      v = this.v.get(name);
    if (!m) this.m.set(name, (m = be.alloc(size, 'f32', `adam.m:${name}`)));
    if (!v) this.v.set(name, (v = be.alloc(size, 'f32', `adam.v:${name}`)));
    return { m, v };
  }

  /** Global L2 norm of all gradients (before clipping). */
  async gradNorm(): Promise<number> {
    const be = this.model.be;
    be.zero(this.normBuf);
    for (const [, g] of this.model.grads) be.sumSquares({ x: g, n: g.size, out: this.normBuf, outIndex: 0 });
    return Math.sqrt((await be.read(this.normBuf))[0]);
  }

  /** One update with the current gradients; returns the pre-clip gradient norm. Throws on a non-finite norm. */
  async update(lr = this.cfg.lr): Promise<number> {
    const norm = await this.gradNorm();
    if (!Number.isFinite(norm))
      throw new Error(`AdamW step ${this.step + 1}: gradient norm is ${norm} (NaN/Inf); parameters left unchanged`);
    const gradScale = this.cfg.clipNorm > 0 && norm > this.cfg.clipNorm ? this.cfg.clipNorm / (norm + 1e-6) : 1;
    this.step++;
    for (const [name, g] of this.model.grads) {
      const p = this.model.param(name);
      const { m, v } = this.state(name, p.size);
      const wd = this.cfg.noDecay?.(name) ? 0 : this.cfg.weightDecay;
      this.model.be.adamw({
        param: p,
        grad: g,
        m,
        v,
        n: p.size,
        lr,
        beta1: this.cfg.beta1,
        beta2: this.cfg.beta2,
        eps: this.cfg.eps,
        weightDecay: wd,
        step: this.step,
        gradScale,
      });
    }
    return norm;
  }

  /** Serialisable optimizer state (for checkpoints). */
  async exportState(): Promise<{ step: number; tensors: Map<string, Float32Array> }> {
    const tensors = new Map<string, Float32Array>();
    for (const [n, t] of this.m) tensors.set(`adam.m.${n}`, (await this.model.be.read(t)) as Float32Array);
    for (const [n, t] of this.v) tensors.set(`adam.v.${n}`, (await this.model.be.read(t)) as Float32Array);
    return { step: this.step, tensors };
  }

  importState(step: number, tensors: Map<string, Float32Array>): void {
    this.step = step;
    for (const [key, data] of tensors) {
      const mm = /^adam\.(m|v)\.(.+)$/.exec(key);
      if (!mm) continue;
      const { m, v } = this.state(mm[2], data.length);
      this.model.be.upload(mm[1] === 'm' ? m : v, data);
    }
  }

  destroy(): void {
    for (const t of [...this.m.values(), ...this.v.values(), this.normBuf]) this.model.be.free(t);
  }
}
