// The op table: every compute op of a Backend, declared once — its named arguments, which tensors it reads and
// writes (with their dtypes and the element range it touches), its checks, and the host-side work done before any
// kernel runs (RoPE inverse frequencies, AdamW bias corrections; bf16 rounding on upload is `OpBackend.upload`).
//
// Why one table: the same op used to live in every backend with its own argument order, its own checks (the CPU
// reference checked almost nothing) and its own copy of the host-side maths. Now `OpBackend` derives one public
// method per op from this table: it checks the named arguments (the same BackendError on every backend, naming the
// op and the argument), fills in defaults, adds the precomputed values and calls the backend's kernel
// (`kernelMatmul` for `matmul`, ...). A backend implements only kernels, and test/_conformance.ts runs every op of
// the table against the CPU reference.
//
// Adding an op: an `...Args` interface and an entry in `OpArgs`/`KernelArgs`, a spec in OPS, a kernel method in
// every backend (TypeScript refuses a backend class without it: `implements Kernels`), and a case in
// test/_conformance.ts (refused at compile time when missing). See README "Architecture".
import { roundToBf16 } from '../io/safetensors.js';
import { matmulUnfused } from './matmul-fused.js';
import { BackendError, type AdamWParams, type AttentionShape, type Backend, type BackendName, type Tensor } from './types.js';

// ---------------------------------------------------------------- named arguments of every op
// Conventions as in ./types.ts: sizes and offsets are in elements; forward ops WRITE their outputs, backward ops
// ACCUMULATE (+=) into every gradient output.

/** 2-D strided copy: for r < rows, c < cols: dst[dstOff + r*dstStride + c] (+)= src[srcOff + r*srcStride + c]. */
export interface Copy2dArgs {
  src: Tensor;
  dst: Tensor;
  rows: number;
  cols: number;
  srcStride: number;
  dstStride: number;
  srcOff?: number;
  dstOff?: number;
  /** dst += src instead of dst = src. */
  accumulate?: boolean;
}
/** out[i] = a[i] + b[i] for i < n (out may alias a or b). */
export interface AddArgs {
  a: Tensor;
  b: Tensor;
  out: Tensor;
  n: number;
}
/** y[yOff+i] += alpha * x[xOff+i] for i < n. */
export interface AxpyArgs {
  alpha: number;
  x: Tensor;
  y: Tensor;
  n: number;
  xOff?: number;
  yOff?: number;
}
/** x[i] *= s for i < n. */
export interface ScaleArgs {
  x: Tensor;
  s: number;
  n: number;
}
/** out[r, :] = table[ids[r], :] for r < rows; rows whose id is < 0 are left untouched (caller-supplied embeddings). */
export interface EmbeddingArgs {
  ids: Tensor;
  table: Tensor;
  out: Tensor;
  rows: number;
  dim: number;
}
/** dTable[ids[r], :] += dOut[r, :]; ids < 0 are skipped. */
export interface EmbeddingBackwardArgs {
  ids: Tensor;
  dOut: Tensor;
  dTable: Tensor;
  rows: number;
  dim: number;
}
/** C[M, N] (+)= op(A) op(B) (+ bias). */
export interface MatmulArgs {
  a: Tensor;
  b: Tensor;
  c: Tensor;
  M: number;
  N: number;
  K: number;
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
   * at cOff like C; may be C itself). Not with accumulate. Means `residual + (op(A) op(B) + bias)`, the order of an
   * unfused matmul followed by an add (the host backends compute it so; fused kernels agree to rounding).
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
/** The optional part of matmul's arguments (the options object of the positional API this replaced). */
export type MatmulOptions = Omit<MatmulArgs, 'a' | 'b' | 'c' | 'M' | 'N' | 'K'>;
/** dBias[c] += sum_r dY[r, c] (bias gradient of a Linear). */
export interface SumRowsArgs {
  dY: Tensor;
  dBias: Tensor;
  rows: number;
  cols: number;
}
/** HF Qwen2RMSNorm: y = w * x / sqrt(mean(x^2) + eps); also writes rstd[r] = 1/sqrt(mean(x_r^2)+eps). */
export interface RmsNormArgs {
  x: Tensor;
  w: Tensor;
  y: Tensor;
  rstd: Tensor;
  rows: number;
  dim: number;
  eps: number;
}
/** dx += ..., dw += ... */
export interface RmsNormBackwardArgs {
  dy: Tensor;
  x: Tensor;
  w: Tensor;
  rstd: Tensor;
  dx: Tensor;
  dw: Tensor;
  rows: number;
  dim: number;
}
/**
 * Rotary embedding in place on x [rows, heads, D], HF rotate_half convention: with f_i = theta^(-2i/D) and
 * a = pos[r] * f_i (i < D/2): x[i] <- x[i] cos a - x[i+D/2] sin a;  x[i+D/2] <- x[i+D/2] cos a + x[i] sin a.
 * inverse rotates by -a, which is exactly the backward (the rotation is orthogonal).
 */
