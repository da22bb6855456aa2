// The WebAssembly SIMD backend: every tensor is a byte range inside ONE WebAssembly linear memory, and the ops
// call the v128 kernels compiled from assembly/simd.ts (blocked matmul, attention, the fused O(n) ops).
//
// Why: on machines without a GPU (and WebGPU on a software rasteriser) this is several times faster than plain JS;
// see bench/cpu.ts. Semantics are exactly src/backend/cpu.ts (the conformance suite compares op by op); only the
// summation order differs.
//
// Memory: a first-fit allocator with coalescing free blocks over the module's memory (64-byte aligned blocks,
// so v128 loads never split cache lines needlessly); `memory.grow` when the top is reached, up to
// `maxMemoryBytes` (WASM32: 4 GiB). Typed-array views are re-created whenever the buffer changes (growth
// detaches the old ArrayBuffer).
//
// Threads (src/backend/wasm-threads.ts): where shared memory and workers exist, the module is the simd_mt build
// (imported shared memory) and the heavy ops run on `threads` threads; each kernel splits only its outputs, so
// results are bit-identical for any thread count. FMA: the simd_mt_fma build (relaxed SIMD) where the engine
// validates it. Without shared memory (a page that is not cross-origin isolated) it is the one-thread simd build.
import simdWasm from '../generated/simd.wasm.js';
import simdMtWasm from '../generated/simd_mt.wasm.js';
import simdMtFmaWasm from '../generated/simd_mt_fma.wasm.js';
import { base64ToBytes, instantiateEmbedded } from '../io/wasm-embed.js';
import { WasmThreadPool } from './wasm-threads.js';
import { OpBackend, ropeCosSin, type KernelArgs, type Kernels } from './ops.js';
import { BackendError, type AttentionShape, type Backend, type DType, type Tensor } from './types.js';

interface SimdExports extends WebAssembly.Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  MATMUL_SCRATCH: WebAssembly.Global;
  attentionScratchBytes(kvCap: number): number;
  sumSquares(x: number, n: number): number;
}

/**
 * The kernels that take a trailing (tid, nth) and split their outputs between threads (assembly/simd.ts), with the
 * arguments before those two.
 */
interface ThreadedKernels {
  matmul: [
    a: number,
    b: number,
    c: number,
    bias: number,
    M: number,
    N: number,
    K: number,
    transA: number,
    transB: number,
    accumulate: number,
    scratch: number,
  ];
  attention: [
    q: number,
    k: number,
    v: number,
    out: number,
    lse: number,
    B: number,
    Tq: number,
    Hq: number,
    Hkv: number,
    D: number,
    qStart: number,
    kvCap: number,
    scratch: number,
  ];
  attentionBackward: [
    g: number,
    q: number,
    k: number,
    v: number,
    out: number,
    lse: number,
    dq: number,
    dk: number,
    dv: number,
    B: number,
    Tq: number,
    Hq: number,
    Hkv: number,
    D: number,
    qStart: number,
    kvCap: number,
    scratch: number,
  ];
  add: [a: number, b: number, out: number, n: number];
  axpy: [alpha: number, x: number, y: number, n: number];
  scale: [x: number, s: number, n: number];
  copy2d: [src: number, dst: number, rows: number, cols: number, srcStride: number, dstStride: number, accumulate: number];
  embedding: [ids: number, table: number, out: number, rows: number, dim: number];
  embeddingBackward: [ids: number, dOut: number, dTable: number, rows: number, dim: number];
  sumRows: [dY: number, dBias: number, rows: number, cols: number];
  rmsNorm: [x: number, w: number, y: number, rstd: number, rows: number, dim: number, eps: number];
  rmsNormBackward: [dy: number, x: number, w: number, rstd: number, dx: number, dw: number, rows: number, dim: number];
  rope: [x: number, tab: number, rows: number, heads: number, D: number];
  swiglu: [gate: number, up: number, out: number, n: number];
  swigluBackward: [dOut: number, gate: number, up: number, dGate: number, dUp: number, n: number];
  crossEntropy: [logits: number, labels: number, losses: number, weights: number, rows: number, V: number];
  adamw: [
    p: number,
    g: number,
    m: number,
    v: number,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    omb1: number,
    omb2: number,
    eps: number,
    wd: number,
    bc1: number,
    bc2: number,
    gradScale: number,
  ];
}
type KernelName = keyof ThreadedKernels;
const THREADED_KERNELS: KernelName[] = [
  'matmul',
  'attention',
  'attentionBackward',
  'add',
  'axpy',
  'scale',
  'copy2d',
  'embedding',
  'embeddingBackward',
  'sumRows',
  'rmsNorm',
  'rmsNormBackward',
  'rope',
  'swiglu',
  'swigluBackward',
  'crossEntropy',
  'adamw',
];
/** Default WasmBackendOptions.parallelThreshold: waking the pool costs microseconds, about what 64K elements of an O(n) op take. */
const MIN_PARALLEL_WORK = 1 << 16;

