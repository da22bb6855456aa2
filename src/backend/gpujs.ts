// The gpu.js backend: the fallback where no WebGPU adapter exists. gpu.js compiles small JavaScript kernel
// functions to GLSL fragment shaders (WebGL2 in browsers, headless-gl in Node when the `gl` package is built),
// to WebAssembly with f32x4 SIMD ("webasm", what Node/Bun/Deno get without `gl`), or to plain JS ("cpu").
//
// Design (correctness first, the same numerics as src/backend/cpu.ts in f32):
// - Tensors are host Float32Array/Int32Array, exactly like the CPU backend. Every compute op runs as one or
//   more gpu.js kernels whose result is copied (or, for backward ops, added) into the destination array.
//   upload/read/zero/copy2d are plain memory moves on the host and launch no kernel.
// - One kernel per op function, created lazily, with `dynamicOutput` + `dynamicArguments` so the same kernel
//   serves every shape; shapes and offsets are kernel ARGUMENTS, never constants (constants bake into the
//   compiled shader/module and would force a rebuild per value).
// - Kernel sources are STRINGS, not functions: gpu.js parses the source text, and a string survives tsx,
//   vitest's transform and any downstream bundler/minifier unchanged (a minifier may rewrite a function into
//   constructs the gpu.js parser rejects).
// - Inputs are passed as slices of at most MAX_SPAN (2^22) elements and outputs never exceed it, with every op
//   tiled/chunked to fit. Three reasons: (1) WebGL uploads each array as a texture, and 2^22 texels is a
//   2048x2048 texture, the size every WebGL2 implementation guarantees; (2) gpu.js kernels have no integer
//   type on the GL paths (and the webasm path does index arithmetic in f32), so every index must stay below
//   2^24 to be exact; (3) the webasm path copies every argument into its wasm memory per call, so slicing
//   keeps Qwen2-0.5B's 545 MB embedding from being copied whole for a 64-row gather.
// - matmul is one strided kernel for all four transpose variants (strides are arguments), register-blocked:
//   each thread returns an Array(4) holding four rows of one output column (matmul4), so one loaded B element
//   feeds four products; tiles with fewer than 4 rows use the one-output kernel. Tiles larger than MAX_SPAN
//   are split in M, N and K; K tiles after the first add into C.
// - No integer division in kernels (GPUs get 9/3 = 2.999 wrong): index decomposition uses 2-D/3-D outputs
//   (this.thread.x/y/z), and the GQA head map h -> h / (Hq/Hkv) is a small lookup array computed on the host.
// - Reductions that a fragment-shader model cannot scatter (no atomics):
//   * embeddingBackward: the host sorts the row ids (index bookkeeping only), a kernel sums the dOut rows of
//     each distinct id, and the host adds those sums into dTable rows.
//   * sumSquares: a kernel reduces 1024-element segments; the host adds the few partial sums (f64).
//   * attention: scores are materialised per chunk of query rows (at most MAX_SPAN scores at a time, so the
//     full [Tq, Tk] matrix never is) and the softmax / weighted sums run as separate kernels. The flash-style single pass of the WebGPU backend needs
//     per-thread loops over keys with running state per output column, which a one-value-per-thread kernel
//     would repeat D times.
// - rope: the cos/sin table is computed on the host in f64, exactly as the reference does, and the kernel does
//   the rotation. GPU sin/cos of large angles (position 4095) is far less accurate than 1e-4; the WASM
//   backend uses a host table for the same reason.
// - AdamW: the bias corrections and (1 - beta) are computed on the host in f64 and passed in, as in the WASM
//   backend (1 - 0.999 in f32 is off by 5e-5 relative).
// No op delegates to the CPU reference implementation.
//
// Precision: every kernel is built with precision 'single' (f32 textures, no 8-bit packing) and tactic
// 'precision' (highp in GLSL). gpu.js is imported dynamically so bundles that never use it never load it.
import { OpBackend, querySequences, ropeCosSin, type KernelArgs, type Kernels } from './ops.js';
import { BackendError, type AttentionShape, type Backend, type DType, type Tensor } from './types.js';

export type GpujsMode = 'gpu' | 'webgl2' | 'webgl' | 'headlessgl' | 'webasm' | 'cpu';

export interface GpujsBackendOptions {
  /** gpu.js mode; 'gpu' (default) lets gpu.js pick: WebGL2 in browsers, headless-gl or WebAssembly in Node. */
  mode?: GpujsMode;
  /**
   * Elements per kernel argument slice and output (default MAX_SPAN = 2^22, at most 2^24 so indices stay exact
   * in f32). Lower it for WebGL implementations with small textures, or to exercise the tiling in tests.
   */
  maxSpan?: number;
}

/** Largest slice (elements) passed to or returned from one kernel call; see the header comment. */
export const MAX_SPAN = 1 << 22;
/** gpu.js caps loops whose bounds are not literals at this many iterations (GLSL needs a constant bound). */
const LOOP_MAX = (1 << 24) + 1;
/** Compiled webasm modules (one per size signature) each kernel keeps; see GpujsBackend.run. */
const MODULE_CACHE = 16;
/** sumSquares reduces segments of this many elements per kernel thread. */
const SEG = 1024;

// ---- minimal typings for the parts of gpu.js used here (the package is CommonJS and typed loosely) ----
interface GpuKernel {
  (...args: unknown[]): unknown;
  setOutput(output: number[]): unknown;
  /** The concrete kernel instance behind the run shortcut (its constructor carries the backend mode). */
  kernel?: { constructor: { mode?: string }; moduleCacheLimit?: number };
}
interface GpuInstance {
  createKernel(source: string, settings: Record<string, unknown>): GpuKernel;
  destroy(): unknown;
}
type GpuCtor = new (settings: Record<string, unknown>) => GpuInstance;

class GpujsTensor implements Tensor {
  freed = false;
  constructor(
    public data: Float32Array | Int32Array,
    readonly size: number,
    readonly dtype: DType,
    readonly label: string,
  ) {}
}

// ---- kernel sources (gpu.js JavaScript subset: numbers are f32, this.thread.x/y/z index the output) ----
// Every local name is unique within its kernel, loop counters included: gpu.js's 'cpu' transpiler hoists
// `let` declarations to function scope, so two `for (let j ...)` loops would redeclare one variable.
/**
 * Kernel body pieces used by several kernels (gpu.js kernels cannot call a shared JS function, so the source is
 * spliced in). `returnLogSumExp(x, o, n)`: returns log sum_i exp(x[o + i]) over i < n, shifted by the maximum;
 * it declares mx, sum, i1, i2.
 */
const returnLogSumExp = (x: string, o: string, n: string) => `let mx = ${x}[${o}];
    for (let i1 = 1; i1 < ${n}; i1++) {
      mx = Math.max(mx, ${x}[${o} + i1]);
    }
    let sum = 0;
    for (let i2 = 0; i2 < ${n}; i2++) {
      sum += Math.exp(${x}[${o} + i2] - mx);
    }
    return mx + Math.log(sum);`;
