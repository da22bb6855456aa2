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
import {
  kernelName,
  OPS,
  OpBackend,
  querySequences,
  ropeCosSin,
  type ArgSpec,
  type KernelArgs,
  type KernelName,
  type Kernels,
  type OpName,
} from './ops.js';
import { BackendError, type AttentionShape, type Backend, type DType, type Tensor } from './types.js';

interface SimdExports extends WebAssembly.Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  MATMUL_SCRATCH: WebAssembly.Global;
  attentionScratchBytes(kvCap: number): number;
  sumSquares(x: number, n: number): number;
}

/** Default WasmBackendOptions.parallelThreshold: waking the pool costs microseconds, about what 64K elements of an O(n) op take. */
const MIN_PARALLEL_WORK = 1 << 16;
/** Default WasmBackendOptions.partsPerThread. */
const PARTS_PER_THREAD = 1;

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
  /**
   * Parts per thread that a pooled op is cut into (default 1): threads claim parts as they get to them, so with more
   * parts a thread whose vCPU the host holds up costs only its current part. Results are bit-identical for any value.
   * Measured here (2 vCPUs, 4 paired rounds): 4 parts gave better median sgemm calls at Qwen2-0.5B's shapes in 10 of
   * 12 pairs and a faster mid model in 3 of 4, but the default job (small matmuls, more packing per part) was not
   * faster, so the default stays 1.
   */
  partsPerThread?: number;
}

/** One free range of the heap. */
interface Block {
  ptr: number;
  bytes: number;
}