export interface RopeArgs {
  x: Tensor;
  pos: Tensor;
  rows: number;
  heads: number;
  D: number;
  theta: number;
  inverse?: boolean;
}
/**
 * Causal grouped-query attention. q, out: [B, Tq, Hq, D]; kCache, vCache: [B, kvCap, Hkv, D]; lse: [B, Hq, Tq]
 * (log-sum-exp of the scaled scores, kept for the backward). Scale 1/sqrt(D).
 */
export interface AttentionArgs extends AttentionShape {
  q: Tensor;
  kCache: Tensor;
  vCache: Tensor;
  out: Tensor;
  lse: Tensor;
  /**
   * i32 [B], optional: sequence b's query row 0 sits at position qStarts[b] (<= qStart) instead of qStart, so one
   * call serves sequences that are at different positions (the model's aligned segments: src/model/qwen2.ts).
   * Only backends with the `queryStarts` capability take it (and qRows).
   */
  qStarts?: Tensor;
  /**
   * i32 [B + 1], optional (with qStarts): sequence b has the query rows qRows[b] .. qRows[b+1] - 1, so sequences
   * have different numbers of rows (none, too). Then Tq counts the rows of all sequences (qRows[B]), q/out are
   * [Tq, Hq, D], and lse holds sequence b's [Hq, rows of b] block from element Hq * qRows[b].
   */
  qRows?: Tensor;
}
/** dq += ..., dkCache += ..., dvCache += ... (rows 0..qStart+Tq-1 of the caches may receive gradient). */
export interface AttentionBackwardArgs extends AttentionShape {
  dOut: Tensor;
  q: Tensor;
  kCache: Tensor;
  vCache: Tensor;
  out: Tensor;
  lse: Tensor;
  dq: Tensor;
  dkCache: Tensor;
  dvCache: Tensor;
  /** As in AttentionArgs. */
  qStarts?: Tensor;
  qRows?: Tensor;
}
/** out[i] = silu(gate[i]) * up[i]. */
export interface SwigluArgs {
  gate: Tensor;
  up: Tensor;
  out: Tensor;
  n: number;
}
/** dGate += ..., dUp += ... */
export interface SwigluBackwardArgs {
  dOut: Tensor;
  gate: Tensor;
  up: Tensor;
  dGate: Tensor;
  dUp: Tensor;
  n: number;
}
/**
 * Softmax cross-entropy. logits [rows, V] at logitsOff; labels i32 [rows] at labelOff (-100 = ignore). Writes
 * losses[lossOff + r] = -log softmax(logits_r)[label] (0 for ignored rows). With `weights` (f32 [rows] at labelOff),
 * the logits are REPLACED by the gradient weights[r] * (softmax(logits_r) - onehot(label)) (zero for ignored rows),
 * so the fused loss head never keeps a second [rows, V] matrix.
 */
export interface CrossEntropyArgs {
  logits: Tensor;
  labels: Tensor;
  losses: Tensor;
  rows: number;
  V: number;
  weights?: Tensor;
  logitsOff?: number;
  labelOff?: number;
  lossOff?: number;
}
/** Decoupled-weight-decay Adam on n elements: p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p). */
export interface AdamWArgs extends AdamWParams {
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
  n: number;
}
/** out[outIndex] += sum(x[0..n)^2) (out is f32). One read of `out` gives the global gradient norm. */
export interface SumSquaresArgs {
  x: Tensor;
  n: number;
  out: Tensor;
  outIndex: number;
}