/** j = key, h = query head, z = query row of the chunk; a key after the row's position (causal mask) gives 0. */
const causalKeyHeadRow = `const j = this.thread.x;
    const h = this.thread.y;
    const z = this.thread.z;
    if (j > lim0 + z) {
      return 0;
    }`;

const SRC = {
  add: `function (a, b) { return a[this.thread.x] + b[this.thread.x]; }`,
  axpy: `function (xs, ys, alpha) { return ys[this.thread.x] + alpha * xs[this.thread.x]; }`,
  scale: `function (xs, s) { return xs[this.thread.x] * s; }`,

  // out[y, x] = table[(id - v0) * dim + x] when v0 <= id < v1, else the old value (rows of other table chunks,
  // and rows with id < 0 which the caller fills itself).
  embedding: `function (table, ids, old, v0, v1, dim) {
    const id = ids[this.thread.y];
    if (id >= v0 && id < v1) {
      return table[(id - v0) * dim + this.thread.x];
    }
    return old[this.thread.y * dim + this.thread.x];
  }`,
  // sums[u, x] = sum of dOut rows perm[start[u]] .. perm[start[u+1]-1] (all rows holding the u-th distinct id)
  embeddingBackward: `function (g, perm, start, dim) {
    const st = start[this.thread.y];
    const n = start[this.thread.y + 1] - st;
    let s = 0;
    for (let q = 0; q < n; q++) {
      s += g[perm[st + q] * dim + this.thread.x];
    }
    return s;
  }`,

  // C[y = m, x = n] over a K tile with arbitrary element strides, so one kernel covers all four transposes.
  matmul: `function (a, b, bias, hasBias, K, sAm, sAk, sBk, sBn) {
    let ai = this.thread.y * sAm;
    let bi = this.thread.x * sBn;
    let s = 0;
    for (let k = 0; k < K; k++) {
      s += a[ai] * b[bi];
      ai += sAk;
      bi += sBk;
    }
    if (hasBias > 0) {
      s += bias[this.thread.x];
    }
    return s;
  }`,
  // The same, register-blocked: each thread computes rows 4y..4y+3 of column x and returns them as one
  // Array(4), so every loaded B element feeds four products (2-2.5x faster on the webasm path; on GL it is one
  // RGBA32F texel per thread). Rows past mMax are clamped onto row mMax and dropped by the host.
  matmul4: `function (a, b, bias, hasBias, K, sAm, sAk, sBk, sBn, mMax) {
    const m0 = this.thread.y * 4;
    let a0 = Math.min(m0, mMax) * sAm;
    let a1 = Math.min(m0 + 1, mMax) * sAm;
    let a2 = Math.min(m0 + 2, mMax) * sAm;
    let a3 = Math.min(m0 + 3, mMax) * sAm;
    let bi = this.thread.x * sBn;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let k = 0; k < K; k++) {
      const bv = b[bi];
      s0 += a[a0] * bv;
      s1 += a[a1] * bv;
      s2 += a[a2] * bv;
      s3 += a[a3] * bv;
      a0 += sAk;
      a1 += sAk;
      a2 += sAk;
      a3 += sAk;
      bi += sBk;
    }
    if (hasBias > 0) {
      const bb = bias[this.thread.x];
      s0 += bb;
      s1 += bb;
      s2 += bb;
      s3 += bb;
    }
    return [s0, s1, s2, s3];
  }`,
  sumRows: `function (g, rows, cols) {
    let s = 0;
    for (let r = 0; r < rows; r++) {
      s += g[r * cols + this.thread.x];
    }
    return s;
  }`,

  rmsRstd: `function (xs, dim, eps) {
    const o = this.thread.x * dim;
    let ss = 0;
    for (let c = 0; c < dim; c++) {
      const v = xs[o + c];
      ss += v * v;
    }
    return 1 / Math.sqrt(ss / dim + eps);
  }`,
  rmsY: `function (xs, w, rstd, dim) {
    return w[this.thread.x] * (xs[this.thread.y * dim + this.thread.x] * rstd[this.thread.y]);
  }`,
  // k[r] = mean(w * g * x) * rstd^3
  rmsBwdK: `function (g, xs, w, rstd, dim) {
    const o = this.thread.x * dim;
    let d = 0;
    for (let c = 0; c < dim; c++) {
      d += w[c] * g[o + c] * xs[o + c];
    }
    const rs = rstd[this.thread.x];
    return (d / dim) * rs * rs * rs;
  }`,
  rmsBwdDx: `function (g, xs, w, rstd, kk, dim) {
    const i = this.thread.y * dim + this.thread.x;
    return w[this.thread.x] * g[i] * rstd[this.thread.y] - xs[i] * kk[this.thread.y];
  }`,
  rmsBwdDw: `function (g, xs, rstd, rows, dim) {
    let s = 0;
    for (let r = 0; r < rows; r++) {
      const i = r * dim + this.thread.x;
      s += g[i] * xs[i] * rstd[r];
    }
    return s;
  }`,

  // x = i (0..D), y = head, z = row; cosT/sinT are [rows, D/2] (sinT already negated for the inverse).
  rope: `function (xs, cosT, sinT, half, heads, D) {
    const i = this.thread.x;
    const o = (this.thread.z * heads + this.thread.y) * D;
    if (i < half) {
      const t = this.thread.z * half + i;
      return xs[o + i] * cosT[t] - xs[o + i + half] * sinT[t];
    }
    const t2 = this.thread.z * half + i - half;
    return xs[o + i] * cosT[t2] + xs[o + i - half] * sinT[t2];
  }`,

  // ---- attention over one chunk of query rows of one sequence; row = z * Hq + h, z = query row in chunk ----
  // Query z sees keys j <= lim0 + z (lim0 = qStart + first query row of the chunk).
  // S[z, h, j] = q . k * scale (0 where masked)
  attScores: `function (q, k, khOf, D, Hq, Hkv, lim0, scale) {
    ${causalKeyHeadRow}
    const qo = (z * Hq + h) * D;
    const ko = (j * Hkv + khOf[h]) * D;
    let s = 0;
    for (let c = 0; c < D; c++) {
      s += q[qo + c] * k[ko + c];
    }
    return s * scale;
  }`,
  // lse[h, z] = log sum_j exp(S[z, h, j]) over the visible keys
  attLse: `function (S, nk, Hq, lim0) {
    const z = this.thread.x;
    const h = this.thread.y;
    const o = (z * Hq + h) * nk;
    const n = lim0 + z + 1;
    ${returnLogSumExp('S', 'o', 'n')}
  }`,
  // P[z, h, j] = exp(S - lse), lse read at lse[h * lseStride + lseOff + z]
  attProbs: `function (S, lse, lseStride, lseOff, nk, Hq, lim0) {
    ${causalKeyHeadRow}
    return Math.exp(S[(z * Hq + h) * nk + j] - lse[h * lseStride + lseOff + z]);
  }`,
  // out[z, h, c] = sum_j W[z, h, j] * X[j, kh(h), c]  (O = P V, and dQ = dS K)
  attRowsTimesKV: `function (W, X, khOf, nk, Hq, Hkv, D, lim0) {
    const c = this.thread.x;
    const h = this.thread.y;
    const z = this.thread.z;
    const wo = (z * Hq + h) * nk;
    const kh = khOf[h];
    const n = lim0 + z + 1;
    let s = 0;
    for (let j = 0; j < n; j++) {
      s += W[wo + j] * X[(j * Hkv + kh) * D + c];
    }
    return s;
  }`,
  // delta[z, h] = dO . O
  attDelta: `function (g, o, Hq, D) {
    const base = (this.thread.y * Hq + this.thread.x) * D;
    let s = 0;
    for (let c = 0; c < D; c++) {
      s += g[base + c] * o[base + c];
    }
    return s;
  }`,
  // dS[z, h, j] = P * (dO . v_j - delta) * scale
  attDScores: `function (P, g, v, khOf, delta, nk, Hq, Hkv, D, lim0, scale) {
    ${causalKeyHeadRow}
    const row = z * Hq + h;
    const go = row * D;
    const vo = (j * Hkv + khOf[h]) * D;
    let dp = 0;
    for (let c = 0; c < D; c++) {
      dp += g[go + c] * v[vo + c];
    }
    return P[row * nk + j] * (dp - delta[row]) * scale;
  }`,
  // out[j, kh, c] = sum over visible query rows z and the rep query heads of kv head kh: W[z, h, j] * X[z, h, c]
  // (dK = dS^T Q and dV = P^T dO)
  attColsTimesQ: `function (W, X, nI, nk, Hq, rep, D, lim0) {
    const c = this.thread.x;
    const kh = this.thread.y;
    const j = this.thread.z;
    const z0 = Math.max(0, j - lim0);
    const cnt = nI - z0;
    let s = 0;
    for (let t = 0; t < cnt; t++) {
      for (let g = 0; g < rep; g++) {
        const row = (z0 + t) * Hq + kh * rep + g;
        s += W[row * nk + j] * X[row * D + c];
      }
    }
    return s;
  }`,

  swiglu: `function (g, u) {
    const v = g[this.thread.x];
    return (v / (1 + Math.exp(-v))) * u[this.thread.x];
  }`,
  swigluBwdGate: `function (d, g, u) {
    const v = g[this.thread.x];
    const sig = 1 / (1 + Math.exp(-v));
    return d[this.thread.x] * u[this.thread.x] * sig * (1 + v * (1 - sig));
  }`,
  swigluBwdUp: `function (d, g) {
    const v = g[this.thread.x];
    const sig = 1 / (1 + Math.exp(-v));
    return d[this.thread.x] * v * sig;
  }`,

  ceLse: `function (xs, labels, V) {
    if (labels[this.thread.x] < 0) {
      return 0;
    }
    const o = this.thread.x * V;
    ${returnLogSumExp('xs', 'o', 'V')}
  }`,
  ceLoss: `function (xs, labels, lse, V) {
    const y = labels[this.thread.x];
    if (y < 0) {
      return 0;
    }
    return lse[this.thread.x] - xs[this.thread.x * V + y];
  }`,
  ceGrad: `function (xs, labels, lse, w, V) {
    const y = labels[this.thread.y];
    if (y < 0) {
      return 0;
    }
    const c = this.thread.x;
    let oneHot = 0;
    if (c == y) {
      oneHot = 1;
    }
    return w[this.thread.y] * (Math.exp(xs[this.thread.y * V + c] - lse[this.thread.y]) - oneHot);
  }`,

  adamM: `function (m, g, beta1, omb1, gradScale) {
    return beta1 * m[this.thread.x] + omb1 * (g[this.thread.x] * gradScale);
  }`,
  adamV: `function (v, g, beta2, omb2, gradScale) {
    const gg = g[this.thread.x] * gradScale;
    return beta2 * v[this.thread.x] + omb2 * gg * gg;
  }`,
  adamP: `function (p, m, v, lr, eps, wd, bc1, bc2) {
    const mhat = m[this.thread.x] / bc1;
    const vhat = v[this.thread.x] / bc2;
    return p[this.thread.x] - lr * (mhat / (Math.sqrt(vhat) + eps) + wd * p[this.thread.x]);
  }`,
  sumSquares: `function (xs, n, seg) {
    const s0 = this.thread.x * seg;
    const cnt = Math.min(seg, n - s0);
    let s = 0;
    for (let i = 0; i < cnt; i++) {
      const v = xs[s0 + i];
      s += v * v;
    }
    return s;
  }`,
} as const;
type KernelName = keyof typeof SRC;

