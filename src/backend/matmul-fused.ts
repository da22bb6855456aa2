// The fused matmul arguments (residual, swigluGate) for backends whose kernels do not fuse them (OpBackend routes
// such a call here unless the backend sets `fusesMatmul`, ops.ts matmul's `composed`): the same result
// from the backend's own ops, in the order of the unfused model: swiglu into a temporary, the product into a
// temporary, then residual + product (bit-identical to the model before the fusion; fused kernels agree to
// rounding). The WebGPU backend fuses both into its matmul kernels instead (one pass over memory fewer for each).
// The op table (ops.ts, matmul's check) has already checked the fusions' contract.
import type { KernelArgs } from './ops.js';
import type { Backend, Tensor } from './types.js';

/**
 * Each backend's reusable temporaries, by purpose: the composition runs on the hot path (every MLP and attention
 * output of every step), so it keeps one tensor per purpose and grows it when a call needs more, instead of an
 * alloc/free pair per call. Safe because the host backends' ops are synchronous: a temporary is dead once the call
 * returns. Each is fully written before it is read (swiglu writes [0, n), the product matmul C = ...), so a stale
 * larger tensor gives the same bits as a fresh one.
 */
const temporaries = new WeakMap<Backend, Map<string, Tensor>>();
function temporary(be: Backend, label: string, n: number): Tensor {
  let held = temporaries.get(be);
  if (!held) temporaries.set(be, (held = new Map()));
  let t = held.get(label);
  if (!t || t.size < n) {
    if (t) be.free(t);
    t = be.alloc(n, 'f32', label);
    held.set(label, t);
  }
  return t;
}

/**
 * C = [residual +] (op(silu(gate) * A or A) op(B) [+ bias]) from be.swiglu, a plain be.matmul and be.add (be.copy2d
 * and be.axpy when C has an offset, since add has none).
 */
export function matmulUnfused(be: Backend, args: KernelArgs['matmul']): void {
  const { residual, swigluGate, ...plain } = args;
  const { M, N, K } = plain;
  if (M <= 0 || N <= 0) return;
  if (swigluGate) {
    // the elements [0, aOff + M*K) so A's offsets and layout carry over unchanged
    const n = plain.aOff + M * K;
    const input = temporary(be, 'swiglu (unfused matmul input)', n);
    be.swiglu({ gate: swigluGate, up: plain.a, out: input, n });
    plain.a = input;
  }
  if (residual) {
    // the product into a temporary, then C = residual + product: the order of the unfused model (matmul, then add),
    // so the host backends give the same bits as before the fusion existed
    const c = plain.c,
      off = plain.cOff;
    const prod = temporary(be, 'matmul product (unfused residual)', M * N);
    be.matmul({ ...plain, c: prod, cOff: 0, accumulate: false });
    if (off === 0) be.add({ a: residual, b: prod, out: c, n: M * N });
    else {
      if (residual !== c) be.copy2d({ src: residual, dst: c, rows: 1, cols: M * N, srcOff: off, srcStride: 0, dstOff: off, dstStride: 0 });
      be.axpy({ alpha: 1, x: prod, y: c, n: M * N, yOff: off });
    }
  } else be.matmul(plain);
}
