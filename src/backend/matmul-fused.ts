// The fused matmul arguments (residual, swigluGate) for backends whose kernels do not fuse them: the same result
// from the backend's own ops, in the order of the unfused model: swiglu into a temporary, the product into a
// temporary, then residual + product (bit-identical to the model before the fusion; fused kernels agree to
// rounding). The WebGPU backend fuses both into its matmul kernels instead (one pass over memory fewer for each).
// The op table (ops.ts, matmul's check) has already checked the fusions' contract.
import type { KernelArgs } from './ops.js';
import type { Backend, Tensor } from './types.js';

/** True when a matmul asks for a fusion (the backend then calls matmulUnfused instead of its own kernel). */
export function wantsFusion(a: KernelArgs['matmul']): boolean {
  return !!(a.residual || a.swigluGate);
}

/**
 * C = [residual +] (op(silu(gate) * A or A) op(B) [+ bias]) from be.swiglu, a plain be.matmul and be.add (be.copy2d
 * and be.axpy when C has an offset, since add has none).
 */
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
    // the product into a temporary, then C = residual + product: the order of the unfused model (matmul, then add),
    // so the host backends give the same bits as before the fusion existed
    const c = plain.c,
      off = plain.cOff;
    const prod = be.alloc(M * N, 'f32', 'matmul product (unfused residual)');
    be.matmul({ ...plain, c: prod, cOff: 0, accumulate: false });
    if (off === 0) be.add({ a: residual, b: prod, out: c, n: M * N });
    else {
      if (residual !== c) be.copy2d({ src: residual, dst: c, rows: 1, cols: M * N, srcOff: off, srcStride: 0, dstOff: off, dstStride: 0 });
      be.axpy({ alpha: 1, x: prod, y: c, n: M * N, yOff: off });
    }
    be.free(prod);
  } else be.matmul(plain);
  if (tmp) be.free(tmp);
}
