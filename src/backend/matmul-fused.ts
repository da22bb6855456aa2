// The fused matmul options (MatmulOptions.residual, .swigluGate) for backends whose kernels do not fuse them:
// the same result from the backend's own ops, in the order that defines them (so fused and unfused backends
// agree exactly): swiglu into a temporary, copy the residual into C, then the plain product accumulated onto it.
// The WebGPU backend fuses both into its matmul kernels instead (one pass over memory fewer for each).
import { BackendError, type Backend, type MatmulOptions, type Tensor } from './types.js';

/** True when `opts` asks for a fusion (the backend then calls matmulUnfused instead of its own kernel). */
export function wantsFusion(opts: MatmulOptions): boolean {
  return !!(opts.residual || opts.swigluGate);
}

/** Checks the fused options' contract; shared by every backend so they refuse the same calls. */
export function checkFusion(be: Backend, a: Tensor, c: Tensor, opts: MatmulOptions): void {
  if (opts.residual && opts.accumulate) throw new BackendError('matmul: residual and accumulate cannot be combined', be.name);
  if (opts.residual && (opts.residual.size !== c.size || opts.residual.dtype !== c.dtype)) {
    throw new BackendError(`matmul: residual '${opts.residual.label}' must be a ${c.dtype} tensor of C's size (${c.size})`, be.name);
  }
  if (opts.swigluGate && (opts.swigluGate.size !== a.size || opts.swigluGate.dtype !== 'f32' || a.dtype !== 'f32')) {
    throw new BackendError(`matmul: swigluGate '${opts.swigluGate.label}' must be an f32 tensor of A's size (${a.size})`, be.name);
  }
}

/** C = [residual +] op(silu(gate) * A or A) op(B) [+ bias] from be.swiglu, be.copy2d and a plain be.matmul. */
export function matmulUnfused(be: Backend, a: Tensor, b: Tensor, c: Tensor, M: number, N: number, K: number, opts: MatmulOptions): void {
  checkFusion(be, a, c, opts);
  const { residual, swigluGate, ...plain } = opts;
  if (M <= 0 || N <= 0) return;
  let left = a, tmp: Tensor | undefined;
  if (swigluGate) {
    // the elements [0, aOff + M*K) so A's offsets and layout carry over unchanged
    const n = (plain.aOff ?? 0) + M * K;
    tmp = left = be.alloc(n, 'f32', 'swiglu (unfused matmul input)');
    be.swiglu(swigluGate, a, tmp, n);
  }
  if (residual) {
    const off = plain.cOff ?? 0;
    if (residual !== c) be.copy2d(residual, c, M, N, off, N, off, N);
    plain.accumulate = true;
  }
  be.matmul(left, b, c, M, N, K, plain);
  if (tmp) be.free(tmp);
}
