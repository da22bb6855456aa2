// Adam on the host, for the small parameter vectors that live in plain JS arrays (the logistic start/end heads of
// both training phases) rather than on the backend (src/train/adamw.ts). No weight decay, no clipping.
// The moments are kept in Float32Array or Float64Array as the caller asks: phase 1's heads have always kept their
// weight moments in f32 and RL's heads in f64, and resumed runs must continue bit-identically.

export interface HostAdamOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Storage of the moments (default 'f64'). */
  moments?: 'f32' | 'f64';
}

export class HostAdam {
  readonly m: Float32Array | Float64Array;
  readonly v: Float32Array | Float64Array;
  t = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** The gradient of the last step (for inspection and tests). */
  lastGrad: ArrayLike<number> | null = null;

  constructor(
    readonly size: number,
    public lr: number,
    o: HostAdamOptions = {},
  ) {
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    const Moments = o.moments === 'f32' ? Float32Array : Float64Array;
    this.m = new Moments(size);
    this.v = new Moments(size);
  }

  /** One step: updates the moments with `grad` (length `size`) and calls `apply(i, d)` with each parameter's decrease. */
  step(grad: ArrayLike<number>, apply: (i: number, d: number) => void): void {
    if (grad.length !== this.size) throw new Error(`HostAdam: gradient has ${grad.length} entries, the optimizer ${this.size}`);
    this.lastGrad = grad;
    this.t++;
    const b1 = this.beta1,
      b2 = this.beta2,
      bc1 = 1 - b1 ** this.t,
      bc2 = 1 - b2 ** this.t;
    for (let i = 0; i < this.size; i++) {
      const g = grad[i];
      this.m[i] = b1 * this.m[i] + (1 - b1) * g;
      this.v[i] = b2 * this.v[i] + (1 - b2) * g * g;
      apply(i, (this.lr * this.m[i]) / bc1 / (Math.sqrt(this.v[i] / bc2) + this.eps));
    }
  }

  /** The moments and step count ({ t, m, v }): with the parameters, all a resumed run needs. */
  toJSON() {
    return { t: this.t, m: Array.from(this.m), v: Array.from(this.v) };
  }

  load(j: { t: number; m: ArrayLike<number>; v: ArrayLike<number> }): void {
    if (j.m.length !== this.size || j.v.length !== this.size)
      throw new Error(`HostAdam: saved state has ${j.m.length} entries, the optimizer ${this.size}`);
    this.t = j.t;
    this.m.set(j.m);
    this.v.set(j.v);
  }
}