/**
 * Copies (or adds) a kernel result — a Float32Array or nested arrays of them for 2-D/3-D outputs, in
 * row-major order — into dst starting at off. Returns the element count written.
 */
function writeResult(r: unknown, dst: Float32Array, off: number, add: boolean): number {
  if (r instanceof Float32Array) {
    if (add) for (let i = 0; i < r.length; i++) dst[off + i] += r[i];
    else dst.set(r, off);
    return r.length;
  }
  if (Array.isArray(r)) {
    // fast path: a 2-D/3-D result whose rows are consecutive views of one buffer
    const total = expected(r);
    const c = total > 0 ? contiguous(r, total) : undefined;
    if (c) return writeResult(c, dst, off, add);
    let n = 0;
    for (const sub of r) n += writeResult(sub, dst, off + n, add);
    return n;
  }
  throw new TypeError(`gpu.js kernel returned ${Object.prototype.toString.call(r)}, expected Float32Array(s)`);
}

/** Element count of a nested kernel result, from its array lengths (leaves are Float32Arrays). */
function expected(r: unknown): number {
  if (r instanceof Float32Array) return r.length;
  if (Array.isArray(r)) return r.length ? r.length * expected(r[0]) : 0;
  return -1;
}

/**
 * The kernel result as ONE flat view when its leaves are consecutive views of a single buffer (how the webasm
 * path shapes 2-D/3-D and Array(4) outputs), else undefined. Saves walking one small array per row or cell.
 */
function contiguous(r: unknown, n: number): Float32Array | undefined {
  let first: unknown = r,
    last: unknown = r;
  while (Array.isArray(first)) first = first[0];
  while (Array.isArray(last)) last = last[last.length - 1];
  if (!(first instanceof Float32Array) || !(last instanceof Float32Array) || first.buffer !== last.buffer) return undefined;
  if (last.byteOffset + last.byteLength - first.byteOffset !== n * 4) return undefined;
  return new Float32Array(first.buffer, first.byteOffset, n);
}

/** A kernel result as one flat Float32Array of `n` elements (a fresh copy, safe to keep across calls). */
function flat(r: unknown, n: number): Float32Array {
  const out = new Float32Array(n);
  const got = writeResult(r, out, 0, false);
  if (got !== n) throw new RangeError(`gpu.js kernel returned ${got} elements, expected ${n}`);
  return out;
}

const f32 = (a: Int32Array | Float32Array) => (a instanceof Float32Array ? a : Float32Array.from(a));