const PAGE = 65536;
const ALIGN = 64;
const WASM32_MAX = 4 * 1024 * 1024 * 1024;

class WasmTensor implements Tensor {
  freed = false;
  constructor(
    readonly ptr: number,
    readonly bytes: number,
    readonly size: number,
    readonly dtype: DType,
    readonly label: string,
    readonly owner: WasmBackend,
  ) {}
}

export interface WasmBackendOptions {
  /** Upper bound for the linear memory (default and maximum: 4 GiB, the WASM32 limit). */
  maxMemoryBytes?: number;
  /**
   * Threads for the heavy kernels (default: the cores available, `os.availableParallelism()` /
   * `navigator.hardwareConcurrency`). Results are bit-identical for any count. Needs shared memory; where there
   * is none (a browser page without cross-origin isolation) the backend runs one thread and says so in `info`.
   */
  threads?: number;
  /** Fused multiply-add (relaxed SIMD) where the engine has it (default true); false forces the plain build. */
  fma?: boolean;
  /**
   * Ops with less work than this (multiply-adds or elements) run on the calling thread alone (default 65536: waking
   * the pool costs about that much). 0 sends every op through the pool (the tests use it on small shapes).
   */
  parallelThreshold?: number;
}

/** One free range of the heap. */
interface Block {
  ptr: number;
  bytes: number;
}

export class WasmBackend extends OpBackend implements Backend, Kernels {
  readonly name = 'wasm' as const;
  readonly info: string;
  readonly maxBindingBytes: number;
  private f32!: Float32Array;
  private i32!: Int32Array;
  private buf!: ArrayBuffer;
  /** Free blocks below `top`, sorted by address, never adjacent to each other (coalesced on free). */
  private free_: Block[] = [];
  private top: number;
  /** Highest `top` ever reached: bytes below it may hold stale data. */
  private highWater = 0;
  private readonly maxBytes: number;
  private matmulScratch: number;
  private scratchPtr = 0;
  private scratchBytes = 0;
  private destroyed = false;

  /** Threads the heavy kernels run on (1: the calling thread only). */
  readonly threads: number;
  /** Whether the kernels use fused multiply-add (the relaxed-SIMD build). */
  readonly fma: boolean;
  private readonly parallelThreshold: number;