/** The public arguments of every op (what a caller passes). */
export interface OpArgs {
  copy2d: Copy2dArgs;
  add: AddArgs;
  axpy: AxpyArgs;
  scale: ScaleArgs;
  embedding: EmbeddingArgs;
  embeddingBackward: EmbeddingBackwardArgs;
  matmul: MatmulArgs;
  sumRows: SumRowsArgs;
  rmsNorm: RmsNormArgs;
  rmsNormBackward: RmsNormBackwardArgs;
  rope: RopeArgs;
  attention: AttentionArgs;
  attentionBackward: AttentionBackwardArgs;
  swiglu: SwigluArgs;
  swigluBackward: SwigluBackwardArgs;
  crossEntropy: CrossEntropyArgs;
  adamw: AdamWArgs;
  sumSquares: SumSquaresArgs;
}
export type OpName = keyof OpArgs;

/** `A` with the optional fields `K` filled in (the validating wrapper applies the table's defaults). */
type Filled<A, K extends keyof A> = Omit<A, K> & { [P in K]-?: Exclude<A[P], undefined> };

/** What a kernel receives: checked arguments, defaults filled in, host-side precomputation added. */
export interface KernelArgs {
  copy2d: Filled<Copy2dArgs, 'srcOff' | 'dstOff' | 'accumulate'>;
  add: AddArgs;
  axpy: Filled<AxpyArgs, 'xOff' | 'yOff'>;
  scale: ScaleArgs;
  embedding: EmbeddingArgs;
  embeddingBackward: EmbeddingBackwardArgs;
  matmul: Filled<MatmulArgs, 'transA' | 'transB' | 'accumulate' | 'aOff' | 'bOff' | 'cOff'>;
  sumRows: SumRowsArgs;
  rmsNorm: RmsNormArgs;
  rmsNormBackward: RmsNormBackwardArgs;
  /** invFreq[i] = f_i = theta^(-2i/D) rounded to f32 once ([D/2]; shared, do not modify). */
  rope: Filled<RopeArgs, 'inverse'> & { invFreq: Float32Array };
  attention: AttentionArgs;
  attentionBackward: AttentionBackwardArgs;
  swiglu: SwigluArgs;
  swigluBackward: SwigluBackwardArgs;
  crossEntropy: Filled<CrossEntropyArgs, 'logitsOff' | 'labelOff' | 'lossOff'>;
  /** bc1 = 1 - beta1^step, bc2 = 1 - beta2^step (the bias corrections). */
  adamw: AdamWArgs & { bc1: number; bc2: number };
  sumSquares: SumSquaresArgs;
}

/** One method per op, taking its named arguments: the compute half of the Backend interface. */
export type BackendOps = { [K in OpName]: (args: OpArgs[K]) => void };

/** The kernel method that implements op `K` in a backend class. */
export type KernelName<K extends OpName = OpName> = `kernel${Capitalize<K>}`;
export const kernelName = <K extends OpName>(op: K): KernelName<K> => `kernel${op[0].toUpperCase()}${op.slice(1)}` as KernelName<K>;

/** What a backend class implements: one kernel per op, taking the checked and completed arguments. */
export type Kernels = { [K in OpName as KernelName<K>]: (args: KernelArgs[K]) => void };

// ---------------------------------------------------------------- the table

/**
 * How one argument is checked. Tensors: `float` is f32 or bf16 storage (bf16 only where the op reads it), `any`
 * also allows i32 (copies); `range` is the [offset, count) of elements the op touches, which must lie inside the
 * tensor; `writes` (true, or a predicate on the arguments) forbids bf16. Scalars: `int` is a non-negative integer,
 * `number` any number, `bool` a boolean; `default` fills an omitted optional argument.
 */
export type ArgSpec<A> =
  | {
      tensor: 'f32' | 'float' | 'i32' | 'any';
      range: (a: A) => [off: number, n: number];
      writes?: boolean | ((a: A) => boolean);
      optional?: true;
    }
  | { int: true; default?: number }
  | { number: true }
  | { bool: true; default: boolean };