// The kernel methods of the ops in WASM_CALLS are installed on the prototype from it (after the class); this
// declaration merge gives them their types.
export interface WasmBackend extends Pick<Kernels, KernelName<ThreadedName>> {}
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the kernel methods are installed on the prototype below, from WASM_CALLS
export class WasmBackend extends OpBackend implements Backend, Kernels {
  readonly name = 'wasm' as const;
  override readonly queryStarts = true;
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
  /** The last rope tables (forward, inverse) and what they were computed for (ropeTable). */
  private ropeTables: ({ ptr: number; bytes: number; invFreq: Float32Array; pos: Int32Array } | undefined)[] = [];
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
    this.matmulScratch = this.rawAlloc(scratchFloats * 4 * this.parts);
    this.info = `WebAssembly SIMD (v128 kernels, 4x8 register-blocked packed matmul, ${this.threads} thread${this.threads > 1 ? 's' : ''}, ${this.fma ? 'FMA' : 'no FMA'}${note ? `: ${note}` : ''}; ${(this.buf.byteLength / 2 ** 20).toFixed(1)} MiB initial memory, max ${(this.maxBytes / 2 ** 30).toFixed(2)} GiB)`;
  }

  /** Runs a kernel on every thread of the pool when there is enough work for it, else on this thread alone. */
  private run(name: PooledKernel, work: number, args: number[]): void {
    if (this.pool && work >= this.parallelThreshold) this.pool.run(name, args);
    else (this.k[name] as (...a: number[]) => void)(...args, 0, 1);
  }
  /** Parts a kernel call may be cut into: the per-part scratch (matmul packing, attention rows) is sized for it. */
  private get parts(): number {
    return this.pool?.parts ?? 1;
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
    this.run('zeroFill', n, [this.P(t, 'zero', offset, n), n]); // below the pool's threshold: on this thread
  }
  async sync(): Promise<void> {}
  destroy(): void {
    // The memory cannot be returned to the engine piecemeal; dropping every reference lets the GC take it.
    this.destroyed = true;
    this.free_ = [];
    this.pool?.destroy();
  }

  /**
   * One threaded kernel call as WASM_CALLS describes it: tensor arguments become byte addresses at the start of the
   * range the op table gives them (already checked there; `P` checks ownership), flags 0/1, numbers as they are.
   */
  callKernel<K extends ThreadedName>(op: K, a: KernelArgs[K]): void {
    const spec = WASM_CALLS[op] as unknown as WasmCall<OpName>;
    if (spec.skip?.(a)) return;
    spec.before?.(this, a);
    const ranges = OPS[op].args as Record<string, ArgSpec<KernelArgs[K]>>;
    const named = a as unknown as Record<string, unknown>;
    const args = spec.args.map((name) => {
      if (typeof name === 'function') return name(a, this);
      const v = named[name];
      const r = ranges[name];
      if (r && 'tensor' in r) return v === undefined ? 0 : this.P(v as Tensor, `${op} ${name}`, ...r.range(a));
      return typeof v === 'boolean' ? +v : (v as number);
    });
    this.run(op, spec.work(a), args);
  }

  // The helpers below are WASM_CALLS' (module scope, so not private; not part of the Backend interface).

  /** Out-of-range ids would read/write other tensors' memory, so they are an error here (rows are few). */
  checkIds({ ids, rows, dim }: { ids: Tensor; rows: number; dim: number }, table: Tensor, what: string): void {
    const p = this.P(ids, `${what} ids`, 0, rows) >>> 2,
      I = this.views().i32;
    const nRows = Math.floor(this.T(table, what).size / dim);
    for (let r = 0; r < rows; r++)
      if (I[p + r] >= nRows) this.fail(`${what}: id ${I[p + r]} at row ${r} of '${ids.label}' >= table rows ${nRows} ('${table.label}')`);
  }
  /** Per-sequence query starts and rows (host views of the tensors in linear memory), checked by querySequences:
   * out-of-range values would read other tensors' memory. */
  checkQuerySequences(a: AttentionShape & { qStarts?: Tensor; qRows?: Tensor }): void {
    const I = this.views().i32;
    const view = (t: Tensor | undefined, n: number, what: string) => {
      if (!t) return undefined;
      const p = this.P(t, what, 0, n) >>> 2;
      return I.subarray(p, p + n);
    };
    querySequences(a, view(a.qStarts, a.B, 'attention qStarts'), view(a.qRows, a.B + 1, 'attention qRows'), (msg) =>
      this.fail(`attention: ${msg}`),
    );
  }
  /** Labels >= V would read past the row (negative ones are ignored rows). */
  checkLabels({ labels, rows, V, labelOff }: KernelArgs['crossEntropy']): void {
    const pl = this.P(labels, 'crossEntropy labels', labelOff, rows) >>> 2;
    const I = this.views().i32;
    for (let r = 0; r < rows; r++) {
      const y = I[pl + r];
      if (y >= V) this.fail(`crossEntropy: label ${y} at row ${r} of '${labels.label}' >= V=${V}`);
    }
  }
  /** Byte address of the shared per-thread matmul packing scratch. */
  get matmulScratchPtr(): number {
    return this.matmulScratch;
  }
  /** Byte address of a scratch range for every part of an attention kernel over kvCap keys (one range per part). */
  attentionScratch(kvCap: number): number {
    return this.scratch(this.parts * this.k.attentionScratchBytes(kvCap));
  }
  /**
   * The rope cos/sin table, computed on the host exactly as cpu.ts does (ops.ts ropeCosSin); the kernel applies the
   * rotation to every head. Kept for the next call: a forward pass rotates q and k of every layer at the same
   * positions (and the backward pass undoes them all with the inverse table), so one table per direction serves a
   * whole pass; the sin/cos are ~1% of a mid-sized training step, on the calling thread alone. The table is reused
   * only when the positions (compared by value: a tensor's contents can change under the same handle), the row
   * count and the frequencies are the same.
   */
  ropeTable({ pos, rows, D, inverse, invFreq }: KernelArgs['rope']): number {
    const half = D / 2;
    const pp = this.P(pos, 'rope pos', 0, rows) >>> 2;
    const bytes = rows * half * 8;
    let slot = this.ropeTables[+inverse];
    const same = (p: Int32Array) => {
      const I = this.views().i32;
      for (let r = 0; r < rows; r++) if (p[r] !== I[pp + r]) return false;
      return true;
    };
    if (slot && slot.invFreq === invFreq && slot.pos.length === rows && same(slot.pos)) return slot.ptr;
    let ptr = slot?.ptr ?? 0,
      size = slot?.bytes ?? 0;
    if (size < bytes) {
      if (slot) this.rawFree(ptr, size);
      size = roundUp(bytes, ALIGN);
      ptr = this.rawAlloc(size);
    }
    const { f32, i32 } = this.views(); // after rawAlloc, which may grow the memory
    slot = this.ropeTables[+inverse] = { ptr, bytes: size, invFreq, pos: i32.slice(pp, pp + rows) };
    const cos0 = ptr >>> 2,
      sin0 = cos0 + rows * half;
    ropeCosSin(invFreq, slot.pos, rows, inverse, f32.subarray(cos0, sin0), f32.subarray(sin0, sin0 + rows * half));
    return ptr;
  }

  kernelSumSquares({ x, n, out, outIndex }: KernelArgs['sumSquares']): void {
    const s = this.k.sumSquares(this.P(x, 'sumSquares x', 0, n), n);
    const p = this.P(out, 'sumSquares out', outIndex, 1) >>> 2;
    this.views().f32[p] += s;
  }
}

