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
import type { BackendOps } from './ops.js';

export type DType = 'f32' | 'i32' | 'bf16';

export interface Tensor {
  readonly size: number;
  readonly dtype: DType;
  readonly label: string;
}

export type BackendName = 'cpu' | 'wasm' | 'webgpu' | 'gpujs';

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
  /**
   * Absolute position of query row 0 (same for every sequence); query i attends keys 0..qStart+i inclusive. With
   * `qStarts` (AttentionArgs), an upper bound of its values: the range checks use it.
   */
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

/**
 * A compute device. The ops (matmul, attention, ...) are declared once in ./ops.ts (`OPS`): each takes one object of
 * named arguments, e.g. `be.matmul({ a, b, c, M, N, K, transB: true })`, checked the same way on every backend.
 */
export interface Backend extends BackendOps {
  readonly name: BackendName;
  /** Whether attention takes per-sequence query starts (`qStarts`); see OpBackend.queryStarts. */
  readonly queryStarts?: boolean;
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
  /** Waits until all queued work has finished (surfaces device loss / OOM as an Error). */
  sync(): Promise<void>;
  destroy(): void;
}

export class BackendError extends Error {
  constructor(
    message: string,
    readonly backend: BackendName,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}