export interface OpSpec<K extends OpName> {
  /** Every argument of the op (the compiler checks the names against OpArgs[K]). */
  args: { [P in keyof OpArgs[K]]-?: ArgSpec<KernelArgs[K]> };
  /** Checks across arguments; returns what is wrong, or undefined. */
  check?: (a: KernelArgs[K]) => string | undefined;
  /** Host-side precomputation: the fields KernelArgs[K] adds to OpArgs[K]. */
  prepare?: (a: KernelArgs[K]) => Omit<KernelArgs[K], keyof OpArgs[K]>;
  /**
   * Optional parts of the op that only some kernels implement: when `wants(args)` and the backend lacks the
   * capability `unless`, OpBackend runs `compose` (the same result from the backend's other ops) instead of the
   * kernel, so the kernels of the other backends never see those arguments.
   */
  composed?: { unless: KernelCapability; wants: (a: KernelArgs[K]) => boolean; compose: (be: Backend, a: KernelArgs[K]) => void };
  /** Optional parts that only backends with capability `capability` take (no composition): `what` names them. */
  requires?: { capability: KernelCapability; when: (a: KernelArgs[K]) => boolean; what: string };
}

/** What a backend's kernels may do beyond the plain op (a boolean field of OpBackend, false unless a backend sets it). */
export type KernelCapability = 'fusesMatmul' | 'queryStarts';

const int = { int: true } as const;
const num = { number: true } as const;
const off = { int: true, default: 0 } as const;
const flag = { bool: true, default: false } as const;
/** The [0, n) range of an elementwise operand. */
const first =
  <A>(n: (a: A) => number) =>
  (a: A): [number, number] => [0, n(a)];
/** The f32 operands of the elementwise ops over [0, n): read, and written. */
const nIn = { tensor: 'f32', range: first((a: { n: number }) => a.n) } as const;
const nOut = { ...nIn, writes: true } as const;
/** The f32 operands of the row ops over [0, rows * dim): read, and written; and the per-row [0, rows) ones. */
const rowsIn = { tensor: 'f32', range: first((a: { rows: number; dim: number }) => a.rows * a.dim) } as const;
const rowsOut = { ...rowsIn, writes: true } as const;
const perRow = { tensor: 'f32', range: first((a: { rows: number }) => a.rows) } as const;
/** A [dim] weight (f32 or bf16), read. */
const dimWeight = { tensor: 'float', range: first((a: { dim: number }) => a.dim) } as const;
/** Elements a strided rows x cols block spans from its first element. */
const span2d = (rows: number, cols: number, stride: number) => (rows > 0 && cols > 0 ? (rows - 1) * stride + cols : 0);

const attnShape = { B: int, Tq: int, Hq: int, Hkv: int, D: int, qStart: int, kvCap: int } as const;
/** Query rows of all sequences: B x Tq, or Tq itself with per-sequence rows (qRows). */
const queryRows = (a: AttentionShape & { qRows?: Tensor }) => (a.qRows ? a.Tq : a.B * a.Tq);
const qRange = (a: AttentionShape): [number, number] => [0, queryRows(a) * a.Hq * a.D];
const kvRange = (a: AttentionShape): [number, number] => [0, a.B * a.kvCap * a.Hkv * a.D];
const lseRange = (a: AttentionShape): [number, number] => [0, queryRows(a) * a.Hq];
/** Per-sequence query starts: i32 [B] (their values are checked by the kernels that take them, against qStart). */
const qStartsArg = { tensor: 'i32', optional: true, range: first((a: AttentionShape) => a.B) } as const;
const qRowsArg = { tensor: 'i32', optional: true, range: first((a: AttentionShape) => a.B + 1) } as const;
const queryStartsOnly = {
  capability: 'queryStarts',
  when: (a: { qStarts?: Tensor; qRows?: Tensor }) => !!(a.qStarts || a.qRows),
  what: 'per-sequence query starts and rows (qStarts, qRows)',
} as const;
// with qRows the kernels check each sequence's qStarts[b] + rows against kvCap (the values are in tensors)
const attnCheck = (a: AttentionShape & { qStarts?: Tensor; qRows?: Tensor }) =>
  a.Hkv === 0 || a.Hq % a.Hkv
    ? `Hq (${a.Hq}) must be a multiple of Hkv (${a.Hkv})`
    : a.qRows && !a.qStarts
      ? 'qRows needs qStarts'
      : !a.qRows && a.qStart + a.Tq > a.kvCap
        ? `qStart + Tq (${a.qStart + a.Tq}) exceeds kvCap (${a.kvCap})`
        : undefined;