// ---------------------------------------------------------------- the threaded kernels' calls

/** One argument of a kernel export: an argument of the op by name, or a value computed from the arguments. */
type WasmArg<K extends OpName> = (keyof KernelArgs[K] & string) | ((a: KernelArgs[K], be: WasmBackend) => number);
interface WasmCall<K extends OpName> {
  /** Multiply-adds or elements: below the backend's parallelThreshold the call stays on the calling thread. */
  work: (a: KernelArgs[K]) => number;
  /** The export's arguments before its trailing (tid, nth), in the order of assembly/simd.ts. */
  args: WasmArg<K>[];
  /** Nothing to compute (the export is not called). */
  skip?: (a: KernelArgs[K]) => boolean;
  /** A check the op table cannot make (it reads tensor contents), run before the call. */
  before?: (be: WasmBackend, a: KernelArgs[K]) => void;
}

/** Multiply-adds of the scores and the weighted sum (the causal triangle of Tq rows after qStart keys). */
const attentionWork = (a: AttentionShape & { qRows?: Tensor }) =>
  a.qRows ? a.Hq * a.Tq * (a.qStart + 1) * a.D * 2 : a.B * a.Hq * a.Tq * (a.qStart + (a.Tq + 1) / 2) * a.D * 2;
const attentionTail = <K extends 'attention' | 'attentionBackward'>(): WasmArg<K>[] => [
  'qStarts',
  'qRows',
  'B',
  'Tq',
  'Hq',
  'Hkv',
  'D',
  'qStart',
  'kvCap',
  (a, be) => be.attentionScratch(a.kvCap),
];
/**
 * Per-sequence query starts must lie in [0, qStart], and per-sequence rows run from 0 to Tq with each sequence's
 * rows inside the cache from its start (the op table checks only what does not depend on tensor contents).
 */
const checkQueryStarts = (be: WasmBackend, a: AttentionShape & { qStarts?: Tensor; qRows?: Tensor }) => {
  if (a.qStarts || a.qRows) be.checkQuerySequences(a);
};
const elements = (a: { n: number }) => a.n;
/** AdamW's scalars as the export takes them: 1 - beta too, so no thread recomputes it. */
const adamwHyper: WasmArg<'adamw'>[] = [
  'lr',
  'beta1',
  'beta2',
  (a) => 1 - a.beta1,
  (a) => 1 - a.beta2,
  'eps',
  'weightDecay',
  'bc1',
  'bc2',
  'gradScale',
];
const rowsTimesDim = (a: { rows: number; dim: number }) => a.rows * a.dim;

/**
 * Every op with a threaded kernel: the export of the same name takes these arguments, then (tid, nth), and splits
 * only its outputs between the threads. Only sumSquares (one sum) stays a method of the class.
 */