  constructor(
    private readonly k: SimdExports,
    opts: WasmBackendOptions = {},
    private readonly pool?: WasmThreadPool,
    /** Why the backend has the threads and FMA it has (appended to `info`). */
    note = '',
  ) {
    super();
    this.maxBytes = Math.min(opts.maxMemoryBytes ?? WASM32_MAX, WASM32_MAX);
    this.maxBindingBytes = this.maxBytes;
    this.threads = pool?.threads ?? 1;
    this.fma = opts.fma ?? false;
    this.parallelThreshold = opts.parallelThreshold ?? MIN_PARALLEL_WORK;
    this.top = roundUp(k.heapBase(), ALIGN);
    this.refresh();
    const scratchFloats = k.MATMUL_SCRATCH.value as number;
    this.matmulScratch = this.rawAlloc(scratchFloats * 4 * this.threads);
    this.info = `WebAssembly SIMD (v128 kernels, 4x8 register-blocked packed matmul, ${this.threads} thread${this.threads > 1 ? 's' : ''}, ${this.fma ? 'FMA' : 'no FMA'}${note ? `: ${note}` : ''}; ${(this.buf.byteLength / 2 ** 20).toFixed(1)} MiB initial memory, max ${(this.maxBytes / 2 ** 30).toFixed(2)} GiB)`;
  }

  /** Runs a kernel on every thread of the pool when there is enough work for it, else on this thread alone. */
  private run<K extends KernelName>(name: K, work: number, ...args: ThreadedKernels[K]): void {
    if (this.pool && work >= this.parallelThreshold) this.pool.run(name, args);
    else (this.k[name] as (...a: number[]) => void)(...args, 0, 1);
  }

  /** Bytes of linear memory in use by the module now (grows, never shrinks). */
  get memoryBytes(): number {
    return this.k.memory.buffer.byteLength;
  }

  // ---- memory ----