export const OPS: { [K in OpName]: OpSpec<K> } = {
  copy2d: {
    args: {
      src: { tensor: 'any', range: (a) => [a.srcOff, span2d(a.rows, a.cols, a.srcStride)] },
      dst: { tensor: 'any', writes: true, range: (a) => [a.dstOff, span2d(a.rows, a.cols, a.dstStride)] },
      rows: int,
      cols: int,
      srcStride: int,
      dstStride: int,
      srcOff: off,
      dstOff: off,
      accumulate: flag,
    },
  },
  add: { args: { a: nIn, b: nIn, out: nOut, n: int } },
  axpy: {
    args: {
      alpha: num,
      x: { tensor: 'f32', range: (a) => [a.xOff, a.n] },
      y: { tensor: 'f32', writes: true, range: (a) => [a.yOff, a.n] },
      n: int,
      xOff: off,
      yOff: off,
    },
  },
  scale: { args: { x: nOut, s: num, n: int } },
  embedding: {
    args: {
      ids: { tensor: 'i32', range: first((a) => a.rows) },
      table: { tensor: 'float', range: first((a) => a.dim) },
      out: rowsOut,
      rows: int,
      dim: int,
    },
  },
  embeddingBackward: {
    args: {
      ids: { tensor: 'i32', range: first((a) => a.rows) },
      dOut: rowsIn,
      dTable: { tensor: 'f32', writes: true, range: first((a) => a.dim) },
      rows: int,
      dim: int,
    },
  },
  matmul: {
    args: {
      a: { tensor: 'float', range: (a) => [a.aOff, a.M * a.K] },
      b: { tensor: 'float', range: (a) => [a.bOff, a.N * a.K] },
      c: { tensor: 'f32', writes: true, range: (a) => [a.cOff, a.M * a.N] },
      bias: { tensor: 'float', optional: true, range: first((a) => a.N) },
      residual: { tensor: 'f32', optional: true, range: (a) => [a.cOff, a.M * a.N] },
      swigluGate: { tensor: 'f32', optional: true, range: (a) => [a.aOff, a.M * a.K] },
      M: int,
      N: int,
      K: int,
      transA: flag,
      transB: flag,
      accumulate: flag,
      aOff: off,
      bOff: off,
      cOff: off,
    },
    // every kernel reads A and B (and the gate) while it writes C in tiles; the residual is read where C is written,
    // element for element, so it may be C itself
    check: (a) =>
      a.c === a.a || a.c === a.b || a.c === a.swigluGate
        ? `output '${a.c.label}' aliases an input`
        : a.residual && a.accumulate
          ? 'residual and accumulate cannot be combined'
          : a.residual && a.residual.size !== a.c.size
            ? `residual '${a.residual.label}' must be a tensor of C's size (${a.c.size})`
            : a.swigluGate && (a.swigluGate.size !== a.a.size || a.a.dtype !== 'f32')
              ? `swigluGate '${a.swigluGate.label}' needs an f32 A of its size (${a.a.size})`
              : undefined,
    composed: { unless: 'fusesMatmul', wants: (a) => !!(a.residual || a.swigluGate), compose: matmulUnfused },
  },
  sumRows: {
    args: {
      dY: { tensor: 'f32', range: first((a) => a.rows * a.cols) },
      dBias: { tensor: 'f32', writes: true, range: first((a) => a.cols) },
      rows: int,
      cols: int,
    },
  },
  rmsNorm: { args: { x: rowsIn, w: dimWeight, y: rowsOut, rstd: { ...perRow, writes: true }, rows: int, dim: int, eps: num } },
  rmsNormBackward: {
    args: {
      dy: rowsIn,
      x: rowsIn,
      w: dimWeight,
      rstd: perRow,
      dx: rowsOut,
      dw: { tensor: 'f32', writes: true, range: first((a) => a.dim) },
      rows: int,
      dim: int,
    },
  },
  rope: {
    args: {
      x: { tensor: 'f32', writes: true, range: first((a) => a.rows * a.heads * a.D) },
      pos: { tensor: 'i32', range: first((a) => a.rows) },
      rows: int,
      heads: int,
      D: int,
      theta: num,
      inverse: flag,
    },
    check: (a) => (a.D % 2 ? `head dimension D = ${a.D} must be even` : undefined),
    prepare: (a) => ({ invFreq: ropeInvFreq(a.theta, a.D) }),
  },
  attention: {
    args: {
      q: { tensor: 'f32', range: qRange },
      kCache: { tensor: 'f32', range: kvRange },
      vCache: { tensor: 'f32', range: kvRange },
      out: { tensor: 'f32', writes: true, range: qRange },
      lse: { tensor: 'f32', writes: true, range: lseRange },
      qStarts: qStartsArg,
      qRows: qRowsArg,
      ...attnShape,
    },
    check: attnCheck,
    requires: queryStartsOnly,
  },
  attentionBackward: {
    args: {
      dOut: { tensor: 'f32', range: qRange },
      q: { tensor: 'f32', range: qRange },
      kCache: { tensor: 'f32', range: kvRange },
      vCache: { tensor: 'f32', range: kvRange },
      out: { tensor: 'f32', range: qRange },
      lse: { tensor: 'f32', range: lseRange },
      dq: { tensor: 'f32', writes: true, range: qRange },
      dkCache: { tensor: 'f32', writes: true, range: kvRange },
      dvCache: { tensor: 'f32', writes: true, range: kvRange },
      qStarts: qStartsArg,
      qRows: qRowsArg,
      ...attnShape,
    },
    check: attnCheck,
    requires: queryStartsOnly,
  },
  swiglu: { args: { gate: nIn, up: nIn, out: nOut, n: int } },
  swigluBackward: { args: { dOut: nIn, gate: nIn, up: nIn, dGate: nOut, dUp: nOut, n: int } },
  crossEntropy: {
    args: {
      logits: { tensor: 'f32', writes: (a) => !!a.weights, range: (a) => [a.logitsOff, a.rows * a.V] },
      labels: { tensor: 'i32', range: (a) => [a.labelOff, a.rows] },
      losses: { tensor: 'f32', writes: true, range: (a) => [a.lossOff, a.rows] },
      weights: { tensor: 'f32', optional: true, range: (a) => [a.labelOff, a.rows] },
      rows: int,
      V: int,
      logitsOff: off,
      labelOff: off,
      lossOff: off,
    },
  },
  adamw: {
    args: {
      param: nOut,
      grad: nIn,
      m: nOut,
      v: nOut,
      n: int,
      lr: num,
      beta1: num,
      beta2: num,
      eps: num,
      weightDecay: num,
      step: int,
      gradScale: num,
    },
    prepare: (a) => ({ bc1: 1 - Math.pow(a.beta1, a.step), bc2: 1 - Math.pow(a.beta2, a.step) }),
  },
  sumSquares: {
    args: {
      x: nIn,
      n: int,
      out: { tensor: 'f32', writes: true, range: (a) => [a.outIndex, 1] },
      outIndex: int,
    },
  },
};

