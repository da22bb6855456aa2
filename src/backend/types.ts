// The compute backend interface: everything the Qwen2 model and the trainers need from a device.
//
// Conventions (llm.c style, the same for every backend so tests can compare them op by op):
// - Tensors are flat, row-major arrays of `size` elements; shapes are passed to each op, not stored.
// - Every op is enqueued synchronously; only `read` is async. A backend may batch queued ops
//   (WebGPU encodes them into one command buffer) and executes them in call order.
// - Forward ops WRITE their outputs. Backward ops ACCUMULATE (+=) into every gradient output, so a caller
//   zeroes gradients once per step and residual/branch gradients add up naturally.
// - All arithmetic accumulates in f32. Element offsets (`*Off`) are in elements, not bytes, and let one op
//   work on a slice of a larger tensor (a KV cache, a chunk of rows) without views or alignment rules.
// - Tensors may be larger than one GPU binding (Qwen2-0.5B's embedding is 545 MB in f32): backends split
//   them internally; callers never see it.

/**
 * 'bf16' is weight storage: bfloat16 where the backend can keep it (WebGPU: 2 bytes per element, packed in pairs;
 * the host backends keep f32 arrays holding bf16-rounded values, so results are identical everywhere). A bf16 tensor
 * is read-only for ops (an input, never an output); `upload` rounds to nearest even, `read` returns f32.
 */
export type DType = 'f32' | 'i32' | 'bf16';

export interface Tensor {
  readonly size: number;
  readonly dtype: DType;
  readonly label: string;
}

export type BackendName = 'cpu' | 'wasm' | 'webgpu' | 'gpujs';

export interface MatmulOptions {
  /** A is stored [K, M] instead of [M, K]. */
  transA?: boolean;
  /** B is stored [N, K] instead of [K, N] (the layout of an HF Linear weight [out, in]). */
  transB?: boolean;
  /** Bias [N] added to every row of C. */
  bias?: Tensor;
  /** C += result instead of C = result. */
  accumulate?: boolean;
  /**
   * C = residual + op(A) op(B) (+ bias): a residual add folded into the product's output (a tensor of C's size, read
   * at cOff like C; may be C itself). Not with accumulate. Exactly `copy residual to C, then accumulate`.
   */
  residual?: Tensor;
  /**
   * The left operand is silu(swigluGate) * A, elementwise (a tensor of A's size and layout, read at aOff like A):
   * the SwiGLU activation folded into the product's input load. Exactly `swiglu(swigluGate, A, tmp)`, then tmp.
   */
  swigluGate?: Tensor;
  aOff?: number;
  bOff?: number;
  cOff?: number;
}

export interface AttentionShape {
  /** Sequences in the batch. */
  B: number;
  /** Query rows per sequence in this call. */
  Tq: number;
  /** Query heads and key/value heads (grouped-query attention: query head h reads kv head floor(h / (Hq / Hkv))). */
  Hq: number;
  Hkv: number;
  /** Head dimension. */
  D: number;
  /** Absolute position of query row 0 (same for every sequence); query i attends keys 0..qStart+i inclusive. */
  qStart: number;
  /** Capacity (rows per sequence) of the K/V cache tensors, which are [B, kvCap, Hkv, D]. */
  kvCap: number;
}

export interface AdamWParams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step for bias correction. */
  step: number;
  /** Multiplies the gradient first (global grad-norm clipping folds in here). */
  gradScale: number;
}

export interface Backend {
  readonly name: BackendName;
  /** Human-readable adapter description and why it was chosen. */
  readonly info: string;
  /** Largest single storage binding in bytes (informational; backends split larger tensors themselves). */
  readonly maxBindingBytes: number;

  // ---- memory ----
  /** A zero-filled tensor. */
  alloc(size: number, dtype?: DType, label?: string): Tensor;
  free(t: Tensor): void;
  upload(t: Tensor, data: Float32Array | Int32Array, offset?: number): void;
  /** Reads `length` elements from `offset` (default: all); waits for queued work. */
  read(t: Tensor, offset?: number, length?: number): Promise<Float32Array | Int32Array>;
  zero(t: Tensor, offset?: number, length?: number): void;
  /**
   * 2-D strided copy: for r in 0..rows: dst[dstOff + r*dstStride + c] = src[srcOff + r*srcStride + c], c < cols.
   * With accumulate, dst += src instead.
   */
  copy2d(src: Tensor, dst: Tensor, rows: number, cols: number, srcOff: number, srcStride: number, dstOff: number, dstStride: number, accumulate?: boolean): void;
  /** Waits until all queued work has finished (surfaces device loss / OOM as an Error). */
  sync(): Promise<void>;
  destroy(): void;