  private refresh(): void {
    const b = this.k.memory.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this.f32 = new Float32Array(b);
      this.i32 = new Int32Array(b);
    }
  }
  private views(): { f32: Float32Array; i32: Int32Array } {
    if (this.k.memory.buffer !== this.buf) this.refresh();
    return { f32: this.f32, i32: this.i32 };
  }

  private fail(msg: string): never {
    throw new BackendError(`wasm backend: ${msg}`, 'wasm');
  }

  private rawAlloc(bytes: number): number {
    bytes = roundUp(Math.max(bytes, ALIGN), ALIGN);
    for (let i = 0; i < this.free_.length; i++) {
      const b = this.free_[i];
      if (b.bytes < bytes) continue;
      const ptr = b.ptr;
      if (b.bytes === bytes) this.free_.splice(i, 1);
      else {
        b.ptr += bytes;
        b.bytes -= bytes;
      }
      this.views().f32.fill(0, ptr >>> 2, (ptr + bytes) >>> 2); // reused memory must read as zeros
      return ptr;
    }
    const ptr = this.top,
      end = ptr + bytes;
    if (end > this.maxBytes)
      this.fail(`out of memory: need ${fmtBytes(end)} of linear memory, limit is ${fmtBytes(this.maxBytes)} (maxMemoryBytes)`);
    const have = this.k.memory.buffer.byteLength;
    if (end > have) {
      // Grow geometrically (x1.5) so a sequence of allocations does not grow page by page.
      const want = Math.min(Math.max(end, Math.floor(have * 1.5)), this.maxBytes);
      const pages = Math.ceil((want - have) / PAGE);
      try {
        this.k.memory.grow(pages);
      } catch {
        try {
          this.k.memory.grow(Math.ceil((end - have) / PAGE));
        } catch (e) {
          this.fail(`memory.grow to ${fmtBytes(end)} failed (${(e as Error).message})`);
        }
      }
      this.refresh();
    }
    // Below the high-water mark the memory held freed tensors (the top shrinks on free): zero it. Above it,
    // pages are fresh from memory.grow and already zero.
    if (ptr < this.highWater) this.views().f32.fill(0, ptr >>> 2, Math.min(end, this.highWater) >>> 2);
    this.top = end;
    if (end > this.highWater) this.highWater = end;
    return ptr;
  }

  private rawFree(ptr: number, bytes: number): void {
    bytes = roundUp(Math.max(bytes, ALIGN), ALIGN);
    const fl = this.free_;
    // Binary search for the insertion point, then merge with neighbours.
    let lo = 0,
      hi = fl.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (fl[mid].ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    let blk: Block = { ptr, bytes };
    const prev = fl[lo - 1],
      next = fl[lo];
    if (prev && prev.ptr + prev.bytes === ptr) {
      prev.bytes += bytes;
      blk = prev;
      lo--;
    } else fl.splice(lo, 0, blk);
    if (next && blk.ptr + blk.bytes === next.ptr) {
      blk.bytes += next.bytes;
      fl.splice(lo + 1, 1);
    }
    // A free block that ends at the top shrinks the heap instead.
    if (blk.ptr + blk.bytes === this.top) {
      this.top = blk.ptr;
      fl.splice(lo, 1);
    }
  }

  /** A reusable scratch range of at least `bytes` (attention score rows, rope tables). */
  private scratch(bytes: number): number {
    if (bytes > this.scratchBytes) {
      if (this.scratchBytes) this.rawFree(this.scratchPtr, this.scratchBytes);
      this.scratchBytes = roundUp(Math.max(bytes, 4096), ALIGN);
      this.scratchPtr = this.rawAlloc(this.scratchBytes);
    }
    return this.scratchPtr;
  }

  alloc(size: number, dtype: DType = 'f32', label = ''): Tensor {
    if (this.destroyed) this.fail('alloc after destroy');
    if (!Number.isInteger(size) || size < 0) this.fail(`alloc '${label}': bad size ${size}`);
    const bytes = size * 4;
    return new WasmTensor(this.rawAlloc(bytes), bytes, size, dtype, label, this);
  }
  free(t: Tensor): void {
    const w = this.T(t, 'free');
    w.freed = true;
    this.rawFree(w.ptr, w.bytes);
  }

  /** The tensor's byte address after checking it is ours, alive, and holds [off, off + n) elements. */
  private P(t: Tensor, what: string, off = 0, n = 0): number {
    const w = this.T(t, what);
    if (off < 0 || off + n > w.size) this.fail(`${what}: tensor '${w.label}' (${w.size} elements) accessed at [${off}, ${off + n})`);
    return w.ptr + off * 4;
  }
  private T(t: Tensor, what: string): WasmTensor {
    if (!(t instanceof WasmTensor) || t.owner !== this) this.fail(`${what}: tensor '${t?.label}' does not belong to this backend`);
    if (t.freed) this.fail(`${what}: tensor '${t.label}' was freed`);
    return t;
  }

  protected kernelUpload(t: Tensor, data: Float32Array | Int32Array, offset: number): void {
    const w = this.T(t, 'upload');
    const v = this.views();
    // Like CpuBackend (TypedArray.set converts values): f32 data into an i32 tensor is converted, not bit-cast.
    // bf16 weights are kept as f32 holding bf16-rounded values (the kernels read f32; OpBackend.upload rounded them)
    (w.dtype === 'i32' ? v.i32 : v.f32).set(data, (w.ptr >>> 2) + offset);
  }
  async read(t: Tensor, offset = 0, length?: number): Promise<Float32Array | Int32Array> {
    const w = this.T(t, 'read');
    const n = length === undefined ? w.size - offset : length;
    if (offset < 0 || n < 0 || offset + n > w.size) this.fail(`read [${offset}, ${offset + n}) outside tensor '${t.label}' (${w.size})`);
    const v = this.views(),
      s = (w.ptr >>> 2) + offset;
    return w.dtype === 'i32' ? v.i32.slice(s, s + n) : v.f32.slice(s, s + n);
  }
  zero(t: Tensor, offset = 0, length?: number): void {
    const w = this.T(t, 'zero');
    const n = length === undefined ? w.size - offset : length;
    this.P(t, 'zero', offset, n);
    const s = (w.ptr >>> 2) + offset;
    this.views().f32.fill(0, s, s + n);
  }
  kernelCopy2d({ src, dst, rows, cols, srcOff, srcStride, dstOff, dstStride, accumulate }: KernelArgs['copy2d']): void {
    if (rows <= 0 || cols <= 0) return;
    const s = this.P(src, 'copy2d src', srcOff, (rows - 1) * srcStride + cols);
    const d = this.P(dst, 'copy2d dst', dstOff, (rows - 1) * dstStride + cols);
    this.run('copy2d', rows * cols, s, d, rows, cols, srcStride, dstStride, accumulate ? 1 : 0);
  }
  async sync(): Promise<void> {}
  destroy(): void {
    // The memory cannot be returned to the engine piecemeal; dropping every reference lets the GC take it.
    this.destroyed = true;
    this.free_ = [];
    this.pool?.destroy();
  }

  // ---- elementwise ----
  kernelAdd({ a, b, out, n }: KernelArgs['add']): void {
    this.run('add', n, this.P(a, 'add a', 0, n), this.P(b, 'add b', 0, n), this.P(out, 'add out', 0, n), n);
  }
  kernelAxpy({ alpha, x, y, n, xOff, yOff }: KernelArgs['axpy']): void {
    this.run('axpy', n, alpha, this.P(x, 'axpy x', xOff, n), this.P(y, 'axpy y', yOff, n), n);
  }
  kernelScale({ x, s, n }: KernelArgs['scale']): void {
    this.run('scale', n, this.P(x, 'scale x', 0, n), s, n);
  }

  // ---- embedding ----
  kernelEmbedding({ ids, table, out, rows, dim }: KernelArgs['embedding']): void {
    this.checkIds(ids, rows, table, dim, 'embedding');
    this.run(
      'embedding',
      rows * dim,
      this.P(ids, 'embedding ids', 0, rows),
      this.P(table, 'embedding table'),
      this.P(out, 'embedding out', 0, rows * dim),
      rows,
      dim,
    );
  }
  kernelEmbeddingBackward({ ids, dOut, dTable, rows, dim }: KernelArgs['embeddingBackward']): void {
    this.checkIds(ids, rows, dTable, dim, 'embeddingBackward');
    this.run(
      'embeddingBackward',
      rows * dim,
      this.P(ids, 'embeddingBackward ids', 0, rows),
      this.P(dOut, 'embeddingBackward dOut', 0, rows * dim),
      this.P(dTable, 'embeddingBackward dTable'),
      rows,
      dim,
    );
  }
  /** Out-of-range ids would read/write other tensors' memory, so they are an error here (rows are few). */
  private checkIds(ids: Tensor, rows: number, table: Tensor, dim: number, what: string): void {
    const p = this.P(ids, `${what} ids`, 0, rows) >>> 2,
      I = this.views().i32;
    const nRows = Math.floor(this.T(table, what).size / dim);
    for (let r = 0; r < rows; r++)
      if (I[p + r] >= nRows) this.fail(`${what}: id ${I[p + r]} at row ${r} of '${ids.label}' >= table rows ${nRows} ('${table.label}')`);
  }

  // ---- matmul ----
  kernelMatmul(args: KernelArgs['matmul']): void {
    const { a, b, c, M, N, K, transA, transB, accumulate, aOff, bOff, cOff, bias } = args;
    if (M <= 0 || N <= 0) return;
    const pa = this.P(a, 'matmul A', aOff, M * K),
      pb = this.P(b, 'matmul B', bOff, N * K),
      pc = this.P(c, 'matmul C', cOff, M * N);
    const pbias = bias ? this.P(bias, 'matmul bias', 0, N) : 0;
    this.run('matmul', M * N * K, pa, pb, pc, pbias, M, N, K, transA ? 1 : 0, transB ? 1 : 0, accumulate ? 1 : 0, this.matmulScratch);
  }
  kernelSumRows({ dY, dBias, rows, cols }: KernelArgs['sumRows']): void {
    this.run('sumRows', rows * cols, this.P(dY, 'sumRows dY', 0, rows * cols), this.P(dBias, 'sumRows dBias', 0, cols), rows, cols);
  }

  // ---- RMSNorm ----
  kernelRmsNorm({ x, w, y, rstd, rows, dim, eps }: KernelArgs['rmsNorm']): void {
    const n = rows * dim;
    this.run(
      'rmsNorm',
      n,
      this.P(x, 'rmsNorm x', 0, n),
      this.P(w, 'rmsNorm w', 0, dim),
      this.P(y, 'rmsNorm y', 0, n),
      this.P(rstd, 'rmsNorm rstd', 0, rows),
      rows,
      dim,
      eps,
    );
  }
  kernelRmsNormBackward({ dy, x, w, rstd, dx, dw, rows, dim }: KernelArgs['rmsNormBackward']): void {
    const n = rows * dim;
    this.run(
      'rmsNormBackward',
      n,
      this.P(dy, 'rmsNormBackward dy', 0, n),
      this.P(x, 'rmsNormBackward x', 0, n),
      this.P(w, 'rmsNormBackward w', 0, dim),
      this.P(rstd, 'rmsNormBackward rstd', 0, rows),
      this.P(dx, 'rmsNormBackward dx', 0, n),
      this.P(dw, 'rmsNormBackward dw', 0, dim),
      rows,
      dim,
    );
  }

  // ---- rope: the cos/sin table is computed on the host exactly as cpu.ts does (ops.ts ropeCosSin), then the
  // kernel applies the rotation to every head.
  kernelRope({ x, pos, rows, heads, D, inverse, invFreq }: KernelArgs['rope']): void {
    const half = D / 2;
    const px = this.P(x, 'rope x', 0, rows * heads * D);
    const pp = this.P(pos, 'rope pos', 0, rows) >>> 2;
    const tab = this.scratch(rows * half * 8);
    const { f32, i32 } = this.views();
    const cos0 = tab >>> 2,
      sin0 = cos0 + rows * half;
    ropeCosSin(invFreq, i32.subarray(pp, pp + rows), rows, inverse, f32.subarray(cos0, sin0), f32.subarray(sin0, sin0 + rows * half));
    this.run('rope', rows * heads * D, px, tab, rows, heads, D);
  }

  // ---- attention ----
  private attnPtrs(s: AttentionShape) {
    const { B, Tq, Hq, Hkv, D, qStart, kvCap } = s;
    // work: multiply-adds of the scores and the weighted sum (the causal triangle of Tq rows after qStart keys)
    const work = B * Hq * Tq * (qStart + (Tq + 1) / 2) * D * 2;
    return {
      nq: B * Tq * Hq * D,
      nkv: B * kvCap * Hkv * D,
      nl: B * Hq * Tq,
      work,
      scratch: this.scratch(this.threads * this.k.attentionScratchBytes(kvCap)),
    };
  }
  kernelAttention(s: KernelArgs['attention']): void {
    const { q, kCache, vCache, out, lse } = s;
    const { nq, nkv, nl, work, scratch } = this.attnPtrs(s);
    this.run(
      'attention',
      work,
      this.P(q, 'attention q', 0, nq),
      this.P(kCache, 'attention kCache', 0, nkv),
      this.P(vCache, 'attention vCache', 0, nkv),
      this.P(out, 'attention out', 0, nq),
      this.P(lse, 'attention lse', 0, nl),
      s.B,
      s.Tq,
      s.Hq,
      s.Hkv,
      s.D,
      s.qStart,
      s.kvCap,
      scratch,
    );
  }
  kernelAttentionBackward(s: KernelArgs['attentionBackward']): void {
    const { dOut, q, kCache, vCache, out, lse, dq, dkCache, dvCache } = s;
    const { nq, nkv, nl, work, scratch } = this.attnPtrs(s);
    const w = 'attentionBackward';
    this.run(
      'attentionBackward',
      work,
      this.P(dOut, `${w} dOut`, 0, nq),
      this.P(q, `${w} q`, 0, nq),
      this.P(kCache, `${w} kCache`, 0, nkv),
      this.P(vCache, `${w} vCache`, 0, nkv),
      this.P(out, `${w} out`, 0, nq),
      this.P(lse, `${w} lse`, 0, nl),
      this.P(dq, `${w} dq`, 0, nq),
      this.P(dkCache, `${w} dkCache`, 0, nkv),
      this.P(dvCache, `${w} dvCache`, 0, nkv),
      s.B,
      s.Tq,
      s.Hq,
      s.Hkv,
      s.D,
      s.qStart,
      s.kvCap,
      scratch,
    );
  }

  // ---- SwiGLU ----
  kernelSwiglu({ gate, up, out, n }: KernelArgs['swiglu']): void {
    this.run('swiglu', n, this.P(gate, 'swiglu gate', 0, n), this.P(up, 'swiglu up', 0, n), this.P(out, 'swiglu out', 0, n), n);
  }
  kernelSwigluBackward({ dOut, gate, up, dGate, dUp, n }: KernelArgs['swigluBackward']): void {
    this.run(
      'swigluBackward',
      n,
      this.P(dOut, 'swigluBackward dOut', 0, n),
      this.P(gate, 'swigluBackward gate', 0, n),
      this.P(up, 'swigluBackward up', 0, n),
      this.P(dGate, 'swigluBackward dGate', 0, n),
      this.P(dUp, 'swigluBackward dUp', 0, n),
      n,
    );
  }

  // ---- cross-entropy ----
  kernelCrossEntropy({ logits, labels, losses, rows, V, weights, logitsOff, labelOff, lossOff }: KernelArgs['crossEntropy']): void {
    const pl = this.P(labels, 'crossEntropy labels', labelOff, rows);
    const I = this.views().i32;
    for (let r = 0; r < rows; r++) {
      const y = I[(pl >>> 2) + r];
      if (y >= V) this.fail(`crossEntropy: label ${y} at row ${r} of '${labels.label}' >= V=${V}`);
    }
    this.run(
      'crossEntropy',
      rows * V,
      this.P(logits, 'crossEntropy logits', logitsOff, rows * V),
      pl,
      this.P(losses, 'crossEntropy losses', lossOff, rows),
      weights ? this.P(weights, 'crossEntropy weights', labelOff, rows) : 0,
      rows,
      V,
    );
  }

  // ---- optimizer ----
  kernelAdamw({ param, grad, m, v, n, bc1, bc2, ...h }: KernelArgs['adamw']): void {
    this.run(
      'adamw',
      n,
      this.P(param, 'adamw param', 0, n),
      this.P(grad, 'adamw grad', 0, n),
      this.P(m, 'adamw m', 0, n),
      this.P(v, 'adamw v', 0, n),
      n,
      h.lr,
      h.beta1,
      h.beta2,
      1 - h.beta1,
      1 - h.beta2,
      h.eps,
      h.weightDecay,
      bc1,
      bc2,
      h.gradScale,
    );
  }
  kernelSumSquares({ x, n, out, outIndex }: KernelArgs['sumSquares']): void {
    const s = this.k.sumSquares(this.P(x, 'sumSquares x', 0, n), n);
    const p = this.P(out, 'sumSquares out', outIndex, 1) >>> 2;
    this.views().f32[p] += s;
  }
}

function roundUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
function fmtBytes(b: number): string {
  return `${(b / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Instantiates the embedded SIMD module (throws a BackendError where WebAssembly SIMD is unsupported): the threaded
 * build over a shared memory with a pool of `threads` workers where the runtime allows, else the one-thread build.
 */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<Backend> {
  const threads = opts.threads ?? (await availableCores());
  if (!Number.isInteger(threads) || threads < 1 || threads > 256)
    throw new BackendError(`wasm backend: threads must be an integer in 1..256, got ${opts.threads}`, 'wasm');
  const maxBytes = Math.min(opts.maxMemoryBytes ?? WASM32_MAX, WASM32_MAX);
  let memory: WebAssembly.Memory | undefined;
  let why = '';
  try {
    memory = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: Math.floor(maxBytes / PAGE), shared: true });
    if (!(memory.buffer instanceof SharedArrayBuffer)) throw new Error('the engine returned an unshared buffer');
  } catch (e) {
    const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
    why =
      isolated === false
        ? 'one thread: this page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp for shared memory)'
        : `one thread: no shared WebAssembly memory here (${(e as Error).message})`;
    memory = undefined;
  }
  const oneThread = async (note: string) => {
    try {
      return new WasmBackend(await instantiateEmbedded<SimdExports>(simdWasm), { ...opts, fma: false }, undefined, note);
    } catch (e) {
      throw new BackendError(
        `wasm backend: cannot instantiate the SIMD module (WebAssembly SIMD unsupported?): ${(e as Error).message}`,
        'wasm',
      );
    }
  };
  if (!memory) return oneThread(why);
  const fma = opts.fma !== false && (await relaxedSimdAvailable());
  let module: WebAssembly.Module, k: SimdExports;
  try {
    module = await WebAssembly.compile(base64ToBytes(fma ? simdMtFmaWasm : simdMtWasm) as BufferSource);
    k = (await WebAssembly.instantiate(module, { env: { memory, abort: wasmAbort } })).exports as SimdExports;
  } catch (e) {
    // shared memory but no threads feature for modules (an engine between the two): the one-thread build still runs
    return oneThread(`one thread: the threaded module does not load here (${(e as Error).message})`);
  }
  let pool: WasmThreadPool | undefined;
  if (threads > 1) {
    try {
      pool = await WasmThreadPool.create(module, memory, k, THREADED_KERNELS, threads);
    } catch (e) {
      why = `one thread: ${(e as Error).message}`;
    }
  }
  const fmaNote = opts.fma === false ? 'FMA off (fma: false)' : fma ? '' : 'no relaxed SIMD in this engine';
  return new WasmBackend(k, { ...opts, fma }, pool, [why, fmaNote].filter(Boolean).join('; '));
}

/** Pages the kernel modules declare as their minimum (assembly/simd*.ts: --initialMemory 17). */
const INITIAL_PAGES = 17;

function wasmAbort(): never {
  throw new Error('latentlm wasm abort');
}

/** Node itself (Deno and Bun set process.versions.node too, but have navigator.hardwareConcurrency and their own engines). */
const isNode = typeof process !== 'undefined' && !!process.versions?.node && !('Deno' in globalThis) && !('Bun' in globalThis);

/** The cores this process may use: os.availableParallelism() in Node, navigator.hardwareConcurrency elsewhere. */
export async function availableCores(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (isNode) {
    const os = await import('node:os');
    return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  }
  return Math.max(1, nav?.hardwareConcurrency ?? 1);
}

let relaxedSimd: Promise<boolean> | undefined;
/**
 * Whether the engine accepts the relaxed-SIMD build. Node 20's V8 has relaxed SIMD behind a flag, which can be
 * switched on at runtime before compiling; Node 22+, Deno, Bun (JavaScriptCore: no) and browsers decide themselves.
 */
function relaxedSimdAvailable(): Promise<boolean> {
  return (relaxedSimd ??= (async () => {
    const bytes = base64ToBytes(simdMtFmaWasm) as BufferSource;
    if (WebAssembly.validate(bytes)) return true;
    if (!isNode) return false;
    try {
      (await import('node:v8')).setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      return false;
    }
    return WebAssembly.validate(bytes);
  })());
}