const WASM_CALLS: { [K in Exclude<OpName, 'sumSquares'>]: WasmCall<K> } = {
  copy2d: {
    work: (a) => a.rows * a.cols,
    skip: (a) => a.rows <= 0 || a.cols <= 0,
    args: ['src', 'dst', 'rows', 'cols', 'srcStride', 'dstStride', 'accumulate'],
  },
  add: { work: elements, args: ['a', 'b', 'out', 'n'] },
  axpy: { work: elements, args: ['alpha', 'x', 'y', 'n'] },
  scale: { work: elements, args: ['x', 's', 'n'] },
  embedding: {
    work: rowsTimesDim,
    before: (be, a) => be.checkIds(a, a.table, 'embedding'),
    args: ['ids', 'table', 'out', 'rows', 'dim'],
  },
  embeddingBackward: {
    work: rowsTimesDim,
    before: (be, a) => be.checkIds(a, a.dTable, 'embeddingBackward'),
    args: ['ids', 'dOut', 'dTable', 'rows', 'dim'],
  },
  matmul: {
    work: (a) => a.M * a.N * a.K,
    skip: (a) => a.M <= 0 || a.N <= 0,
    args: ['a', 'b', 'c', 'bias', 'M', 'N', 'K', 'transA', 'transB', 'accumulate', (_a, be) => be.matmulScratchPtr],
  },
  sumRows: { work: (a) => a.rows * a.cols, args: ['dY', 'dBias', 'rows', 'cols'] },
  rmsNorm: { work: rowsTimesDim, args: ['x', 'w', 'y', 'rstd', 'rows', 'dim', 'eps'] },
  rmsNormBackward: { work: rowsTimesDim, args: ['dy', 'x', 'w', 'rstd', 'dx', 'dw', 'rows', 'dim'] },
  rope: { work: (a) => a.rows * a.heads * a.D, args: ['x', (a, be) => be.ropeTable(a), 'rows', 'heads', 'D'] },
  attention: {
    work: attentionWork,
    before: checkQueryStarts,
    args: ['q', 'kCache', 'vCache', 'out', 'lse', ...attentionTail<'attention'>()],
  },
  attentionBackward: {
    work: attentionWork,
    before: checkQueryStarts,
    args: ['dOut', 'q', 'kCache', 'vCache', 'out', 'lse', 'dq', 'dkCache', 'dvCache', ...attentionTail<'attentionBackward'>()],
  },
  swiglu: { work: elements, args: ['gate', 'up', 'out', 'n'] },
  swigluBackward: { work: elements, args: ['dOut', 'gate', 'up', 'dGate', 'dUp', 'n'] },
  crossEntropy: {
    work: (a) => a.rows * a.V,
    before: (be, a) => be.checkLabels(a),
    args: ['logits', 'labels', 'losses', 'weights', 'rows', 'V'],
  },
  adamw: { work: elements, args: ['param', 'grad', 'm', 'v', 'n', ...adamwHyper] },
};
type ThreadedName = keyof typeof WASM_CALLS;
const THREADED_KERNELS = Object.keys(WASM_CALLS) as ThreadedName[];
/** Every export the pool runs: the ops' kernels and Backend.zero's (not an op of the table). */
type PooledKernel = ThreadedName | 'zeroFill';
const POOLED_KERNELS: PooledKernel[] = [...THREADED_KERNELS, 'zeroFill'];

// The kernel methods of the threaded ops (`kernelAdd` for add, ...): one table-driven call each.
for (const op of THREADED_KERNELS)
  Object.defineProperty(WasmBackend.prototype, kernelName(op), {
    configurable: true,
    writable: true,
    value: function (this: WasmBackend, args: never) {
      this.callKernel(op, args);
    },
  });

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
  const partsPerThread = opts.partsPerThread ?? PARTS_PER_THREAD;
  if (!Number.isInteger(partsPerThread) || partsPerThread < 1 || partsPerThread > 64)
    throw new BackendError(`wasm backend: partsPerThread must be an integer in 1..64, got ${opts.partsPerThread}`, 'wasm');
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
      pool = await WasmThreadPool.create(module, memory, k, POOLED_KERNELS, threads, threads * partsPerThread);
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