  // ---- elementwise ----
  /** out[i] = a[i] + b[i] (out may alias a or b). */
  add(a: Tensor, b: Tensor, out: Tensor, n: number): void;
  /** y[yOff+i] += alpha * x[xOff+i]. */
  axpy(alpha: number, x: Tensor, y: Tensor, n: number, xOff?: number, yOff?: number): void;
  /** x[i] *= s. */
  scale(x: Tensor, s: number, n: number): void;

  // ---- embedding (kernels/embedding.wgsl) ----
  /** out[r, :] = table[ids[r], :] for r < rows; rows whose id is < 0 are left untouched (caller-supplied embeddings). */
  embedding(ids: Tensor, table: Tensor, out: Tensor, rows: number, dim: number): void;
  /** dTable[ids[r], :] += dOut[r, :]; ids < 0 are skipped. */
  embeddingBackward(ids: Tensor, dOut: Tensor, dTable: Tensor, rows: number, dim: number): void;

  // ---- matmul (kernels/matmul.wgsl) ----
  /** C[M, N] (+)= op(A) op(B) (+ bias). */
  matmul(a: Tensor, b: Tensor, c: Tensor, M: number, N: number, K: number, opts?: MatmulOptions): void;
  /** dBias[c] += sum_r dY[r, c] (bias gradient of a Linear). */
  sumRows(dY: Tensor, dBias: Tensor, rows: number, cols: number): void;

  // ---- RMSNorm (kernels/rmsnorm.wgsl), HF Qwen2RMSNorm: y = w * x / sqrt(mean(x^2) + eps) ----
  /** Writes y and rstd[r] = 1/sqrt(mean(x_r^2)+eps) for the backward. */
  rmsNorm(x: Tensor, w: Tensor, y: Tensor, rstd: Tensor, rows: number, dim: number, eps: number): void;
  /** dx += ..., dw += ... */
  rmsNormBackward(dy: Tensor, x: Tensor, w: Tensor, rstd: Tensor, dx: Tensor, dw: Tensor, rows: number, dim: number): void;

  // ---- rotary embeddings (kernels/rope.wgsl), HF rotate_half convention ----
  /**
   * In place on x [rows, heads, D]: with f_i = theta^(-2i/D), a = pos[r] * f_i (i < D/2):
   *   x[i] <- x[i] cos a - x[i+D/2] sin a;  x[i+D/2] <- x[i+D/2] cos a + x[i] sin a.
   * inverse=true rotates by -a, which is exactly the backward (the rotation is orthogonal).
   */
  rope(x: Tensor, pos: Tensor, rows: number, heads: number, D: number, theta: number, inverse?: boolean): void;

  // ---- causal grouped-query attention (kernels/attention.wgsl) ----
  /**
   * q, out: [B, Tq, Hq, D]; kCache, vCache: [B, kvCap, Hkv, D]; lse: [B, Hq, Tq] (log-sum-exp of the scaled
   * scores, saved for the backward). Scale 1/sqrt(D). Never materialises the [Tq, Tk] matrix in memory.
   */
  attention(q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, lse: Tensor, s: AttentionShape): void;
  /** dq += ..., dkCache += ..., dvCache += ... (rows 0..qStart+Tq-1 of the caches may receive gradient). */
  attentionBackward(dOut: Tensor, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, lse: Tensor, dq: Tensor, dkCache: Tensor, dvCache: Tensor, s: AttentionShape): void;

  // ---- SiLU-gated MLP (kernels/swiglu.wgsl) ----
  /** out[i] = silu(gate[i]) * up[i]. */
  swiglu(gate: Tensor, up: Tensor, out: Tensor, n: number): void;
  /** dGate += ..., dUp += ... */
  swigluBackward(dOut: Tensor, gate: Tensor, up: Tensor, dGate: Tensor, dUp: Tensor, n: number): void;

  // ---- softmax cross-entropy (kernels/crossentropy.wgsl) ----
  /**
   * logits [rows, V] at logitsOff; labels i32 [rows] at labelOff (-100 = ignore). Writes losses[lossOff + r] =
   * -log softmax(logits_r)[label] (0 for ignored rows). If `weights` is given (f32 [rows] at labelOff), the logits are
   * REPLACED by the gradient weights[r] * (softmax(logits_r) - onehot(label)) (zero for ignored rows), so the fused
   * loss head never keeps a second [rows, V] matrix.
   */
  crossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, rows: number, V: number, opts?: { weights?: Tensor; logitsOff?: number; labelOff?: number; lossOff?: number }): void;

  // ---- optimizer (kernels/adamw.wgsl) ----
  /** Decoupled-weight-decay Adam on n elements: p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p). */
  adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, n: number, h: AdamWParams): void;
  /** out[outIndex] += sum(x[0..n)^2) (out is f32). One read of `out` gives the global gradient norm. */
  sumSquares(x: Tensor, n: number, out: Tensor, outIndex: number): void;
}

export class BackendError extends Error {
  constructor(message: string, readonly backend: BackendName) {
    super(message);
    this.name = 'BackendError';
  }
}