export class GpujsBackend extends OpBackend implements Backend, Kernels {
  readonly name = 'gpujs' as const;
  override readonly queryStarts = true;
  readonly info: string;
  readonly maxBindingBytes: number;
  /** Elements per kernel slice (see MAX_SPAN). */
  readonly span: number;
  /** The gpu.js kernel backend actually running the kernels: 'webgl2', 'webasm', 'cpu', ... */
  readonly mode: string;
  private kernels = new Map<KernelName, GpuKernel>();
  private destroyed = false;

  constructor(
    private readonly gpu: GpuInstance,
    mode: string,
    requested: GpujsMode,
    span = MAX_SPAN,
  ) {
    super();
    if (!Number.isInteger(span) || span < 16 || span > 1 << 24)
      throw new BackendError(`gpujs backend: maxSpan ${span} must be an integer in [16, 2^24]`, 'gpujs');
    this.span = span;
    this.maxBindingBytes = span * 4;
    this.mode = mode;
    const why = requested === 'gpu' ? 'chosen by gpu.js auto-selection' : `mode '${requested}' requested`;
    this.info = `gpu.js ${mode} kernels (${why}; f32 'single' precision, host-resident tensors, ${span}-element kernel slices)`;
  }

  // ---- plumbing ----

  private fail(msg: string): never {
    throw new BackendError(`gpujs backend: ${msg}`, 'gpujs');
  }

  /** The kernel for `name`, compiled on first use. */
  private k(name: KernelName): GpuKernel {
    let kern = this.kernels.get(name);
    if (!kern) {
      if (this.destroyed) this.fail(`kernel '${name}' used after destroy`);
      kern = this.gpu.createKernel(SRC[name], {
        output: [1],
        dynamicOutput: true,
        dynamicArguments: true,
        precision: 'single',
        tactic: 'precision',
        loopMaxIterations: LOOP_MAX,
      });
      this.kernels.set(name, kern);
    }
    return kern;
  }

  /** Runs kernel `name` over `output` ([x], [x, y] or [x, y, z]) and returns its raw result. */
  private run(name: KernelName, output: number[], ...args: unknown[]): unknown {
    const kern = this.k(name);
    kern.setOutput(output);
    try {
      const r = kern(...args);
      // The webasm path compiles and caches one module (with its own wasm memory holding the arguments) per
      // size signature, 8 by default. A training step cycles through ~15 matmul shapes, so allow a few more;
      // not many more, since each cached module pins its memory (up to ~50 MB at 2^22-element slices), and a
      // recompile costs only ~20 ms against hundreds of ms of arithmetic at those shapes.
      if (kern.kernel && typeof kern.kernel.moduleCacheLimit === 'number' && kern.kernel.moduleCacheLimit < MODULE_CACHE)
        kern.kernel.moduleCacheLimit = MODULE_CACHE;
      return r;
    } catch (e) {
      this.fail(`kernel '${name}' over [${output.join(', ')}] failed: ${(e as Error).message}`);
    }
  }

  private T(t: Tensor, what: string): GpujsTensor {
    const g = t as GpujsTensor;
    if (!(g instanceof GpujsTensor)) this.fail(`${what}: tensor '${t.label}' does not belong to the gpujs backend`);
    if (g.freed) this.fail(`${what}: tensor '${t.label}' was freed`);
    return g;
  }
  private F(t: Tensor, what: string): Float32Array {
    const d = this.T(t, what).data;
    if (!(d instanceof Float32Array)) this.fail(`${what}: tensor '${t.label}' is i32, expected f32`);
    return d;
  }
  /** Integer tensor (ids, labels, positions) as its raw array; f32 tensors are accepted too. */
  private I(t: Tensor, what: string): Int32Array | Float32Array {
    return this.T(t, what).data;
  }

  // ---- memory (host-side moves, no kernels) ----

