// The fused matmul arguments (residual, swigluGate) for backends whose kernels do not fuse them: the same result
// from the backend's own ops, in the order that defines them (so fused and unfused backends agree exactly):
// swiglu into a temporary, copy the residual into C, then the plain product accumulated onto it. The WebGPU
// backend fuses both into its matmul kernels instead (one pass over memory fewer for each). The op table
// (ops.ts, matmul's check) has already checked the fusions' contract.
import type { KernelArgs } from './ops.js';
import type { Backend, Tensor } from './types.js';

/** True when a matmul asks for a fusion (the backend then calls matmulUnfused instead of its own kernel). */
export function wantsFusion(a: KernelArgs['matmul']): boolean {
  return !!(a.residual || a.swigluGate);
}

/** C = [residual +] op(silu(gate) * A or A) op(B) [+ bias] from be.swiglu, be.copy2d and a plain be.matmul. */
export function matmulUnfused(be: Backend, args: KernelArgs['matmul']): void {
  const { residual, swigluGate, ...plain } = args;
  const { M, N, K } = plain;
  if (M <= 0 || N <= 0) return;
  let tmp: Tensor | undefined;
  if (swigluGate) {
    // the elements [0, aOff + M*K) so A's offsets and layout carry over unchanged
    const n = plain.aOff + M * K;
    tmp = be.alloc(n, 'f32', 'swiglu (unfused matmul input)');
    be.swiglu({ gate: swigluGate, up: plain.a, out: tmp, n });
    plain.a = tmp;
  }
  if (residual) {
    const off = plain.cOff;
    if (residual !== plain.c)
      be.copy2d({ src: residual, dst: plain.c, rows: M, cols: N, srcOff: off, srcStride: N, dstOff: off, dstStride: N });
    plain.accumulate = true;
  }
  be.matmul(plain);
  if (tmp) be.free(tmp);
}