/** Every op of the table, in table order. */
export const OP_NAMES = Object.keys(OPS) as OpName[];

// ---------------------------------------------------------------- host-side precomputation

/** One sequence of an attention call: query rows r0 .. r0 + n - 1 of q/out, at positions start .. start + n - 1. */
export interface QuerySequence {
  start: number;
  r0: number;
  n: number;
}

/**
 * The sequences of an attention call, checked: from host views of its per-sequence starts and rows (qStarts, qRows)
 * where given, else the uniform layout (Tq rows each from b * Tq, at qStart). Starts lie in [0, qStart], qRows runs
 * from 0 to Tq, and every sequence's rows fit the cache from its start; `bad` throws the backend's error. The op
 * table cannot check these (they are tensor contents), so the backends that can read them call this.
 */
export function querySequences(
  { B, Tq, qStart, kvCap }: AttentionShape,
  starts: ArrayLike<number> | undefined,
  first: ArrayLike<number> | undefined,
  bad: (msg: string) => never,
): QuerySequence[] {
  if (first && (first[0] !== 0 || first[B] !== Tq)) bad(`qRows must run from 0 to Tq = ${Tq} (got ${first[0]} .. ${first[B]})`);
  const seqs: QuerySequence[] = [];
  for (let b = 0; b < B; b++) {
    const start = starts ? starts[b] : qStart,
      r0 = first ? first[b] : b * Tq,
      n = first ? first[b + 1] - r0 : Tq;
    if (!(start >= 0 && start <= qStart)) bad(`qStarts[${b}] = ${start} outside [0, ${qStart}]`);
    if (!(n >= 0 && start + n <= kvCap)) bad(`sequence ${b}: ${n} query rows from position ${start} do not fit kvCap ${kvCap}`);
    seqs.push({ start, r0, n });
  }
  return seqs;
}