  alloc(size: number, dtype: DType = 'f32', label = ''): Tensor {
    if (this.destroyed) this.fail(`alloc '${label}' after destroy`);
    if (!Number.isInteger(size) || size < 0) this.fail(`alloc '${label}': bad size ${size}`);
    return new GpujsTensor(dtype === 'i32' ? new Int32Array(size) : new Float32Array(size), size, dtype, label);
  }
  free(t: Tensor): void {
    const g = this.T(t, 'free');
    g.freed = true;
    g.data = new Float32Array(0); // drop the memory now, not when the caller drops the handle
  }
  protected kernelUpload(t: Tensor, data: Float32Array | Int32Array, offset: number): void {
    this.T(t, 'upload').data.set(data as never, offset);
  }
  async read(t: Tensor, offset = 0, length?: number): Promise<Float32Array | Int32Array> {
    const d = this.T(t, 'read').data;
    const end = length === undefined ? d.length : offset + length;
    if (offset < 0 || end > d.length) this.fail(`read [${offset}, ${end}) is outside tensor '${t.label}' (${d.length})`);
    return d.slice(offset, end);
  }
  zero(t: Tensor, offset = 0, length?: number): void {
    const d = this.T(t, 'zero').data;
    d.fill(0, offset, length === undefined ? d.length : offset + length);
  }
  kernelCopy2d({ src, dst, rows, cols, srcOff, srcStride, dstOff, dstStride, accumulate }: KernelArgs['copy2d']): void {
    const s = this.T(src, 'copy2d').data,
      d = this.T(dst, 'copy2d').data;
    if (rows <= 0 || cols <= 0) return;
    for (let r = 0; r < rows; r++) {
      const so = srcOff + r * srcStride,
        dO = dstOff + r * dstStride;
      if (accumulate) for (let c = 0; c < cols; c++) d[dO + c] += s[so + c];
      else if (s !== d) d.set(s.subarray(so, so + cols) as never, dO);
      else for (let c = 0; c < cols; c++) d[dO + c] = s[so + c]; // same array: keep the reference's element order
    }
  }
  async sync(): Promise<void> {}
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.kernels.clear();
    try {
      const r = this.gpu.destroy() as unknown;
      if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => {});
    } catch {
      // destroying an already-lost GL context may throw; nothing is left to release
    }
  }

  // ---- elementwise ----

  /** Runs an elementwise kernel over [0, n) in this.span chunks: args(lo, hi) gives the kernel arguments. */
  private elementwise(
    name: KernelName,
    n: number,
    dst: Float32Array,
    dstOff: number,
    add: boolean,
    args: (lo: number, hi: number) => unknown[],
  ): void {
    for (let lo = 0; lo < n; lo += this.span) {
      const hi = Math.min(n, lo + this.span);
      writeResult(this.run(name, [hi - lo], ...args(lo, hi)), dst, dstOff + lo, add);
    }
  }

  /** out[i] = name(a[i], b[i]) for i < n: the elementwise ops of two inputs; `what` labels the three tensors in errors. */
  private binary(name: 'add' | 'swiglu', a: Tensor, b: Tensor, out: Tensor, n: number, what: [string, string, string]): void {
    const A = this.F(a, what[0]),
      B = this.F(b, what[1]);
    this.elementwise(name, n, this.F(out, what[2]), 0, false, (lo, hi) => [A.subarray(lo, hi), B.subarray(lo, hi)]);
  }

  kernelAdd({ a, b, out, n }: KernelArgs['add']): void {
    this.binary('add', a, b, out, n, ['add', 'add', 'add']);
  }
  kernelAxpy({ alpha, x, y, n, xOff, yOff }: KernelArgs['axpy']): void {
    const X = this.F(x, 'axpy'),
      Y = this.F(y, 'axpy');
    this.elementwise('axpy', n, Y, yOff, false, (lo, hi) => [X.subarray(xOff + lo, xOff + hi), Y.subarray(yOff + lo, yOff + hi), alpha]);
  }
  kernelScale({ x, s, n }: KernelArgs['scale']): void {
    const X = this.F(x, 'scale');
    this.elementwise('scale', n, X, 0, false, (lo, hi) => [X.subarray(lo, hi), s]);
  }

  // ---- embedding ----

  /**
   * How the embedding ops cut their work: `rowsPer` table (and output) rows per kernel call, so each chunk fits
   * this.span, and the [r0, r1) chunks of the op's rows; vocab is the table's row count.
   */
  private embeddingChunks(what: string, dim: number, rows: number, tableLength: number) {
    if (dim > this.span) this.fail(`${what}: dim ${dim} exceeds ${this.span}`);
    const rowsPer = Math.max(1, Math.floor(this.span / dim));
    const chunks: [number, number][] = [];
    for (let r0 = 0; r0 < rows; r0 += rowsPer) chunks.push([r0, Math.min(rows, r0 + rowsPer)]);
    return { vocab: Math.floor(tableLength / dim), rowsPer, chunks };
  }

  kernelEmbedding({ ids, table, out, rows, dim }: KernelArgs['embedding']): void {
    const id = this.I(ids, 'embedding ids'),
      W = this.F(table, 'embedding table'),
      O = this.F(out, 'embedding out');
    const { vocab, rowsPer, chunks: rowChunks } = this.embeddingChunks('embedding', dim, rows, W.length);
    for (const [r0, r1] of rowChunks) {
      const n = r1 - r0;
      const chunkIds = new Float32Array(n);
      const chunks = new Set<number>(); // which table chunks these rows read
      for (let r = 0; r < n; r++) {
        const t = id[r0 + r];
        chunkIds[r] = t;
        if (t < 0) continue;
        if (t >= vocab) this.fail(`embedding: id ${t} at row ${r0 + r} is outside table '${table.label}' (${vocab} rows of ${dim})`);
        chunks.add(Math.floor(t / rowsPer));
      }
      for (const c of [...chunks].sort((a, b) => a - b)) {
        const v0 = c * rowsPer,
          v1 = Math.min(vocab, v0 + rowsPer);
        const res = this.run('embedding', [dim, n], W.subarray(v0 * dim, v1 * dim), chunkIds, O.subarray(r0 * dim, r1 * dim), v0, v1, dim);
        writeResult(res, O, r0 * dim, false);
      }
    }
  }
  kernelEmbeddingBackward({ ids, dOut, dTable, rows, dim }: KernelArgs['embeddingBackward']): void {
    const id = this.I(ids, 'embeddingBackward ids'),
      G = this.F(dOut, 'embeddingBackward dOut'),
      DW = this.F(dTable, 'embeddingBackward dTable');
    const { vocab, chunks } = this.embeddingChunks('embeddingBackward', dim, rows, DW.length);
    for (const [r0, r1] of chunks) {
      // Host bookkeeping: the chunk's rows grouped by id (a counting-sort permutation), so the kernel can
      // gather-sum each distinct id's rows without atomics.
      const order: number[] = [];
      for (let r = r0; r < r1; r++) {
        const t = id[r];
        if (t < 0) continue;
        if (t >= vocab) this.fail(`embeddingBackward: id ${t} at row ${r} is outside table '${dTable.label}' (${vocab} rows of ${dim})`);
        order.push(r);
      }
      if (!order.length) continue;
      order.sort((x, y) => id[x] - id[y] || x - y);
      const perm = new Float32Array(order.length),
        uniq: number[] = [],
        start: number[] = [];
      order.forEach((r, p) => {
        perm[p] = r - r0;
        if (p === 0 || id[r] !== id[order[p - 1]]) {
          uniq.push(id[r]);
          start.push(p);
        }
      });
      start.push(order.length);
      const sums = flat(
        this.run('embeddingBackward', [dim, uniq.length], G.subarray(r0 * dim, r1 * dim), perm, Float32Array.from(start), dim),
        uniq.length * dim,
      );
      for (let u = 0; u < uniq.length; u++) {
        const o = uniq[u] * dim,
          so = u * dim;
        for (let c = 0; c < dim; c++) DW[o + c] += sums[so + c];
      }
    }
  }

  // ---- matmul ----

  kernelMatmul(args: KernelArgs['matmul']): void {
    const { a, b, c, M, N, K, transA, transB, accumulate, aOff, bOff, cOff, bias: biasT } = args;
    const A = this.F(a, 'matmul A'),
      B = this.F(b, 'matmul B'),
      C = this.F(c, 'matmul C');
    const bias = biasT ? this.F(biasT, 'matmul bias') : undefined;
    if (M <= 0 || N <= 0) return;
    // Element strides of op(A)[m, k] and op(B)[k, n] in their stored layouts.
    const sAm = transA ? 1 : K,
      sAk = transA ? M : 1,
      sBk = transB ? 1 : N,
      sBn = transB ? K : 1;
    // Tile (mt, nt, kt) so each operand slice and the output stay within this.span (see the header comment).
    let mt = M,
      nt = N,
      kt = Math.max(K, 1);
    const spanA = () => (mt - 1) * sAm + (kt - 1) * sAk + 1;
    const spanB = () => (kt - 1) * sBk + (nt - 1) * sBn + 1;
    const half = (v: number) => Math.ceil(v / 2);
    for (;;) {
      if (spanA() > this.span) {
        // shrink the dimension with the larger stride first: it dominates the span
        if (sAm >= sAk ? mt > 1 : kt === 1) mt = half(mt);
        else kt = half(kt);
      } else if (spanB() > this.span) {
        if (sBn >= sBk ? nt > 1 : kt === 1) nt = half(nt);
        else kt = half(kt);
      } else if (mt * nt > this.span) {
        if (mt >= nt) mt = half(mt);
        else nt = half(nt);
      } else break;
    }
    const none = new Float32Array(1);
    for (let m0 = 0; m0 < M; m0 += mt) {
      const mc = Math.min(mt, M - m0);
      for (let n0 = 0; n0 < N; n0 += nt) {
        const nc = Math.min(nt, N - n0);
        const biasSlice = bias ? bias.subarray(n0, n0 + nc) : none;
        if (K === 0) {
          // No products: C (+)= bias. Still a kernel call (with zero-length loops) over dummy operands.
          const r = this.run('matmul', [nc, mc], none, none, biasSlice, bias ? 1 : 0, 0, 0, 0, 0, 0);
          this.writeTile(r, C, cOff + m0 * N + n0, N, nc, mc, accumulate);
          continue;
        }
        for (let k0 = 0; k0 < K; k0 += kt) {
          const kc = Math.min(kt, K - k0);
          const aS = aOff + m0 * sAm + k0 * sAk,
            aLen = (mc - 1) * sAm + (kc - 1) * sAk + 1;
          const bS = bOff + k0 * sBk + n0 * sBn,
            bLen = (kc - 1) * sBk + (nc - 1) * sBn + 1;
          const first = k0 === 0,
            hasBias = bias && first ? 1 : 0;
          const as = A.subarray(aS, aS + aLen),
            bs = B.subarray(bS, bS + bLen),
            add = accumulate || !first;
          if (mc < 4) {
            const r = this.run('matmul', [nc, mc], as, bs, biasSlice, hasBias, kc, sAm, sAk, sBk, sBn);
            this.writeTile(r, C, cOff + m0 * N + n0, N, nc, mc, add);
          } else {
            const r = this.run('matmul4', [nc, Math.ceil(mc / 4)], as, bs, biasSlice, hasBias, kc, sAm, sAk, sBk, sBn, mc - 1);
            this.writeTile4(r, C, cOff + m0 * N + n0, N, nc, mc, add);
          }
        }
      }
    }
  }
  /** Writes (or adds) a [rows][cols] kernel result into C at off with row stride ld. */
  private writeTile(r: unknown, C: Float32Array, off: number, ld: number, cols: number, rows: number, add: boolean): void {
    if (cols === ld) {
      writeResult(r, C, off, add);
      return;
    }
    const t = flat(r, rows * cols);
    for (let y = 0; y < rows; y++) {
      const o = off + y * ld,
        s = y * cols;
      if (add) for (let x = 0; x < cols; x++) C[o + x] += t[s + x];
      else C.set(t.subarray(s, s + cols), o);
    }
  }
  /** Writes (or adds) a matmul4 result — [ceil(rows/4)][cols] cells of 4 rows each — into C at off. */
  private writeTile4(r: unknown, C: Float32Array, off: number, ld: number, cols: number, rows: number, add: boolean): void {
    const groups = r as ArrayLike<ArrayLike<ArrayLike<number>>>;
    const ng = Math.ceil(rows / 4);
    if (groups.length !== ng) this.fail(`matmul4 returned ${groups.length} row groups, expected ${ng}`);
    const c = contiguous(r, ng * cols * 4);
    if (c) {
      // [group][col][4] in one buffer: read it directly instead of through one view per cell
      for (let y = 0; y < ng; y++) {
        const nr = Math.min(4, rows - 4 * y);
        for (let i = 0; i < nr; i++) {
          const o = off + (4 * y + i) * ld,
            so = y * cols * 4 + i;
          if (add) for (let x = 0; x < cols; x++) C[o + x] += c[so + 4 * x];
          else for (let x = 0; x < cols; x++) C[o + x] = c[so + 4 * x];
        }
      }
      return;
    }
    for (let y = 0; y < groups.length; y++) {
      const g = groups[y],
        nr = Math.min(4, rows - 4 * y);
      for (let x = 0; x < cols; x++) {
        const v = g[x];
        for (let i = 0; i < nr; i++) {
          const o = off + (4 * y + i) * ld + x;
          C[o] = add ? C[o] + v[i] : v[i];
        }
      }
    }
  }
  kernelSumRows({ dY, dBias, rows, cols }: KernelArgs['sumRows']): void {
    const G = this.F(dY, 'sumRows dY'),
      DB = this.F(dBias, 'sumRows dBias');
    if (cols > this.span) this.fail(`sumRows: ${cols} columns exceed ${this.span}`);
    const rowsPer = Math.max(1, Math.floor(this.span / cols));
    for (let r0 = 0; r0 < rows; r0 += rowsPer) {
      const n = Math.min(rowsPer, rows - r0);
      writeResult(this.run('sumRows', [cols], G.subarray(r0 * cols, (r0 + n) * cols), n, cols), DB, 0, true);
    }
  }

  // ---- RMSNorm ----

  /** Row chunks [r0, r1) with (r1 - r0) * dim <= this.span. */
  private rowChunks(rows: number, dim: number, what: string): [number, number][] {
    if (dim > this.span) this.fail(`${what}: row length ${dim} exceeds ${this.span}`);
    const per = Math.max(1, Math.floor(this.span / dim)),
      out: [number, number][] = [];
    for (let r0 = 0; r0 < rows; r0 += per) out.push([r0, Math.min(rows, r0 + per)]);
    return out;
  }

  kernelRmsNorm({ x, w, y, rstd, rows, dim, eps }: KernelArgs['rmsNorm']): void {
    const X = this.F(x, 'rmsNorm x'),
      W = this.F(w, 'rmsNorm w'),
      Y = this.F(y, 'rmsNorm y'),
      R = this.F(rstd, 'rmsNorm rstd');
    const Wd = W.subarray(0, dim);
    for (const [r0, r1] of this.rowChunks(rows, dim, 'rmsNorm')) {
      const xs = X.subarray(r0 * dim, r1 * dim),
        n = r1 - r0;
      const rs = flat(this.run('rmsRstd', [n], xs, dim, eps), n);
      R.set(rs, r0);
      writeResult(this.run('rmsY', [dim, n], xs, Wd, rs, dim), Y, r0 * dim, false);
    }
  }
  kernelRmsNormBackward({ dy, x, w, rstd, dx, dw, rows, dim }: KernelArgs['rmsNormBackward']): void {
    const G = this.F(dy, 'rmsNormBackward dy'),
      X = this.F(x, 'rmsNormBackward x'),
      W = this.F(w, 'rmsNormBackward w'),
      R = this.F(rstd, 'rmsNormBackward rstd');
    const DX = this.F(dx, 'rmsNormBackward dx'),
      DW = this.F(dw, 'rmsNormBackward dw');
    const Wd = W.subarray(0, dim);
    for (const [r0, r1] of this.rowChunks(rows, dim, 'rmsNormBackward')) {
      const n = r1 - r0,
        gs = G.subarray(r0 * dim, r1 * dim),
        xs = X.subarray(r0 * dim, r1 * dim),
        rs = R.subarray(r0, r1);
      const kk = flat(this.run('rmsBwdK', [n], gs, xs, Wd, rs, dim), n);
      writeResult(this.run('rmsBwdDx', [dim, n], gs, xs, Wd, rs, kk, dim), DX, r0 * dim, true);
      writeResult(this.run('rmsBwdDw', [dim], gs, xs, rs, n, dim), DW, 0, true);
    }
  }

  // ---- rotary embeddings ----

  kernelRope({ x, pos, rows, heads, D, inverse, invFreq }: KernelArgs['rope']): void {
    const X = this.F(x, 'rope x'),
      P = this.I(pos, 'rope pos'),
      half = D / 2;
    for (const [r0, r1] of this.rowChunks(rows, heads * D, 'rope')) {
      // cos/sin table on the host, bit-for-bit the reference's formula (see the header comment).
      const n = r1 - r0,
        cosT = new Float32Array(n * half),
        sinT = new Float32Array(n * half);
      ropeCosSin(invFreq, P.subarray(r0, r1), n, inverse, cosT, sinT);
      const res = this.run('rope', [D, heads, n], X.subarray(r0 * heads * D, r1 * heads * D), cosT, sinT, half, heads, D);
      writeResult(res, X, r0 * heads * D, false);
    }
  }

  // ---- attention ----

  /**
   * Query-row chunks so that [rows, keys] score blocks stay within this.span: for sequence b (n query rows from row
   * r0, at positions start + i: qStart and b * Tq, or qStarts[b] and qRows[b] when given), query rows [i0, i0 + nI)
   * seeing nk keys (the first at lim0 = start + i0), q/out rows from element qo, the sequence's K/V from ko, its lse
   * block [Hq, n] from element lo. The starts and rows are host arrays here, so they only shape the chunks.
   */
  private attChunks(s: AttentionShape & { qStarts?: Tensor; qRows?: Tensor }, what: string) {
    const { Hq, Hkv, D, kvCap } = s;
    const seqs = querySequences(s, s.qStarts && this.I(s.qStarts, `${what} qStarts`), s.qRows && this.I(s.qRows, `${what} qRows`), (msg) =>
      this.fail(`${what}: ${msg}`),
    );
    const nkMax = Math.max(0, ...seqs.map((q) => q.start + q.n));
    if (nkMax * Hkv * D > this.span || Hq * nkMax > this.span || Hq * D > this.span)
      this.fail(`${what}: ${nkMax} keys x ${Hkv} heads x ${D} exceeds one ${this.span}-element kernel slice`);
    const rep = Hq / Hkv,
      khOf = new Float32Array(Hq);
    for (let h = 0; h < Hq; h++) khOf[h] = Math.floor(h / rep);
    const per = Math.max(1, Math.floor(this.span / (Hq * Math.max(nkMax, D))));
    const chunks: { i0: number; nI: number; n: number; nk: number; lim0: number; qo: number; ko: number; lo: number }[] = [];
    for (const [b, { start, r0, n }] of seqs.entries())
      for (let i0 = 0; i0 < n; i0 += per) {
        const i1 = Math.min(n, i0 + per);
        chunks.push({ i0, nI: i1 - i0, n, nk: start + i1, lim0: start + i0, qo: (r0 + i0) * Hq * D, ko: b * kvCap * Hkv * D, lo: Hq * r0 });
      }
    return { khOf, chunks };
  }

  kernelAttention(s: KernelArgs['attention']): void {
    const { q, kCache, vCache, out, lse, Hq, Hkv, D } = s;
    const Q = this.F(q, 'attention q'),
      Kc = this.F(kCache, 'attention kCache'),
      Vc = this.F(vCache, 'attention vCache');
    const O = this.F(out, 'attention out'),
      L = this.F(lse, 'attention lse');
    const { khOf, chunks } = this.attChunks(s, 'attention');
    const scale = 1 / Math.sqrt(D);
    for (const { i0, nI, n, nk, lim0, qo, ko, lo } of chunks) {
      const qs = Q.subarray(qo, qo + nI * Hq * D),
        ks = Kc.subarray(ko, ko + nk * Hkv * D),
        vs = Vc.subarray(ko, ko + nk * Hkv * D);
      const S = flat(this.run('attScores', [nk, Hq, nI], qs, ks, khOf, D, Hq, Hkv, lim0, scale), nI * Hq * nk);
      const l = flat(this.run('attLse', [nI, Hq], S, nk, Hq, lim0), Hq * nI);
      const P = flat(this.run('attProbs', [nk, Hq, nI], S, l, nI, 0, nk, Hq, lim0), nI * Hq * nk);
      writeResult(this.run('attRowsTimesKV', [D, Hq, nI], P, vs, khOf, nk, Hq, Hkv, D, lim0), O, qo, false);
      for (let h = 0; h < Hq; h++) L.set(l.subarray(h * nI, (h + 1) * nI), lo + h * n + i0);
    }
  }
  kernelAttentionBackward(s: KernelArgs['attentionBackward']): void {
    const { dOut, q, kCache, vCache, out, lse, dq, dkCache, dvCache, Hq, Hkv, D } = s;
    const G = this.F(dOut, 'attentionBackward dOut'),
      Q = this.F(q, 'attentionBackward q'),
      Kc = this.F(kCache, 'attentionBackward kCache');
    const Vc = this.F(vCache, 'attentionBackward vCache'),
      O = this.F(out, 'attentionBackward out'),
      L = this.F(lse, 'attentionBackward lse');
    const DQ = this.F(dq, 'attentionBackward dq'),
      DK = this.F(dkCache, 'attentionBackward dkCache'),
      DV = this.F(dvCache, 'attentionBackward dvCache');
    const { khOf, chunks } = this.attChunks(s, 'attentionBackward');
    const scale = 1 / Math.sqrt(D),
      rep = Hq / Hkv;
    for (const { i0, nI, n, nk, lim0, qo, ko, lo } of chunks) {
      const Lb = L.subarray(lo, lo + Hq * n);
      const nqc = nI * Hq * D,
        nkc = nk * Hkv * D;
      const qs = Q.subarray(qo, qo + nqc),
        gs = G.subarray(qo, qo + nqc),
        os = O.subarray(qo, qo + nqc);
      const ks = Kc.subarray(ko, ko + nkc),
        vs = Vc.subarray(ko, ko + nkc);
      const S = flat(this.run('attScores', [nk, Hq, nI], qs, ks, khOf, D, Hq, Hkv, lim0, scale), nI * Hq * nk);
      const P = flat(this.run('attProbs', [nk, Hq, nI], S, Lb, n, i0, nk, Hq, lim0), nI * Hq * nk);
      const delta = flat(this.run('attDelta', [Hq, nI], gs, os, Hq, D), nI * Hq);
      const dS = flat(this.run('attDScores', [nk, Hq, nI], P, gs, vs, khOf, delta, nk, Hq, Hkv, D, lim0, scale), nI * Hq * nk);
      writeResult(this.run('attRowsTimesKV', [D, Hq, nI], dS, ks, khOf, nk, Hq, Hkv, D, lim0), DQ, qo, true);
      writeResult(this.run('attColsTimesQ', [D, Hkv, nk], dS, qs, nI, nk, Hq, rep, D, lim0), DK, ko, true);
      writeResult(this.run('attColsTimesQ', [D, Hkv, nk], P, gs, nI, nk, Hq, rep, D, lim0), DV, ko, true);
    }
  }

  // ---- SwiGLU ----

  kernelSwiglu({ gate, up, out, n }: KernelArgs['swiglu']): void {
    this.binary('swiglu', gate, up, out, n, ['swiglu gate', 'swiglu up', 'swiglu out']);
  }
  kernelSwigluBackward({ dOut, gate, up, dGate, dUp, n }: KernelArgs['swigluBackward']): void {
    const Dd = this.F(dOut, 'swigluBackward dOut'),
      Gt = this.F(gate, 'swigluBackward gate'),
      U = this.F(up, 'swigluBackward up');
    const DG = this.F(dGate, 'swigluBackward dGate'),
      DU = this.F(dUp, 'swigluBackward dUp');
    this.elementwise('swigluBwdUp', n, DU, 0, true, (lo, hi) => [Dd.subarray(lo, hi), Gt.subarray(lo, hi)]);
    this.elementwise('swigluBwdGate', n, DG, 0, true, (lo, hi) => [Dd.subarray(lo, hi), Gt.subarray(lo, hi), U.subarray(lo, hi)]);
  }

  // ---- softmax cross-entropy ----

  kernelCrossEntropy({ logits, labels, losses, rows, V, weights, logitsOff, labelOff, lossOff }: KernelArgs['crossEntropy']): void {
    const X = this.F(logits, 'crossEntropy logits'),
      Y = this.I(labels, 'crossEntropy labels'),
      Lo = this.F(losses, 'crossEntropy losses');
    const W = weights ? this.F(weights, 'crossEntropy weights') : undefined;
    for (let r = 0; r < rows; r++)
      if (Y[labelOff + r] >= V) this.fail(`crossEntropy: label ${Y[labelOff + r]} at row ${r} is outside vocabulary ${V}`);
    for (const [r0, r1] of this.rowChunks(rows, V, 'crossEntropy')) {
      const n = r1 - r0,
        xo = logitsOff + r0 * V;
      const xs = X.subarray(xo, xo + n * V),
        ys = f32(Y.subarray(labelOff + r0, labelOff + r1));
      const lse = flat(this.run('ceLse', [n], xs, ys, V), n);
      writeResult(this.run('ceLoss', [n], xs, ys, lse, V), Lo, lossOff + r0, false);
      if (W) writeResult(this.run('ceGrad', [V, n], xs, ys, lse, W.subarray(labelOff + r0, labelOff + r1), V), X, xo, false);
    }
  }

  // ---- optimizer ----

  kernelAdamw({ param, grad, m, v, n, bc1, bc2, ...h }: KernelArgs['adamw']): void {
    const P = this.F(param, 'adamw param'),
      G = this.F(grad, 'adamw grad'),
      M = this.F(m, 'adamw m'),
      Vv = this.F(v, 'adamw v');
    this.elementwise('adamM', n, M, 0, false, (lo, hi) => [M.subarray(lo, hi), G.subarray(lo, hi), h.beta1, 1 - h.beta1, h.gradScale]);
    this.elementwise('adamV', n, Vv, 0, false, (lo, hi) => [Vv.subarray(lo, hi), G.subarray(lo, hi), h.beta2, 1 - h.beta2, h.gradScale]);
    this.elementwise('adamP', n, P, 0, false, (lo, hi) => [
      P.subarray(lo, hi),
      M.subarray(lo, hi),
      Vv.subarray(lo, hi),
      h.lr,
      h.eps,
      h.weightDecay,
      bc1,
      bc2,
    ]);
  }
  kernelSumSquares({ x, n, out, outIndex }: KernelArgs['sumSquares']): void {
    const X = this.F(x, 'sumSquares x'),
      O = this.F(out, 'sumSquares out');
    let total = 0;
    for (let lo = 0; lo < n; lo += this.span) {
      const len = Math.min(this.span, n - lo),
        parts = Math.ceil(len / SEG);
      const r = flat(this.run('sumSquares', [parts], X.subarray(lo, lo + len), len, SEG), parts);
      for (let i = 0; i < parts; i++) total += r[i];
    }
    O[outIndex] += total;
  }
}