const invFreqCache = new Map<string, Float32Array>();
/** f_i = theta^(-2i/D) for i < D/2, rounded to f32 once (HF computes them in f32); cached per (theta, D). */
export function ropeInvFreq(theta: number, D: number): Float32Array {
  const key = `${theta}/${D}`;
  let f = invFreqCache.get(key);
  if (!f) {
    f = new Float32Array(D / 2);
    for (let i = 0; i < D / 2; i++) f[i] = 1 / Math.pow(theta, (2 * i) / D);
    invFreqCache.set(key, f);
  }
  return f;
}

/**
 * The cos/sin table of the host backends for positions `pos` (rows x D/2 each, row-major): the f32 angle
 * pos[r] * f_i, then cos and sin in f64 rounded to f32 (sin negated for the inverse rotation). The WebGPU kernel
 * computes the same angles on the device from the same invFreq.
 */
export function ropeCosSin(
  invFreq: Float32Array,
  pos: ArrayLike<number>,
  rows: number,
  inverse: boolean,
  cos: Float32Array,
  sin: Float32Array,
): void {
  const half = invFreq.length;
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < half; i++) {
      const ang = Math.fround(pos[r] * invFreq[i]);
      cos[r * half + i] = Math.cos(ang);
      const s = Math.fround(Math.sin(ang));
      sin[r * half + i] = inverse ? -s : s;
    }
}

// ---------------------------------------------------------------- the validating wrapper

function isTensor(t: unknown): t is Tensor {
  return typeof t === 'object' && t !== null && typeof (t as Tensor).size === 'number' && typeof (t as Tensor).dtype === 'string';
}

/** Each op's argument specs split into scalars and tensors once, so a call does not rebuild them. */
const SPECS = Object.fromEntries(
  OP_NAMES.map((op) => {
    const entries = Object.entries(OPS[op].args) as [string, ArgSpec<never>][];
    return [op, { scalars: entries.filter(([, s]) => !('tensor' in s)), tensors: entries.filter(([, s]) => 'tensor' in s) }];
  }),
) as Record<OpName, { scalars: [string, ArgSpec<never>][]; tensors: [string, ArgSpec<never>][] }>;

function fail(backend: BackendName, op: OpName, msg: string): never {
  throw new BackendError(`${backend} backend: ${op}: ${msg}`, backend);
}

/**
 * Checks `args` of op `op` against the table and returns the kernel's arguments (defaults filled in, host-side
 * precomputation added). Throws a BackendError naming the backend, the op and the argument.
 */
export function checkOp<K extends OpName>(backend: BackendName, op: K, args: OpArgs[K]): KernelArgs[K] {
  const spec = OPS[op] as OpSpec<K>;
  if (typeof args !== 'object' || args === null) fail(backend, op, 'expects one object of named arguments');
  // Object.assign, not a spread: this runs before every op, and `{ ...args }` followed by new properties (the
  // defaults) measured several times slower in V8 than the whole rest of the checks
  const a = Object.assign({}, args) as unknown as Record<string, unknown>;
  const { scalars, tensors } = SPECS[op];
  // scalars first: the tensor ranges are computed from them
  for (const [name, s] of scalars) {
    let v = a[name];
    if (v === undefined && 'default' in s && s.default !== undefined) v = a[name] = s.default;
    if ('int' in s ? !(Number.isInteger(v) && (v as number) >= 0) : 'number' in s ? typeof v !== 'number' : typeof v !== 'boolean')
      fail(
        backend,
        op,
        `'${name}' must be ${'int' in s ? 'a non-negative integer' : 'number' in s ? 'a number' : 'true or false'} (got ${v})`,
      );
  }
  const full = a as never as KernelArgs[K];
  for (const [name, s] of tensors) {
    if (!('tensor' in s)) continue;
    const t = a[name];
    if (t === undefined && s.optional) continue;
    if (!isTensor(t)) fail(backend, op, `'${name}' must be a tensor (got ${t === undefined ? 'nothing' : typeof t})`);
    const tt = t as Tensor;
    const writes = typeof s.writes === 'function' ? s.writes(full as never) : !!s.writes;
    if (s.tensor === 'i32' && tt.dtype !== 'i32') fail(backend, op, `'${name}' (tensor '${tt.label}') must be i32, is ${tt.dtype}`);
    if ((s.tensor === 'f32' || s.tensor === 'float') && tt.dtype === 'i32')
      fail(backend, op, `'${name}' (tensor '${tt.label}') must be f32, is i32`);
    if (s.tensor === 'f32' && tt.dtype === 'bf16' && !writes) fail(backend, op, `'${name}' (tensor '${tt.label}') must be f32, is bf16`);
    if (writes && tt.dtype === 'bf16') fail(backend, op, `'${name}' (tensor '${tt.label}') is bf16, which ops only read`);
    const [o, n] = s.range(full as never);
    if (n > 0 && (o < 0 || o + n > tt.size))
      fail(backend, op, `'${name}' (tensor '${tt.label}', ${tt.size} elements) accessed at [${o}, ${o + n})`);
  }
  const bad = spec.check?.(full);
  if (bad) fail(backend, op, bad);
  return (spec.prepare ? Object.assign(full, spec.prepare(full)) : full) as KernelArgs[K];
}

/**
 * The base of every backend class: one public method per op of the table (checked by `checkOp`, then the backend's
 * kernel), and `upload`, whose bounds check and bf16 rounding are the same everywhere. Subclasses implement the
 * `Kernels` and the memory methods.
 */
// The op methods are installed on the prototype from OPS below; this declaration merge gives them their types.
export interface OpBackend extends BackendOps {}
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the methods are installed on the prototype below, from OPS
export abstract class OpBackend {
  abstract readonly name: BackendName;
  /**
   * Whether kernelMatmul takes matmul's `residual` and `swigluGate` itself (fused into its loads and stores); else
   * OpBackend composes them from the backend's other ops (./matmul-fused.ts) and the kernel never sees them.
   */
  readonly fusesMatmul: boolean = false;
  /** Whether attention and its backward take `qStarts` (per-sequence query positions); the model asks before using it. */
  readonly queryStarts: boolean = false;
  /** Writes already checked (and, for bf16 tensors, rounded) data at element `offset`. */
  protected abstract kernelUpload(t: Tensor, data: Float32Array | Int32Array, offset: number): void;

  upload(t: Tensor, data: Float32Array | Int32Array, offset = 0): void {
    if (!isTensor(t)) throw new BackendError(`${this.name} backend: upload: not a tensor`, this.name);
    if (!Number.isInteger(offset) || offset < 0 || offset + data.length > t.size)
      throw new BackendError(
        `${this.name} backend: upload of ${data.length} elements at ${offset} overflows tensor '${t.label}' (${t.size})`,
        this.name,
      );
    this.kernelUpload(t, t.dtype === 'bf16' ? roundToBf16(Float32Array.from(data)) : data, offset);
  }
}
for (const op of OP_NAMES) {
  const k = kernelName(op);
  const composed = (OPS[op] as OpSpec<OpName>).composed as OpSpec<OpName>['composed'] & { compose: (be: Backend, a: unknown) => void };
  Object.defineProperty(OpBackend.prototype, op, {
    configurable: true,
    writable: true,
    value: function (this: OpBackend & Record<string, unknown>, args: never) {
      const kernel = this[k] as ((a: unknown) => void) | undefined;
      if (typeof kernel !== 'function') throw new BackendError(`${this.name} backend: has no kernel for op '${op}' (${k})`, this.name);
      const a = checkOp(this.name, op, args);
      const req = (OPS[op] as OpSpec<OpName>).requires;
      if (req && !this[req.capability] && req.when(a as never))
        throw new BackendError(`${this.name} backend: ${op}: ${req.what} not supported by this backend`, this.name);
      if (composed && !this[composed.unless] && composed.wants(a as never)) composed.compose(this as never as Backend, a);
      else kernel.call(this, a);
    },
  });
}