/**
 * The mode name of a concrete gpu.js kernel instance. The GL kernels all report the static mode 'gpu', so the
 * class decides (subclasses first: HeadlessGLKernel and WebGL2Kernel both extend WebGLKernel); class names
 * cannot be used because gpu.js's browser build is minified.
 */
function kernelMode(lib: Record<string, unknown>, kernel: unknown): string {
  const classes: [string, string][] = [
    ['HeadlessGLKernel', 'headlessgl'],
    ['WebGL2Kernel', 'webgl2'],
    ['WebGLKernel', 'webgl'],
    ['WebGPUKernel', 'webgpu'],
    ['WebAssemblyKernel', 'webasm'],
    ['CPUKernel', 'cpu'],
  ];
  for (const [cls, mode] of classes) {
    const C = lib[cls];
    if (typeof C === 'function' && kernel instanceof (C as new () => unknown)) return mode;
  }
  return (kernel as { constructor?: { mode?: string } } | undefined)?.constructor?.mode ?? 'unknown';
}

/**
 * Creates the gpu.js backend. gpu.js is loaded here (dynamic import) so bundles that never fall back to it
 * never load it. Throws if gpu.js is missing or if an explicitly requested mode is not what gpu.js runs.
 */
export async function createGpujsBackend(opts: GpujsBackendOptions = {}): Promise<Backend> {
  const requested = opts.mode ?? 'gpu';
  let mod: Record<string, unknown>;
  try {
    mod = (await import('gpu.js')) as Record<string, unknown>;
  } catch (e) {
    throw new BackendError(`gpujs backend: cannot load the 'gpu.js' package (${(e as Error).message})`, 'gpujs');
  }
  // CommonJS module: named exports under Node's ESM interop, or on `default` under bundlers/Deno/Bun.
  const lib = (mod.GPU ? mod : ((mod.default as Record<string, unknown> | undefined) ?? {})) as Record<string, unknown>;
  const GPU = lib.GPU as GpuCtor | undefined;
  if (typeof GPU !== 'function') throw new BackendError(`gpujs backend: the 'gpu.js' package has no GPU export`, 'gpujs');
  let gpu: GpuInstance;
  try {
    gpu = new GPU({ mode: requested });
  } catch (e) {
    throw new BackendError(`gpujs backend: new GPU({ mode: '${requested}' }) failed: ${(e as Error).message}`, 'gpujs');
  }
  // Probe: run one tiny kernel to learn which kernel backend gpu.js really uses (it may degrade silently).
  let actual = 'unknown';
  try {
    const probe = gpu.createKernel(`function (a) { return a[this.thread.x] * 2; }`, {
      output: [2],
      precision: 'single',
      tactic: 'precision',
    });
    const r = probe(new Float32Array([1.5, -3])) as Float32Array;
    if (!(r instanceof Float32Array) || r[0] !== 3 || r[1] !== -6) throw new Error(`probe kernel returned ${String(r)}`);
    actual = kernelMode(lib, probe.kernel);
  } catch (e) {
    try {
      gpu.destroy();
    } catch {
      // ignore: the probe failure is the error worth reporting
    }
    throw new BackendError(`gpujs backend: mode '${requested}' cannot run a kernel here: ${(e as Error).message}`, 'gpujs');
  }
  if (requested !== 'gpu' && actual !== requested) {
    try {
      gpu.destroy();
    } catch {
      // ignore
    }
    throw new BackendError(`gpujs backend: mode '${requested}' requested but gpu.js runs '${actual}' here`, 'gpujs');
  }
  return new GpujsBackend(gpu, actual, requested, opts.maxSpan);
}
