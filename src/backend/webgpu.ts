// The WebGPU backend: every op of the table in ./ops.ts as WGSL compute kernels (kernels/*.wgsl, embedded at build time into
// src/generated/kernels.ts), with the numerics of the CPU reference (./cpu.ts, f32 accumulation).
//
// How work reaches the GPU:
// - Ops are encoded into one command encoder (one compute pass, interrupted only for copies/clears) and
//   submitted lazily: on read/sync/upload, or when the per-batch uniform ring is full.
// - Each dispatch's parameters get their own 256-byte slot of a uniform ring buffer (dynamic offset), written
//   with one queue.writeBuffer just before the submit, so bind groups do not depend on the parameters and are
//   cached by (pipeline variant, buffers).
// - Pipelines are compiled once per (kernel, specialisation): transposes, vec4-vs-scalar bindings, split
//   bindings, head dimension... The WGSL header (uniform struct, bindings, accessors) is generated here.
// - Freed GPUBuffers go to a size-keyed pool and are cleared on reuse; reads copy only the requested range.
//
// Tensors larger than one storage binding (or one buffer) are split into chunks of `chunkElems` elements, each
// its own GPUBuffer. Ops that must handle a split tensor (embedding table, matmul operands, adamw, sumSquares,
// zero, upload, read, copy2d and the other elementwise maps) bind a chunk and, when a row of the op straddles a
// boundary, its successor; the generated accessors pick the right buffer, so kernels index as if contiguous.
// Other ops given a split tensor copy it into one temporary buffer if the device can bind that much (which is
// what makes the conformance suite pass with an artificially tiny `maxBindingBytes`) and throw a clear error
// otherwise. `stats.merged` counts those fallbacks.
import { kernels as KERNEL_FILES } from '../generated/kernels.js';
import { BackendError } from './types.js';
import { toBf16Bits } from '../io/safetensors.js';
import { OpBackend, type KernelArgs, type Kernels } from './ops.js';
import type { AttentionShape, Backend, DType, Tensor } from './types.js';
import { requestWebGPU, type AdapterChoice, type WebGPUDevice } from './webgpu-device.js';
import {
  chooseKernels,
  chooseReductions,
  requestedReductions,
  subgroupLevels,
  TILED_MATMUL,
  type KernelFamily,
  type MatmulKernel,
  type MatmulTile,
  type Reductions,
} from './webgpu-kernels.js';

// The numeric values of the WebGPU flag namespaces, so nothing depends on GPUBufferUsage & co. being globals.
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_MODE_READ = 0x1;
const STAGE_COMPUTE = 0x4;

const SLOT_BYTES = 256; // one dispatch's parameters; also the usual minUniformBufferOffsetAlignment
const RING_SLOTS = 1024; // dispatches per submit at most
const NO_SPLIT = 0xffffffff;
const STAGING_KEEP_BYTES = 16 * 1024 * 1024; // readback buffers up to this size are kept for reuse

export interface WebGPUBackendOptions {
  /** Node/Bun: which Dawn backend ('auto' tries Vulkan, then GLES compat). */
  adapter?: AdapterChoice;
  powerPreference?: GPUPowerPreference;
  /** Split tensors at this many bytes (default and maximum: what the device grants). Small values test splitting. */
  maxBindingBytes?: number;
  /** Refuse single allocations above this many bytes with a BackendError (default: no limit besides the device's). */
  maxTensorBytes?: number;
  /**
   * Kernel family (see ./webgpu-kernels.ts): 'tiled' (workgroup-memory tiles, flash attention: for hardware GPUs),
   * 'simple' (register blocking, no workgroup memory: what runs fastest on software rasterisers), or 'auto'
   * (default): 'simple' on a software adapter, 'tiled' otherwise. The environment variable
   * LATENTLM_WEBGPU_KERNELS=tiled|simple|auto stands in for an absent option (so test suites can force one).
   */
  kernels?: KernelFamily | 'auto';
  /** Matmul kernel (default: from `kernels`): tiled, register-blocked 4x4, or the naive one-output-per-invocation baseline. */
  matmulKernel?: MatmulKernel;
  /** Tiled matmul: stage tiles as f16 (needs the adapter's `shader-f16`; products still accumulate in f32). Default false. */
  matmulF16?: boolean;
  /** Bytes of freed buffers kept for reuse (default 256 MiB). */
  poolBytes?: number;
  /**
   * Workgroup-wide reductions of RMSNorm, cross-entropy and sumSquares (see ./webgpu-kernels.ts): 'workgroup'
   * (a tree in workgroup memory), 'subgroup' (subgroup operations; needs the adapter's `subgroups` feature and
   * throws without it), or 'auto' (default): 'subgroup' on a hardware adapter that has it. The environment
   * variable LATENTLM_WEBGPU_REDUCTIONS stands in for an absent option.
   */
  reductions?: Reductions | 'auto';
}

type ElemType = 'f32' | 'i32' | 'vec4';
type ParamType = 'u32' | 'i32' | 'f32';

/** Uniform parameters of one type, in this order. */
const u32 = (...names: string[]): [string, ParamType][] => names.map((n) => [n, 'u32']);
const f32 = (...names: string[]): [string, ParamType][] => names.map((n) => [n, 'f32']);
/** Storage bindings in this order: f32 buffers the kernel reads, then those it writes. */
const bufs = (read: string[], written: string[]): BufSpec[] => [
  ...read.map((name) => ({ name })),
  ...written.map((name) => ({ name, rw: true })),
];

interface BufSpec {
  name: string;
  type?: 'f32' | 'i32';
  rw?: boolean;
  /** May be absent; the header then defines accessors returning 0 so the kernel still compiles. */
  optional?: boolean;
}

/** The uniform block of all three attention kernels (forward, backwardQ, backwardKV): attention.wgsl reads the same Params in each. */
const ATTENTION_PARAMS: [string, ParamType][] = [...u32('B', 'Tq', 'Hq', 'Hkv', 'qStart', 'kvCap'), ...f32('scale')];
/** Per-sequence starts and row offsets (AttentionArgs.qStarts/qRows), bound when given (QSTARTS/QROWS). */
const ATTENTION_SEQ_BUFS: BufSpec[] = [
  { name: 'qs', type: 'i32', optional: true },
  { name: 'qr', type: 'i32', optional: true },
];

interface KernelSpec {
  file: string;
  section: string;
  /** Other kernel files appended whole (function libraries such as swiglu.wgsl for the generic map). */
  libs?: string[];
  /** WGSL extensions the kernel needs (`enable f16;`). */
  enable?: string[];
  params: [string, ParamType][];
  bufs: BufSpec[];
  /** Workgroup size: WG, or [WG_X, WG_Y]. */
  wg: number | [number, number];
  /** Calls the workgroup reductions wg_sum / wg_max / wg_lse: the backend appends the chosen library. */
  reduce?: boolean;
}

/** What one binding of a dispatch refers to: a buffer, optionally followed by the next chunk of the same tensor. */
interface Arg {
  b0: GPUBuffer;
  b1?: GPUBuffer;
  /** Elements in b0 before b1 takes over (NO_SPLIT without b1). */
  split: number;
  /** Bind as array<vec4<f32>> (caller guarantees every ld4 index is a multiple of 4). */
  vec4?: boolean;
  /** A bf16 tensor: bound as array<u32> holding element pairs, unpacked by the accessors (read-only). */
  bf16?: boolean;
}

/** Rows [lo, hi) of an operand whose first element lies in chunk `chunk` (and may run into chunk + 1 when `pair`). */
interface Piece {
  lo: number;
  hi: number;
  chunk: number;
  pair: boolean;
}

class GpuTensor implements Tensor {
  freed = false;
  constructor(
    readonly size: number,
    readonly dtype: DType,
    readonly label: string,
    readonly chunks: GPUBuffer[],
    readonly chunkElems: number,
  ) {}
  get split(): boolean {
    return this.chunks.length > 1;
  }
  chunkLen(c: number): number {
    return Math.min(this.chunkElems, this.size - c * this.chunkElems);
  }
}

interface Variant {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  fields: [string, ParamType][];
  uniformBytes: number;
}

/** Buffer bytes for `elems` elements of `eb` bytes, rounded up to 16 (a bf16 tensor can then always be read in u32s). */
const bytesOf = (elems: number, eb = 4) => Math.max(16, Math.ceil((elems * eb) / 16) * 16);
/** Bytes per element as stored. */
const elemBytes = (dtype: DType) => (dtype === 'bf16' ? 2 : 4);
const cdiv = (a: number, b: number) => Math.ceil(a / b);

/** Splits a kernel file into its `//#kernel <name>` sections; text before the first marker is shared by all. */
function sectionOf(file: string, section: string): string {
  const src = KERNEL_FILES[file];
  if (src === undefined) throw new Error(`kernels/${file}.wgsl is not embedded (run \`npm run build:wasm\`)`);
  const parts = src.split(/^\/\/#kernel\s+/m);
  const prelude = parts[0];
  for (const p of parts.slice(1)) {
    const nl = p.indexOf('\n');
    if (p.slice(0, nl).trim() === section) return `${prelude}\n${p.slice(nl + 1)}`;
  }
  throw new Error(`kernels/${file}.wgsl has no section '${section}'`);
}

/**
 * Partitions [0, n) into segments on which every list of pieces (each a partition of [0, n)) is constant;
 * returns for each segment the piece of every list covering it.
 */
function partition(lists: Piece[][], n: number): { lo: number; hi: number; pieces: Piece[] }[] {
  if (n <= 0) return [{ lo: 0, hi: 0, pieces: lists.map(() => ({ lo: 0, hi: 0, chunk: 0, pair: false })) }];
  const cuts = new Set<number>([0, n]);
  for (const l of lists) for (const p of l) cuts.add(p.lo), cuts.add(p.hi);
  const pts = [...cuts].sort((a, b) => a - b);
  const idx = lists.map(() => 0);
  const out: { lo: number; hi: number; pieces: Piece[] }[] = [];
  for (let s = 0; s + 1 < pts.length; s++) {
    const lo = pts[s],
      hi = pts[s + 1];
    const pieces = lists.map((l, li) => {
      while (l[idx[li]].hi <= lo) idx[li]++;
      return l[idx[li]];
    });
    out.push({ lo, hi, pieces });
  }
  return out;
}

// ---- the elementwise op table: tensors wired to a body that calls the op's own WGSL functions ----
interface MapOp {
  libs?: string[];
  params: [string, ParamType][];
  /** Tensors: read ('r'), written ('w') or both ('rw'). */
  args: Record<string, 'r' | 'w' | 'rw'>;
  /** WGSL using r_<name> (loaded values) and assigning w_<name> (declared `var w_<name>: f32;`). */
  body: string;
}

const MAP_OPS: Record<string, MapOp> = {
  add: { params: [], args: { a: 'r', b: 'r', out: 'w' }, body: 'w_out = r_a + r_b;' },
  axpy: { params: f32('alpha'), args: { x: 'r', y: 'rw' }, body: 'w_y = r_y + P.alpha * r_x;' },
  scale: { params: f32('s'), args: { x: 'rw' }, body: 'w_x = r_x * P.s;' },
  swiglu: { libs: ['swiglu'], params: [], args: { gate: 'r', up: 'r', out: 'w' }, body: 'w_out = swiglu(r_gate, r_up);' },
  swigluBackward: {
    libs: ['swiglu'],
    params: [],
    args: { dout: 'r', gate: 'r', up: 'r', dgate: 'rw', dup: 'rw' },
    body: 'let d = swiglu_backward(r_dout, r_gate, r_up); w_dgate = r_dgate + d.x; w_dup = r_dup + d.y;',
  },
  adamw: {
    libs: ['adamw'],
    params: f32('lr', 'beta1', 'beta2', 'oneMinusBeta1', 'oneMinusBeta2', 'eps', 'wd', 'bc1', 'bc2', 'gradScale'),
    args: { p: 'rw', g: 'r', m: 'rw', v: 'rw' },
    body: 'let u = adamw(r_p, r_g, r_m, r_v); w_p = u.x; w_m = u.y; w_v = u.z;',
  },
};

// ---- kernel specs of the non-map kernels ----
const K: Record<string, KernelSpec> = {
  copy2d: {
    file: 'elementwise',
    section: 'copy2d',
    wg: 64,
    params: u32('rLo', 'rHi', 'cols', 'srcOff', 'srcStride', 'dstOff', 'dstStride', 'accumulate'),
    bufs: bufs(['src'], ['dst']),
  },
  sumRows: {
    file: 'elementwise',
    section: 'sumRows',
    wg: 64,
    params: u32('rows', 'cols'),
    bufs: bufs(['dy'], ['db']),
  },
  ssPartial: {
    file: 'elementwise',
    section: 'sumSquaresPartial',
    wg: 256,
    reduce: true,
    params: u32('n', 'xOff', 'nGroups', 'pOff'),
    bufs: bufs(['x'], ['part']),
  },
  subgroupProbe: { file: 'elementwise', section: 'subgroupProbe', wg: 256, reduce: true, params: [], bufs: bufs([], ['out']) },
  ssFinal: {
    file: 'elementwise',
    section: 'sumSquaresFinal',
    wg: 256,
    reduce: true,
    params: u32('nPart', 'outIndex'),
    bufs: bufs(['part'], ['out']),
  },
  embedding: {
    file: 'embedding',
    section: 'forward',
    wg: 64,
    params: u32('rows', 'dim', 'lo', 'hi', 'base'),
    bufs: [{ name: 'ids', type: 'i32' }, { name: 'table' }, { name: 'out', rw: true }],
  },
  embeddingBackward: {
    file: 'embedding',
    section: 'backward',
    wg: 64,
    params: u32('rows', 'dim', 'lo', 'hi', 'base'),
    bufs: [{ name: 'ids', type: 'i32' }, { name: 'dout' }, { name: 'dtable', rw: true }],
  },
  rmsNorm: {
    file: 'rmsnorm',
    section: 'forward',
    wg: 128,
    reduce: true,
    params: [...u32('rows', 'dim'), ...f32('eps')],
    bufs: bufs(['x', 'w'], ['y', 'rstd']),
  },
  rmsNormBackwardX: {
    file: 'rmsnorm',
    section: 'backwardX',
    wg: 128,
    reduce: true,
    params: u32('rows', 'dim'),
    bufs: bufs(['dy', 'x', 'w', 'rstd'], ['dx']),
  },
  rmsNormBackwardW: {
    file: 'rmsnorm',
    section: 'backwardW',
    wg: 64,
    params: u32('rows', 'dim'),
    bufs: bufs(['dy', 'x', 'rstd'], ['dw']),
  },
  rope: {
    file: 'rope',
    section: 'rope',
    wg: 64,
    params: u32('rows', 'heads', 'D', 'inverse'),
    bufs: [{ name: 'pos', type: 'i32' }, { name: 'freq' }, { name: 'x', rw: true }],
  },
  attention: {
    file: 'attention',
    section: 'forward',
    wg: 64,
    params: ATTENTION_PARAMS,
    bufs: [...bufs(['q', 'k', 'v'], ['out', 'lse']), ...ATTENTION_SEQ_BUFS],
  },
  attentionBackwardQ: {
    file: 'attention',
    section: 'backwardQ',
    wg: 64,
    params: ATTENTION_PARAMS,
    bufs: [...bufs(['dout', 'q', 'k', 'v', 'out', 'lse'], ['dq', 'delta']), ...ATTENTION_SEQ_BUFS],
  },
  attentionBackwardKV: {
    file: 'attention',
    section: 'backwardKV',
    wg: 64,
    params: ATTENTION_PARAMS,
    bufs: [...bufs(['dout', 'q', 'k', 'v', 'lse', 'delta'], ['dk', 'dv']), ...ATTENTION_SEQ_BUFS],
  },
  crossEntropy: {
    file: 'crossentropy',
    section: 'crossEntropy',
    wg: 256,
    reduce: true,
    params: u32('V', 'rows', 'logitsOff', 'labelOff', 'lossOff'),
    bufs: [
      { name: 'x', rw: true },
      { name: 'labels', type: 'i32' },
      { name: 'losses', rw: true },
      { name: 'weights', optional: true },
    ],
  },
};

const MATMUL_PARAMS: [string, ParamType][] = u32(
  'M',
  'N',
  'K',
  'aOff',
  'bOff',
  'cOff',
  'mLo',
  'mHi',
  'nLo',
  'nHi',
  'kLo',
  'kHi',
  'mBase',
  'nBase',
  'accumulate',
  'useBias',
  'useRes',
);
/** g: the SwiGLU gate fused into A's loads (A's layout); r: the residual fused into C's store (C's layout). */
const MATMUL_BUFS: BufSpec[] = [
  { name: 'a' },
  { name: 'b' },
  { name: 'c', rw: true },
  { name: 'bias', optional: true },
  { name: 'g', optional: true },
  { name: 'r', optional: true },
];

/**
 * Workgroup layout of the flash attention kernels (kernels/attention.wgsl, flash*) for one shape: BQ query
 * positions x REP query heads per workgroup (about 64 invocations), K/V tiles of BKV rows, and for the key pass
 * BKK keys x (D / DC) column chunks per workgroup with query tiles of BQT rows. Tiles stay within 8-12 KiB of
 * workgroup memory at D = 64 (the WebGPU default limit is 16 KiB).
 */
function flashShape(s: AttentionShape & { qStarts?: Tensor; qRows?: Tensor }, DC = s.D) {
  const rep = s.Hq / s.Hkv;
  const BQ = Math.max(1, Math.floor(64 / rep));
  const clamp = (x: number, hi: number) => Math.max(1, Math.min(hi, Math.floor(x)));
  const BKV = clamp(1024 / s.D, 32),
    BKK = clamp(1024 / s.D, 16),
    BQT = clamp(512 / s.D, 16);
  const spec = (section: string, wg: number): KernelSpec => ({ ...K[FLASH_OF[section]], section, wg });
  const wgQ = rep * BQ,
    wgKV = BKK * (s.D / DC);
  return {
    forward: spec('flashForward', wgQ),
    backwardQ: spec('flashBackwardQ', wgQ),
    backwardKV: spec('flashBackwardKV', wgKV),
    consts: { D: s.D, REP: rep, BQ, BKV, ...seqConsts(s) },
    kvConsts: { D: s.D, REP: rep, DC, BKK, BQT, ...seqConsts(s) },
    // with qRows the sequences' rows are only known on the device: the bound sum_b ceil(n_b / BQ) <= ceil(Tq / BQ) + B
    queryGroups: s.qRows ? s.Hkv * (cdiv(s.Tq, BQ) + s.B) : s.B * s.Hkv * cdiv(s.Tq, BQ),
    keyGroups: s.B * s.Hkv * cdiv(keysBound(s), BKK),
  };
}
/** The attention kernels' per-sequence layout switches (kernels/attention.wgsl, QSTARTS/QROWS). */
const seqConsts = (s: AttentionShape & { qStarts?: Tensor; qRows?: Tensor }) => ({ QSTARTS: !!s.qStarts, QROWS: !!s.qRows });
/** Keys any sequence may have: the key kernels' grid (attention.wgsl's keys_bound). */
const keysBound = (s: AttentionShape) => Math.min(s.qStart + s.Tq, s.kvCap);
/** The simple kernel whose parameters and bindings each flash kernel shares. */
const FLASH_OF: Record<string, string> = {
  flashForward: 'attention',
  flashBackwardQ: 'attentionBackwardQ',
  flashBackwardKV: 'attentionBackwardKV',
};

/** Creates the WebGPU backend on the best adapter available (see ./webgpu-device.ts). */
export async function createWebGPUBackend(opts: WebGPUBackendOptions = {}): Promise<WebGPUBackend> {
  const dev = await requestWebGPU({ adapter: opts.adapter, powerPreference: opts.powerPreference });
  try {
    const be = new WebGPUBackend(dev, opts);
    await be.chooseReductions();
    return be;
  } catch (e) {
    dev.device.destroy(); // a refused option must not leak the device
    throw e;
  }
}

export class WebGPUBackend extends OpBackend implements Backend, Kernels {
  readonly name = 'webgpu' as const;
  /** kernelMatmul fuses the residual add into C's store and the SwiGLU gate into A's loads (one pass fewer each). */
  override readonly fusesMatmul = true;
  override readonly queryStarts = true;
  readonly info: string;
  readonly maxBindingBytes: number;
  /** Elements per chunk of a split tensor (a multiple of 4). */
  readonly chunkElems: number;
  /** The kernel family in use ('tiled' or 'simple'; see WebGPUBackendOptions.kernels). */
  readonly kernels: KernelFamily;
  /** Which matmul kernel runs (the bench switches it). */
  matmulKernel: MatmulKernel;
  /** Tile shape of the tiled matmul; tunable for benchmarks. */
  matmulTile: MatmulTile = { ...TILED_MATMUL };
  /** Stage the tiled matmul's tiles as f16 (only when `features` has shader-f16). */
  matmulF16: boolean;
  /** Optional device features enabled (shader-f16, subgroups). */
  readonly features: ReadonlySet<string>;
  /**
   * Which reduction library the reducing kernels use (see WebGPUBackendOptions.reductions). 'workgroup' until
   * chooseReductions() (called by createWebGPUBackend) has probed the device's subgroups.
   */
  reductions: Reductions = 'workgroup';
  /** Why subgroup reductions are not in use ('' when they are), for reports. */
  subgroupNote = '';
  /** Workgroup shape of the blocked matmul, in 4x4 blocks (x along N, y along M); tunable for benchmarks. */
  matmulWorkgroup: [number, number] = [16, 4];
  /**
   * Counters for tests and benchmarks (the dispatch economy: take differences around a training step).
   * liveBytes/peakBytes: bytes of buffers in use (tensors and temporaries), not counting the reuse pool;
   * buffersCreated/bindGroupsCreated: GPU objects created (0 per step once warm: pools and caches serve them);
   * readBytes/reads: bytes and number of device-to-host readbacks.
   */
  readonly stats = {
    dispatches: 0,
    submits: 0,
    merged: 0,
    pipelines: 0,
    liveBytes: 0,
    peakBytes: 0,
    buffersCreated: 0,
    bindGroupsCreated: 0,
    readBytes: 0,
    reads: 0,
  };

  private readonly device: GPUDevice;
  private readonly keepAlive: GPU;
  private readonly deviceBindingBytes: number;
  private readonly maxTensorBytes: number;
  private readonly poolLimit: number;
  private readonly maxGroups: number;
  private readonly ring: GPUBuffer;
  private readonly ringData = new ArrayBuffer(SLOT_BYTES * RING_SLOTS);
  private readonly ringView = new DataView(this.ringData);
  private slot = 0;
  private enc?: GPUCommandEncoder;
  private pass?: GPUComputePassEncoder;
  private readonly variants = new Map<string, Variant>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufIds = new WeakMap<GPUBuffer, number>();
  private nextBufId = 1;
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly staging = new Map<number, GPUBuffer[]>();
  private pooled = 0;
  private graveyard: GPUBuffer[] = [];
  private readonly freqCache = new Map<string, GPUBuffer>();
  private pending: Promise<void>[] = [];
  private fatal?: BackendError;
  private destroyed = false;
  private readonly software: boolean;
  private readonly wantReductions: Reductions | 'auto';
  /** The adapter's smallest subgroup size (WebGPU guarantees at least 4). */
  private readonly subgroupMin: number;

  constructor(dev: WebGPUDevice, opts: WebGPUBackendOptions = {}) {
    super();
    this.device = dev.device;
    this.keepAlive = dev.gpu;
    const lim = this.device.limits;
    this.deviceBindingBytes = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
    const want = Math.min(opts.maxBindingBytes ?? Infinity, this.deviceBindingBytes);
    if (!(want >= 64)) throw new BackendError(`maxBindingBytes must be at least 64 (got ${opts.maxBindingBytes})`, 'webgpu');
    this.maxBindingBytes = Math.floor(want / 16) * 16;
    this.chunkElems = this.maxBindingBytes / 4;
    this.maxTensorBytes = opts.maxTensorBytes ?? Infinity;
    this.poolLimit = opts.poolBytes ?? 256 * 1024 * 1024;
    this.features = dev.features;
    this.kernels = chooseKernels(opts.kernels, dev.software, lim);
    this.software = dev.software;
    this.wantReductions = requestedReductions(opts.reductions);
    this.subgroupMin = Math.max(4, (dev.adapter as GPUAdapter & { info?: GPUAdapterInfo }).info?.subgroupMinSize ?? 4);
    this.matmulKernel = opts.matmulKernel ?? (this.kernels === 'tiled' ? 'tiled' : 'blocked');
    if (opts.matmulF16 && !dev.features.has('shader-f16'))
      throw new BackendError(`matmulF16 needs the 'shader-f16' feature, which this adapter (${dev.info}) lacks`, 'webgpu');
    this.matmulF16 = !!opts.matmulF16;
    this.maxGroups = lim.maxComputeWorkgroupsPerDimension;
    this.info = `${dev.info}; ${this.kernels} kernels${dev.software ? ' (software adapter)' : ''}; max binding ${(lim.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, max buffer ${(lim.maxBufferSize / 2 ** 20).toFixed(0)} MiB${this.maxBindingBytes < this.deviceBindingBytes ? `, tensors split at ${this.maxBindingBytes} bytes` : ''}`;
    this.ring = this.device.createBuffer({
      size: SLOT_BYTES * RING_SLOTS,
      usage: USAGE.UNIFORM | USAGE.COPY_DST,
      label: 'latentlm params ring',
    });
    this.device.lost.then((i) => {
      if (!this.destroyed) this.fatal ??= new BackendError(`WebGPU device lost (${i.reason}): ${i.message}`, 'webgpu');
    });
    const onError = (ev: Event) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.fatal ??= new BackendError(`WebGPU error: ${e?.message ?? String(e)}`, 'webgpu');
    };
    if (typeof this.device.addEventListener === 'function') this.device.addEventListener('uncapturederror', onError);
    else (this.device as unknown as { onuncapturederror: unknown }).onuncapturederror = onError;
  }

  /**
   * Settles the reduction variant: subgroup reductions are used only when requested (or auto on a hardware
   * adapter), the device has `subgroups`, and a probe kernel confirms what kernels/reduce_subgroup.wgsl assumes
   * (full subgroups laid out along local_invocation_index) and gets the right sums, at both workgroup sizes the
   * reducing kernels use. Throws when 'subgroup' was forced and cannot be had.
   */
  async chooseReductions(): Promise<void> {
    const want = this.wantReductions;
    let why = '';
    if (!this.features.has('subgroups')) why = 'the adapter has no `subgroups` feature';
    else if (want === 'subgroup' || (want === 'auto' && !this.software)) why = await this.probeSubgroups();
    else why = "not chosen on a software adapter (force with reductions: 'subgroup')";
    this.reductions = chooseReductions(want === 'auto' && this.software ? 'workgroup' : want, this.software, why);
    this.subgroupNote = this.reductions === 'subgroup' ? '' : why;
    (this as { info: string }).info += `; ${this.reductions} reductions`;
  }

  /** Runs kernels/elementwise.wgsl's subgroupProbe at WG 128 and 256; '' when both pass, else what failed. */
  private async probeSubgroups(): Promise<string> {
    const out = this.alloc(8, 'f32', 'subgroup probe');
    const prev = this.reductions;
    try {
      this.reductions = 'subgroup';
      const results: string[] = [];
      for (const wg of [128, 256]) {
        this.run({ ...K.subgroupProbe, wg }, {}, { out: { b0: this.T(out, 'probe').chunks[0], split: NO_SPLIT } }, [1, 1]);
        const [bad, sum, mx, lse, n] = (await this.read(out, 0, 5)) as Float32Array;
        const want = [0, (wg * (wg - 1)) / 2, wg - 1, Math.log(wg)];
        if (bad !== 0) results.push(`WG ${wg}: ${bad} invocations outside a full, linearly laid out subgroup (size ${n})`);
        else if (sum !== want[1] || mx !== want[2] || !(Math.abs(lse - want[3]) < 1e-5))
          results.push(`WG ${wg}: reductions gave ${sum}, ${mx}, ${lse} instead of ${want.slice(1).join(', ')}`);
      }
      return results.join('; ');
    } catch (e) {
      // A kernel that fails to build or run here must not poison the backend: the probe is its first work.
      this.fatal = undefined;
      return `the probe kernel failed: ${(e as Error).message.split('\n')[0]}`;
    } finally {
      this.reductions = prev;
      this.free(out);
    }
  }

  // ================================================================ plumbing

  /** Throws the recorded device loss / GPU error, or that the backend was destroyed. */
  private live(what: string): void {
    if (this.destroyed) throw new BackendError(`webgpu backend used after destroy() (${what})`, 'webgpu');
    if (this.fatal) throw this.fatal;
  }

  private T(t: Tensor, what: string): GpuTensor {
    if (!(t instanceof GpuTensor))
      throw new BackendError(`${what}: tensor '${t?.label}' was not allocated by this webgpu backend`, 'webgpu');
    if (t.freed) throw new BackendError(`${what}: tensor '${t.label}' was freed`, 'webgpu');
    return t;
  }

  private bufId(b: GPUBuffer): number {
    let id = this.bufIds.get(b);
    if (id === undefined) this.bufIds.set(b, (id = this.nextBufId++));
    return id;
  }

  private encoder(): GPUCommandEncoder {
    if (!this.enc) {
      // Validation and out-of-memory errors of the whole batch are caught in scopes popped by flush().
      this.device.pushErrorScope('validation');
      this.device.pushErrorScope('out-of-memory');
      this.enc = this.device.createCommandEncoder();
    }
    return this.enc;
  }
  private computePass(): GPUComputePassEncoder {
    return (this.pass ??= this.encoder().beginComputePass());
  }
  /** An encoder with no open compute pass, for copies and clears. */
  private copyEncoder(): GPUCommandEncoder {
    const e = this.encoder();
    this.pass?.end();
    this.pass = undefined;
    return e;
  }

  private watch(p: Promise<GPUError | null>, what: string): void {
    this.pending.push(
      p.then((e) => {
        if (e) this.fatal ??= new BackendError(`${what}: ${e.message}`, 'webgpu');
      }),
    );
  }

  /** Submits everything encoded so far. */
  private flush(): void {
    if (!this.enc) return;
    this.pass?.end();
    this.pass = undefined;
    if (this.slot) this.device.queue.writeBuffer(this.ring, 0, this.ringData, 0, this.slot * SLOT_BYTES);
    this.device.queue.submit([this.enc.finish()]);
    this.enc = undefined;
    this.slot = 0;
    this.stats.submits++;
    this.watch(this.device.popErrorScope(), 'WebGPU out of memory while running queued ops');
    this.watch(this.device.popErrorScope(), 'WebGPU validation error in queued ops');
    for (const b of this.graveyard) b.destroy();
    this.graveyard = [];
  }

  private async settle(): Promise<void> {
    const p = this.pending;
    this.pending = [];
    await Promise.all(p);
    if (this.fatal) throw this.fatal;
  }

  /** A GPUBuffer of `bytes` (multiple of 16) filled with zeros: from the pool (cleared) or freshly created. */
  private buffer(bytes: number, label: string): GPUBuffer {
    this.stats.liveBytes += bytes;
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.liveBytes);
    const list = this.pool.get(bytes);
    if (list?.length) {
      const b = list.pop()!;
      this.pooled -= bytes;
      this.copyEncoder().clearBuffer(b);
      return b;
    }
    this.device.pushErrorScope('out-of-memory');
    const b = this.device.createBuffer({ size: bytes, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST, label });
    this.stats.buffersCreated++;
    this.watch(this.device.popErrorScope(), `WebGPU out of memory allocating '${label}' (${bytes} bytes)`);
    return b;
  }

  private release(b: GPUBuffer): void {
    this.stats.liveBytes -= b.size;
    if (this.pooled + b.size <= this.poolLimit) {
      const list = this.pool.get(b.size) ?? [];
      list.push(b);
      this.pool.set(b.size, list);
      this.pooled += b.size;
      return;
    }
    // Cached bind groups would keep the buffer alive; drop them (rarely happens: pool overflow).
    const id = `#${this.bufId(b)}#`;
    for (const k of [...this.bindGroups.keys()]) if (k.includes(id)) this.bindGroups.delete(k);
    if (this.enc) this.graveyard.push(b);
    else b.destroy();
  }

  // ---------------------------------------------------------------- pipelines and dispatch

  private variant(
    key: string,
    spec: KernelSpec,
    consts: Record<string, number | boolean | string>,
    subst: Record<string, string> | undefined,
    libs: string[],
    args: Record<string, Arg | undefined>,
    extraParams: [string, ParamType][] = [],
  ): Variant {
    const hit = this.variants.get(key);
    if (hit) return hit;
    const fields: [string, ParamType][] = [
      ...spec.params,
      ...extraParams,
      ...spec.bufs.map((b): [string, ParamType] => [`${b.name}_split`, 'u32']),
    ];
    if (fields.length * 4 > SLOT_BYTES) throw new Error(`kernel ${spec.file}/${spec.section}: too many parameters`);
    const lines: string[] = [];
    if (Array.isArray(spec.wg)) lines.push(`const WG_X: u32 = ${spec.wg[0]}u;`, `const WG_Y: u32 = ${spec.wg[1]}u;`);
    else lines.push(`const WG: u32 = ${spec.wg}u;`);
    for (const [k, v] of Object.entries(consts))
      lines.push(
        typeof v === 'string' ? `alias ${k} = ${v};` : typeof v === 'boolean' ? `const ${k}: bool = ${v};` : `const ${k}: u32 = ${v}u;`,
      );
    lines.push(`struct Params {\n${fields.map(([n, t]) => `  ${n}: ${t},`).join('\n')}\n}`);
    lines.push('@group(0) @binding(0) var<uniform> P: Params;');
    const entries: GPUBindGroupLayoutEntry[] = [
      {
        binding: 0,
        visibility: STAGE_COMPUTE,
        buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: Math.ceil((fields.length * 4) / 16) * 16 },
      },
    ];
    const owner = new Map<GPUBuffer, string>(); // alias detection: buffer -> buf name holding its binding
    let binding = 1;
    for (const b of spec.bufs) {
      const a = args[b.name];
      const n = b.name;
      const st = b.type ?? 'f32';
      if (!a) {
        lines.push(`fn ld_${n}(i: u32) -> ${st} { return ${st}(0); }`);
        if (st === 'f32') lines.push(`fn ld4_${n}(i: u32) -> vec4<f32> { return vec4<f32>(0.0); }`);
        if (b.rw) lines.push(`fn st_${n}(i: u32, v: ${st}) {}`);
        continue;
      }
      const alias = owner.get(a.b0);
      if (alias) {
        // The same tensor bound twice: one binding (writable aliases must not be bound twice), forwarding accessors.
        lines.push(`fn ld_${n}(i: u32) -> ${st} { return ld_${alias}(i); }`);
        if (st === 'f32') lines.push(`fn ld4_${n}(i: u32) -> vec4<f32> { return ld4_${alias}(i); }`);
        if (b.rw) lines.push(`fn st_${n}(i: u32, v: ${st}) { st_${alias}(i, v); }`);
        continue;
      }
      owner.set(a.b0, n);
      if (a.b1) owner.set(a.b1, n);
      const rw = b.rw || spec.bufs.some((o) => o.rw && o.name !== n && args[o.name]?.b0 === a.b0);
      if (a.bf16) {
        // Two bf16 values per u32 (element i in the low half when i is even); bf16 -> f32 is a 16-bit shift.
        if (rw) throw new BackendError(`${spec.file}/${spec.section}: '${n}' is a bf16 tensor, which ops only read`, 'webgpu');
        for (let j = 0; j < (a.b1 ? 2 : 1); j++) {
          lines.push(`@group(0) @binding(${binding}) var<storage, read> ${n}_${j}: array<u32>;`);
          entries.push({ binding: binding++, visibility: STAGE_COMPUTE, buffer: { type: 'read-only-storage' } });
        }
        const word = a.b1 ? `select(${n}_1[(i - P.${n}_split) >> 1u], ${n}_0[i >> 1u], i < P.${n}_split)` : `${n}_0[i >> 1u]`;
        lines.push(
          `fn ld_${n}(i: u32) -> f32 { let w = ${word}; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }`,
        );
        lines.push(`fn ld4_${n}(i: u32) -> vec4<f32> { return vec4<f32>(ld_${n}(i), ld_${n}(i + 1u), ld_${n}(i + 2u), ld_${n}(i + 3u)); }`);
        continue;
      }
      const et: ElemType = a.vec4 ? 'vec4' : st;
      const wt = et === 'vec4' ? 'vec4<f32>' : et;
      const access = rw ? 'read_write' : 'read';
      for (let j = 0; j < (a.b1 ? 2 : 1); j++) {
        lines.push(`@group(0) @binding(${binding}) var<storage, ${access}> ${n}_${j}: array<${wt}>;`);
        entries.push({ binding: binding++, visibility: STAGE_COMPUTE, buffer: { type: rw ? 'storage' : 'read-only-storage' } });
      }
      const sp = `P.${n}_split`;
      if (et === 'vec4') {
        if (rw) throw new Error('vec4 bindings are read-only');
        if (a.b1) {
          lines.push(`fn ld4_${n}(i: u32) -> vec4<f32> { if (i < ${sp}) { return ${n}_0[i >> 2u]; } return ${n}_1[(i - ${sp}) >> 2u]; }`);
        } else lines.push(`fn ld4_${n}(i: u32) -> vec4<f32> { return ${n}_0[i >> 2u]; }`);
        lines.push(`fn ld_${n}(i: u32) -> f32 { return ld4_${n}(i & ~3u)[i & 3u]; }`);
      } else {
        if (a.b1) lines.push(`fn ld_${n}(i: u32) -> ${st} { if (i < ${sp}) { return ${n}_0[i]; } return ${n}_1[i - ${sp}]; }`);
        else lines.push(`fn ld_${n}(i: u32) -> ${st} { return ${n}_0[i]; }`);
        if (st === 'f32')
          lines.push(
            `fn ld4_${n}(i: u32) -> vec4<f32> { return vec4<f32>(ld_${n}(i), ld_${n}(i + 1u), ld_${n}(i + 2u), ld_${n}(i + 3u)); }`,
          );
        if (rw) {
          if (a.b1) lines.push(`fn st_${n}(i: u32, v: ${st}) { if (i < ${sp}) { ${n}_0[i] = v; } else { ${n}_1[i - ${sp}] = v; } }`);
          else lines.push(`fn st_${n}(i: u32, v: ${st}) { ${n}_0[i] = v; }`);
        }
      }
    }
    let body = sectionOf(spec.file, spec.section);
    // Placeholders are whole lines `$NAME` (so comments may mention them).
    for (const [k, v] of Object.entries(subst ?? {})) body = body.replace(new RegExp(`^[ \\t]*\\$${k}[ \\t]*$`, 'm'), () => `  ${v}`);
    const code = [
      ...(spec.enable ?? []).map((e) => `enable ${e};`),
      lines.join('\n'),
      body,
      ...libs.map((l) => KERNEL_FILES[l] ?? ''),
    ].join('\n');
    const label = `${spec.file}/${spec.section} ${key}`;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label });
    const layout = this.device.createBindGroupLayout({ entries, label });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
      label,
    });
    this.watch(this.device.popErrorScope(), `WGSL kernel ${spec.file}.wgsl/${spec.section} failed to build`);
    this.stats.pipelines++;
    const v: Variant = { pipeline, layout, fields, uniformBytes: Math.ceil((fields.length * 4) / 16) * 16 };
    this.variants.set(key, v);
    return v;
  }

  /**
   * Encodes one dispatch of `spec` with `params` and the given bindings. `consts`/`subst` specialise the WGSL;
   * the variant key covers them and the binding layout (split pairs, vec4 views, aliases, absent optionals).
   */
  private run(
    spec: KernelSpec,
    params: Record<string, number>,
    args: Record<string, Arg | undefined>,
    grid: [number, number, number?],
    consts: Record<string, number | boolean | string> = {},
    subst?: Record<string, string>,
    libs: string[] = [],
    extraParams: [string, ParamType][] = [],
  ): void {
    if (grid[0] === 0 || grid[1] === 0) return;
    if (spec.reduce) {
      // The reduction library in use; its constants go into the variant key with the kernel's own.
      const sub = this.reductions === 'subgroup';
      libs = [...libs, sub ? 'reduce_subgroup' : 'reduce_workgroup'];
      if (sub) {
        consts = { ...consts, SG_MIN: this.subgroupMin, SG_LEVELS: subgroupLevels(spec.wg as number, this.subgroupMin) };
        spec = { ...spec, enable: [...(spec.enable ?? []), 'subgroups'] };
      }
    }
    if (grid[0] > this.maxGroups || grid[1] > this.maxGroups)
      throw new BackendError(`${spec.file}/${spec.section}: dispatch of ${grid.join('x')} workgroups exceeds the device limit`, 'webgpu');
    const layoutKey = spec.bufs
      .map((b) => {
        const a = args[b.name];
        if (!a) return '-';
        const alias = spec.bufs.find((o) => o !== b && args[o.name]?.b0 === a.b0);
        return `${a.bf16 ? 'h' : a.vec4 ? 'v' : 's'}${a.b1 ? 2 : 1}${alias ? `=${alias.name}` : ''}`;
      })
      .join(',');
    const key = `${spec.file}/${spec.section}|wg${spec.wg}|${JSON.stringify(consts)}|${subst ? JSON.stringify(subst) : ''}|${layoutKey}|${libs.join(',')}`;
    if (this.slot === RING_SLOTS) this.flush();
    const pass = this.computePass();
    const v = this.variant(key, spec, consts, subst, libs, args, extraParams);
    // Parameters into this dispatch's ring slot.
    const base = this.slot * SLOT_BYTES;
    v.fields.forEach(([name, t], i) => {
      let x: number;
      if (name.endsWith('_split')) {
        const a = args[name.slice(0, -6)];
        x = a?.b1 ? a.split : NO_SPLIT;
      } else {
        x = params[name];
        if (x === undefined || Number.isNaN(x)) throw new Error(`${spec.section}: parameter ${name} missing`);
      }
      if (t === 'f32') this.ringView.setFloat32(base + i * 4, x, true);
      else if (t === 'i32') this.ringView.setInt32(base + i * 4, x, true);
      else this.ringView.setUint32(base + i * 4, x >>> 0, true);
    });
    // Bind group: cached per (variant, buffers).
    const bufs: GPUBuffer[] = [];
    const seen = new Set<GPUBuffer>();
    for (const b of spec.bufs) {
      const a = args[b.name];
      if (!a || seen.has(a.b0)) continue;
      seen.add(a.b0);
      bufs.push(a.b0);
      if (a.b1) seen.add(a.b1), bufs.push(a.b1);
    }
    const bgKey = `${key}|${bufs.map((b) => `#${this.bufId(b)}#`).join('')}`;
    let bg = this.bindGroups.get(bgKey);
    if (!bg) {
      bg = this.device.createBindGroup({
        layout: v.layout,
        entries: [
          { binding: 0, resource: { buffer: this.ring, offset: 0, size: v.uniformBytes } },
          ...bufs.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ],
      });
      this.bindGroups.set(bgKey, bg);
      this.stats.bindGroupsCreated++;
    }
    pass.setPipeline(v.pipeline);
    pass.setBindGroup(0, bg, [base]);
    pass.dispatchWorkgroups(grid[0], grid[1], grid[2] ?? 1);
    this.slot++;
    this.stats.dispatches++;
  }

  /** Workgroup grid covering `n` workgroups (2-D beyond the per-dimension limit; kernels flatten it). */
  private grid(groups: number): [number, number] {
    if (groups <= 0) return [0, 0];
    const x = Math.min(groups, this.maxGroups);
    return [x, cdiv(groups, x)];
  }

  /**
   * Rows r < nRows of tensor t, row r being elements [off + r*stride, +len): grouped by the chunk holding each
   * row's first element. A row may run into the next chunk (`pair`), never further (len <= chunkElems).
   */
  private pieces(t: GpuTensor, off: number, stride: number, len: number, nRows: number, what: string): Piece[] {
    if (nRows <= 0) return [];
    const last = off + (nRows - 1) * stride + len;
    if (off < 0 || last > t.size)
      throw new BackendError(`${what}: range [${off}, ${last}) is outside tensor '${t.label}' (${t.size} elements)`, 'webgpu');
    if (!t.split) return [{ lo: 0, hi: nRows, chunk: 0, pair: false }];
    const ce = t.chunkElems;
    if (len > ce)
      throw new BackendError(
        `${what}: rows of ${len} elements of tensor '${t.label}' exceed one binding (${ce} elements); this op cannot split them`,
        'webgpu',
      );
    const out: Piece[] = [];
    for (let r = 0; r < nRows; ) {
      const c = Math.floor((off + r * stride) / ce);
      let end = stride === 0 ? nRows : Math.min(nRows, Math.ceil(((c + 1) * ce - off) / stride));
      if (end <= r) end = r + 1;
      out.push({ lo: r, hi: end, chunk: c, pair: off + (end - 1) * stride + len > (c + 1) * ce });
      r = end;
    }
    return out;
  }

  private argOf(t: GpuTensor, p: Piece, vec4 = false): Arg {
    const bf16 = t.dtype === 'bf16';
    if (bf16) vec4 = false;
    return p.pair
      ? { b0: t.chunks[p.chunk], b1: t.chunks[p.chunk + 1], split: t.chunkLen(p.chunk), vec4, bf16 }
      : { b0: t.chunks[p.chunk], split: NO_SPLIT, vec4, bf16 };
  }

  /**
   * Runs `body` with `whole(t, rw)` giving a binding of the entire tensor: the buffer itself, or, for a split
   * tensor, a temporary contiguous copy (copied back afterwards when written) if the device can bind it.
   */
  private withWhole(what: string, body: (whole: (t: GpuTensor, rw: boolean) => Arg) => void): void {
    const temps = new Map<GpuTensor, { buf: GPUBuffer; rw: boolean }>();
    const whole = (t: GpuTensor, rw: boolean): Arg => {
      const bf16 = t.dtype === 'bf16',
        eb = elemBytes(t.dtype);
      if (!t.split) return { b0: t.chunks[0], split: NO_SPLIT, bf16 };
      let tmp = temps.get(t);
      if (!tmp) {
        const bytes = bytesOf(t.size, eb);
        if (bytes > this.deviceBindingBytes)
          throw new BackendError(
            `${what}: tensor '${t.label}' (${t.size * eb} bytes) is larger than one binding (${this.deviceBindingBytes} bytes) and ${what} does not split tensors`,
            'webgpu',
          );
        if (bf16 && rw) throw new BackendError(`${what}: '${t.label}' is a bf16 tensor, which ops only read`, 'webgpu');
        const buf = this.buffer(bytes, `${t.label} (merged)`);
        const e = this.copyEncoder();
        // chunk byte lengths are multiples of 4 (chunks hold an even number of bf16 elements; buffers round up)
        t.chunks.forEach((c, i) => e.copyBufferToBuffer(c, 0, buf, i * t.chunkElems * eb, Math.ceil((t.chunkLen(i) * eb) / 4) * 4));
        temps.set(t, (tmp = { buf, rw }));
        this.stats.merged++;
      }
      tmp.rw ||= rw;
      return { b0: tmp.buf, split: NO_SPLIT, bf16 };
    };
    body(whole);
    for (const [t, { buf, rw }] of temps) {
      if (rw) {
        const e = this.copyEncoder();
        t.chunks.forEach((c, i) => e.copyBufferToBuffer(buf, i * t.chunkElems * 4, c, 0, t.chunkLen(i) * 4));
      }
      this.release(buf);
    }
  }

  /** How many GPUBuffers hold tensor t (1 unless it is larger than maxBindingBytes). */
  chunkCount(t: Tensor): number {
    return this.T(t, 'chunkCount').chunks.length;
  }

  // ================================================================ memory

  alloc(size: number, dtype: DType = 'f32', label = ''): Tensor {
    this.live('alloc');
    if (!Number.isInteger(size) || size < 0)
      throw new BackendError(`alloc '${label}': size must be a non-negative integer (got ${size})`, 'webgpu');
    if (dtype !== 'f32' && dtype !== 'i32' && dtype !== 'bf16')
      throw new BackendError(`alloc '${label}': unknown dtype ${dtype}`, 'webgpu');
    const eb = elemBytes(dtype);
    if (size * eb > this.maxTensorBytes)
      throw new BackendError(`alloc '${label}': ${size * eb} bytes exceed maxTensorBytes (${this.maxTensorBytes})`, 'webgpu');
    // a chunk holds the same bytes whatever the dtype: twice the elements for bf16 (an even count)
    const ce = this.chunkElems * (4 / eb);
    const n = Math.max(1, cdiv(size, ce));
    const chunks: GPUBuffer[] = [];
    for (let c = 0; c < n; c++) chunks.push(this.buffer(bytesOf(Math.min(ce, size - c * ce), eb), n > 1 ? `${label}[${c}]` : label));
    return new GpuTensor(size, dtype, label, chunks, ce);
  }

  free(t: Tensor): void {
    if (this.destroyed) return;
    const g = this.T(t, 'free');
    g.freed = true;
    for (const b of g.chunks) this.release(b);
  }

  protected kernelUpload(t: Tensor, data: Float32Array | Int32Array, offset: number): void {
    this.live('upload');
    const g = this.T(t, 'upload');
    // queue.writeBuffer runs before the next submit, i.e. before ops already encoded: submit those first.
    this.flush();
    if (g.dtype === 'bf16') {
      this.uploadBf16(g, data, offset);
      return;
    }
    for (const p of this.pieces(g, offset, 1, 1, data.length, 'upload')) {
      const start = offset + p.lo;
      this.device.queue.writeBuffer(
        g.chunks[p.chunk],
        (start - p.chunk * g.chunkElems) * 4,
        data as Float32Array<ArrayBuffer>,
        p.lo,
        p.hi - p.lo,
      );
    }
  }

  /** bf16 upload: rounded to nearest even and packed in pairs; writes are whole u32s, so offsets must be even. */
  private uploadBf16(g: GpuTensor, data: Float32Array | Int32Array, offset: number): void {
    if (offset % 2 !== 0 || (data.length % 2 !== 0 && offset + data.length !== g.size)) {
      throw new BackendError(`upload to bf16 tensor '${g.label}': offset and length must be even (or reach the end)`, 'webgpu');
    }
    const bits = toBf16Bits(data instanceof Float32Array ? data : Float32Array.from(data));
    for (const p of this.pieces(g, offset, 1, 1, data.length, 'upload')) {
      const n = p.hi - p.lo;
      const words = new Uint16Array(n + (n % 2)); // the buffer is rounded up to 16 bytes, so the pad stays inside
      words.set(bits.subarray(p.lo, p.hi));
      this.device.queue.writeBuffer(
        g.chunks[p.chunk],
        (offset + p.lo - p.chunk * g.chunkElems) * 2,
        words.buffer as ArrayBuffer,
        0,
        words.byteLength,
      );
    }
  }

  /**
   * Copies elements [from, from+count) of `g` (element size `eb` bytes) into one mappable staging buffer, waits for it
   * and returns its bytes. Copy sizes are rounded up to whole u32s (WebGPU's copy granularity; buffers are padded).
   * A failed map (lost device, OOM) becomes a BackendError naming the tensor instead of a hang.
   */
  private async readStaged(g: GpuTensor, from: number, count: number, eb: number): Promise<ArrayBuffer> {
    const size = Math.ceil((count * eb) / 4) * 4;
    const staging = this.stagingBuffer(size);
    this.stats.reads++;
    this.stats.readBytes += size;
    const e = this.copyEncoder();
    for (const p of this.pieces(g, from, 1, 1, count, 'read')) {
      e.copyBufferToBuffer(
        g.chunks[p.chunk],
        (from + p.lo - p.chunk * g.chunkElems) * eb,
        staging,
        p.lo * eb,
        Math.ceil(((p.hi - p.lo) * eb) / 4) * 4,
      );
    }
    this.flush();
    try {
      await staging.mapAsync(MAP_MODE_READ);
    } catch (err) {
      await this.settle().catch(() => {});
      throw this.fatal ?? new BackendError(`read of '${g.label}' failed: ${(err as Error).message}`, 'webgpu');
    }
    const bytes = staging.getMappedRange(0, size).slice(0);
    staging.unmap();
    this.returnStaging(staging);
    await this.settle();
    return bytes;
  }

  /**
   * A mappable buffer of at least `size` bytes for one readback: reused (readbacks of a training step are the
   * same few sizes every step, so once warm none is created), rounded up to a power of two from 256 bytes.
   */
  private stagingBuffer(size: number): GPUBuffer {
    const cap = Math.max(256, 2 ** Math.ceil(Math.log2(size)));
    const list = this.staging.get(cap);
    if (list?.length) return list.pop()!;
    this.stats.buffersCreated++;
    return this.device.createBuffer({ size: cap, usage: USAGE.MAP_READ | USAGE.COPY_DST, label: `readback ${cap}` });
  }
  /** Keeps a staging buffer for the next readback of its size (a few per size; large ones are dropped). */
  private returnStaging(b: GPUBuffer): void {
    const list = this.staging.get(b.size) ?? [];
    if (list.length >= 4 || b.size > STAGING_KEEP_BYTES) {
      b.destroy();
      return;
    }
    list.push(b);
    this.staging.set(b.size, list);
  }

  async read(t: Tensor, offset = 0, length?: number): Promise<Float32Array | Int32Array> {
    this.live('read');
    const g = this.T(t, 'read');
    const len = length ?? g.size - offset;
    if (offset < 0 || len < 0 || offset + len > g.size)
      throw new BackendError(`read of ${len} elements at ${offset} is outside tensor '${g.label}' (${g.size})`, 'webgpu');
    if (len === 0) {
      await this.sync();
      return g.dtype === 'i32' ? new Int32Array(0) : new Float32Array(0);
    }
    if (g.dtype === 'i32') return new Int32Array(await this.readStaged(g, offset, len, 4));
    if (g.dtype === 'f32') return new Float32Array(await this.readStaged(g, offset, len, 4));
    // bf16: read whole u32s around the range (chunk borders are even, buffers round up), widen to f32.
    const lo = offset & ~1,
      hi = (offset + len + 1) & ~1;
    const half = new Uint16Array(await this.readStaged(g, lo, Math.min(hi, g.size) - lo, 2), 0, hi - lo);
    const out = new Float32Array(len);
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < len; i++) bits[i] = half[offset - lo + i] << 16;
    return out;
  }

  zero(t: Tensor, offset = 0, length?: number): void {
    this.live('zero');
    const g = this.T(t, 'zero');
    const len = length ?? g.size - offset;
    if (g.dtype === 'bf16' && (offset !== 0 || len !== g.size))
      throw new BackendError(`zero of bf16 tensor '${g.label}': only the whole tensor`, 'webgpu');
    const eb = elemBytes(g.dtype);
    const ps = this.pieces(g, offset, 1, 1, len, 'zero');
    if (!ps.length) return;
    const e = this.copyEncoder();
    for (const p of ps)
      e.clearBuffer(g.chunks[p.chunk], (offset + p.lo - p.chunk * g.chunkElems) * eb, Math.ceil(((p.hi - p.lo) * eb) / 4) * 4);
  }

  kernelCopy2d({ src, dst, rows, cols, srcOff, srcStride, dstOff, dstStride, accumulate }: KernelArgs['copy2d']): void {
    this.live('copy2d');
    const s = this.T(src, 'copy2d'),
      d = this.T(dst, 'copy2d');
    if (rows <= 0 || cols <= 0) return;
    const sp = this.pieces(s, srcOff, srcStride, cols, rows, 'copy2d src');
    const dp = this.pieces(d, dstOff, dstStride, cols, rows, 'copy2d dst');
    for (const seg of partition([sp, dp], rows)) {
      const [a, b] = seg.pieces;
      if (s === d && (a.chunk !== b.chunk || a.pair !== b.pair))
        throw new BackendError(`copy2d within split tensor '${s.label}' across chunks is not supported`, 'webgpu');
      this.run(
        K.copy2d,
        {
          rLo: seg.lo,
          rHi: seg.hi,
          cols,
          srcOff: srcOff - a.chunk * s.chunkElems,
          srcStride,
          dstOff: dstOff - b.chunk * d.chunkElems,
          dstStride,
          accumulate: accumulate ? 1 : 0,
        },
        { src: this.argOf(s, a), dst: this.argOf(d, b) },
        this.grid(cdiv((seg.hi - seg.lo) * cols, 64)),
      );
    }
  }

  async sync(): Promise<void> {
    this.live('sync');
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.settle();
  }

  destroy(): void {
    if (this.destroyed) return;
    try {
      this.flush();
    } catch {
      /* the device may already be gone */
    }
    this.destroyed = true;
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    for (const b of this.freqCache.values()) b.destroy();
    for (const list of this.staging.values()) for (const b of list) b.destroy();
    this.staging.clear();
    this.bindGroups.clear();
    this.device.destroy();
    void this.keepAlive;
  }

  // ================================================================ elementwise (the MAP_OPS table)

  private map(op: string, n: number, tensors: Record<string, [Tensor, number]>, params: Record<string, number> = {}): void {
    this.live(op);
    const def = MAP_OPS[op];
    if (n <= 0) return;
    const names = Object.keys(def.args);
    const ts = names.map((k) => this.T(tensors[k][0], op));
    const offs = names.map((k) => tensors[k][1]);
    const lists = ts.map((t, i) => this.pieces(t, offs[i], 1, 1, n, `${op} '${names[i]}'`));
    const spec: KernelSpec = {
      file: 'elementwise',
      section: 'map',
      wg: 64,
      params: def.params,
      bufs: names.map((k) => ({ name: k, rw: def.args[k] !== 'r' })),
    };
    const subst = {
      LOADS: names
        .filter((k) => def.args[k] !== 'w')
        .map((k) => `let r_${k} = ld_${k}(P.o_${k} + i);`)
        .join('\n  '),
      BODY: `${names
        .filter((k) => def.args[k] !== 'r')
        .map((k) => `var w_${k}: f32;`)
        .join(' ')}\n  ${def.body}`,
      STORES: names
        .filter((k) => def.args[k] !== 'r')
        .map((k) => `st_${k}(P.o_${k} + i, w_${k});`)
        .join('\n  '),
    };
    const extra: [string, ParamType][] = [['n', 'u32'], ...names.map((k): [string, ParamType] => [`o_${k}`, 'u32'])];
    for (const seg of partition(lists, n)) {
      const p: Record<string, number> = { ...params, n: seg.hi - seg.lo };
      const args: Record<string, Arg> = {};
      names.forEach((k, i) => {
        const pc = seg.pieces[i];
        p[`o_${k}`] = offs[i] + seg.lo - pc.chunk * ts[i].chunkElems;
        args[k] = this.argOf(ts[i], pc);
      });
      // Aliased tensors (e.g. add(a, b, a)) must land in the same chunk to share one binding.
      names.forEach((k, i) =>
        names.forEach((k2, j) => {
          if (j > i && ts[i] === ts[j] && seg.pieces[i].chunk !== seg.pieces[j].chunk)
            throw new BackendError(`${op}: '${k}' and '${k2}' are the same split tensor at offsets in different chunks`, 'webgpu');
        }),
      );
      this.run(spec, p, args, this.grid(cdiv(seg.hi - seg.lo, 64)), {}, subst, def.libs, extra);
    }
  }

  kernelAdd({ a, b, out, n }: KernelArgs['add']): void {
    this.map('add', n, { a: [a, 0], b: [b, 0], out: [out, 0] });
  }
  kernelAxpy({ alpha, x, y, n, xOff, yOff }: KernelArgs['axpy']): void {
    this.map('axpy', n, { x: [x, xOff], y: [y, yOff] }, { alpha });
  }
  kernelScale({ x, s, n }: KernelArgs['scale']): void {
    this.map('scale', n, { x: [x, 0] }, { s });
  }
  kernelSwiglu({ gate, up, out, n }: KernelArgs['swiglu']): void {
    this.map('swiglu', n, { gate: [gate, 0], up: [up, 0], out: [out, 0] });
  }
  kernelSwigluBackward({ dOut, gate, up, dGate, dUp, n }: KernelArgs['swigluBackward']): void {
    this.map('swigluBackward', n, { dout: [dOut, 0], gate: [gate, 0], up: [up, 0], dgate: [dGate, 0], dup: [dUp, 0] });
  }
  kernelAdamw({ param, grad, m, v, n, bc1, bc2, ...h }: KernelArgs['adamw']): void {
    this.map(
      'adamw',
      n,
      { p: [param, 0], g: [grad, 0], m: [m, 0], v: [v, 0] },
      {
        lr: h.lr,
        beta1: h.beta1,
        beta2: h.beta2,
        oneMinusBeta1: 1 - h.beta1,
        oneMinusBeta2: 1 - h.beta2,
        eps: h.eps,
        wd: h.weightDecay,
        bc1,
        bc2,
        gradScale: h.gradScale,
      },
    );
  }

  kernelSumSquares({ x, n, out, outIndex }: KernelArgs['sumSquares']): void {
    this.live('sumSquares');
    const g = this.T(x, 'sumSquares'),
      o = this.T(out, 'sumSquares');
    const ps = this.pieces(g, 0, 1, 1, n, 'sumSquares');
    // Stage 1: per piece, up to 256 workgroups of 256 each write one partial; stage 2 adds them up in order.
    const groups = ps.map((p) => Math.min(256, Math.max(1, cdiv(p.hi - p.lo, 256 * 8))));
    const total = groups.reduce((s, v) => s + v, 0);
    if (!total) return;
    const part = this.buffer(bytesOf(total), 'sumSquares partials');
    const partArg: Arg = { b0: part, split: NO_SPLIT };
    let pOff = 0;
    ps.forEach((p, i) => {
      this.run(
        K.ssPartial,
        { n: p.hi - p.lo, xOff: p.lo - p.chunk * g.chunkElems, nGroups: groups[i], pOff },
        { x: this.argOf(g, p), part: partArg },
        [groups[i], 1],
      );
      pOff += groups[i];
    });
    this.withWhole('sumSquares', (whole) =>
      this.run(K.ssFinal, { nPart: total, outIndex }, { part: partArg, out: whole(o, true) }, [1, 1]),
    );
    this.release(part);
  }

  kernelSumRows({ dY, dBias, rows, cols }: KernelArgs['sumRows']): void {
    this.live('sumRows');
    const g = this.T(dY, 'sumRows'),
      d = this.T(dBias, 'sumRows');
    this.withWhole('sumRows', (whole) =>
      this.run(K.sumRows, { rows, cols }, { dy: whole(g, false), db: whole(d, true) }, this.grid(cdiv(cols, 64))),
    );
  }

  // ================================================================ embedding

  private embeddingOp(
    which: 'embedding' | 'embeddingBackward',
    ids: Tensor,
    table: Tensor,
    other: Tensor,
    rows: number,
    dim: number,
  ): void {
    this.live(which);
    const it = this.T(ids, which),
      tt = this.T(table, which),
      ot = this.T(other, which);
    if (rows <= 0 || dim <= 0) return;
    const tableRows = Math.floor(tt.size / dim);
    this.withWhole(which, (whole) => {
      const idsArg = whole(it, false);
      const otherArg = whole(ot, which === 'embedding');
      for (const p of this.pieces(tt, 0, dim, dim, tableRows, which)) {
        const params = { rows, dim, lo: p.lo, hi: p.hi, base: p.chunk * tt.chunkElems };
        if (which === 'embedding')
          this.run(K.embedding, params, { ids: idsArg, table: this.argOf(tt, p), out: otherArg }, this.grid(cdiv(rows * dim, 64)));
        else this.run(K.embeddingBackward, params, { ids: idsArg, dout: otherArg, dtable: this.argOf(tt, p) }, this.grid(cdiv(dim, 64)));
      }
    });
  }

  kernelEmbedding({ ids, table, out, rows, dim }: KernelArgs['embedding']): void {
    this.embeddingOp('embedding', ids, table, out, rows, dim);
  }
  kernelEmbeddingBackward({ ids, dOut, dTable, rows, dim }: KernelArgs['embeddingBackward']): void {
    this.embeddingOp('embeddingBackward', ids, dTable, dOut, rows, dim);
  }

  // ================================================================ matmul

  kernelMatmul({
    a,
    b,
    c,
    M,
    N,
    K,
    transA,
    transB,
    accumulate,
    aOff,
    bOff,
    cOff,
    bias: biasT,
    residual,
    swigluGate,
  }: KernelArgs['matmul']): void {
    this.live('matmul');
    const A = this.T(a, 'matmul A'),
      B = this.T(b, 'matmul B'),
      C = this.T(c, 'matmul C');
    const bias = biasT ? this.T(biasT, 'matmul bias') : undefined;
    // The fusions (see kernels/matmul.wgsl; their contract is checked by the op table): the gate shares A's
    // chunking and the residual C's (same sizes, f32).
    const G = swigluGate ? this.T(swigluGate, 'matmul swigluGate') : undefined;
    const R = residual ? this.T(residual, 'matmul residual') : undefined;
    if (M <= 0 || N <= 0) return;
    const kind = this.matmulKernel;
    const naive = kind === 'naive',
      tiled = kind === 'tiled';
    const tile = this.matmulTile,
      f16 = tiled && this.matmulF16;
    // Each operand is a list of rows along one of the dims m, n, k; a split operand cuts that dim into pieces.
    const aP = this.pieces(A, aOff, transA ? M : K, transA ? M : K, transA ? K : M, `matmul A '${A.label}'`);
    const bP = this.pieces(B, bOff, transB ? K : N, transB ? K : N, transB ? N : K, `matmul B '${B.label}'`);
    const cP = this.pieces(C, cOff, N, N, M, `matmul C '${C.label}'`);
    const full = (n: number): Piece[] => (n > 0 ? [{ lo: 0, hi: n, chunk: 0, pair: false }] : []);
    const mSeg = partition([transA ? full(M) : aP, cP], M);
    const nSeg = partition([transB ? bP : full(N)], N);
    const kSeg = partition([transA ? aP : full(K), transB ? full(K) : bP], K);
    const wg: [number, number] = tiled ? [tile.bn / tile.rn, tile.bm / tile.rm] : naive ? [16, 4] : this.matmulWorkgroup;
    const spec: KernelSpec = {
      file: 'matmul',
      section: kind,
      wg,
      params: MATMUL_PARAMS,
      bufs: MATMUL_BUFS,
      enable: f16 ? ['f16'] : undefined,
    };
    const consts: Record<string, number | boolean | string> = {
      TRANS_A: transA,
      TRANS_B: transB,
      HAS_BIAS: !!bias,
      SWIGLU_A: !!G,
      HAS_RES: !!R,
    };
    if (tiled) Object.assign(consts, { BM: tile.bm, BN: tile.bn, BK: tile.bk, RM: tile.rm, RN: tile.rn, TILE: f16 ? 'f16' : 'f32' });
    this.withWhole('matmul', (whole) => {
      const biasArg = bias ? whole(bias, false) : undefined;
      // k pieces outermost: the one starting at k = 0 writes (or accumulates as asked) and adds the bias, the
      // others accumulate onto it.
      for (const ks of kSeg)
        for (const ms of mSeg)
          for (const ns of nSeg) {
            const pa = transA ? ks.pieces[0] : ms.pieces[0];
            const pb = transB ? ns.pieces[0] : ks.pieces[1];
            const pc = ms.pieces[1];
            const aRel = aOff - pa.chunk * A.chunkElems,
              bRel = bOff - pb.chunk * B.chunkElems,
              cRel = cOff - pc.chunk * C.chunkElems;
            const first = ks.lo === 0;
            const vecA = kind === 'blocked' && aRel % 4 === 0 && (transA ? M % 4 === 0 : K % 4 === 0 && ks.lo % 4 === 0);
            const vecB = kind === 'blocked' && bRel % 4 === 0 && (transB ? K % 4 === 0 && ks.lo % 4 === 0 : N % 4 === 0);
            const mBase = naive ? ms.lo : ms.lo & ~3,
              nBase = naive ? ns.lo : ns.lo & ~3;
            const params = {
              M,
              N,
              K,
              aOff: aRel,
              bOff: bRel,
              cOff: cRel,
              mLo: ms.lo,
              mHi: ms.hi,
              nLo: ns.lo,
              nHi: ns.hi,
              kLo: ks.lo,
              kHi: ks.hi,
              mBase,
              nBase,
              accumulate: accumulate || !first ? 1 : 0,
              useBias: bias && first ? 1 : 0,
              useRes: R && first ? 1 : 0,
            };
            const [wx, wy] = spec.wg as [number, number];
            const per = naive ? 1 : 4;
            const grid: [number, number] = tiled
              ? [cdiv(ns.hi - nBase, tile.bn), cdiv(ms.hi - mBase, tile.bm)]
              : [cdiv(cdiv(ns.hi - nBase, per), wx), cdiv(cdiv(ms.hi - mBase, per), wy)];
            const args = {
              a: this.argOf(A, pa, vecA),
              b: this.argOf(B, pb, vecB),
              c: this.argOf(C, pc),
              bias: biasArg,
              g: G && this.argOf(G, pa, vecA),
              r: R && this.argOf(R, pc),
            };
            this.run(spec, params, args, grid, consts, undefined, ['swiglu']);
          }
    });
  }

  // ================================================================ RMSNorm, RoPE

  kernelRmsNorm({ x, w, y, rstd, rows, dim, eps }: KernelArgs['rmsNorm']): void {
    this.live('rmsNorm');
    const [X, W, Y, R] = [x, w, y, rstd].map((t) => this.T(t, 'rmsNorm'));
    this.withWhole('rmsNorm', (whole) =>
      this.run(
        K.rmsNorm,
        { rows, dim, eps },
        { x: whole(X, false), w: whole(W, false), y: whole(Y, true), rstd: whole(R, true) },
        this.grid(rows),
      ),
    );
  }

  kernelRmsNormBackward({ dy, x, w, rstd, dx, dw, rows, dim }: KernelArgs['rmsNormBackward']): void {
    this.live('rmsNormBackward');
    const [G, X, W, R, DX, DW] = [dy, x, w, rstd, dx, dw].map((t) => this.T(t, 'rmsNormBackward'));
    this.withWhole('rmsNormBackward', (whole) => {
      this.run(
        K.rmsNormBackwardX,
        { rows, dim },
        { dy: whole(G, false), x: whole(X, false), w: whole(W, false), rstd: whole(R, false), dx: whole(DX, true) },
        this.grid(rows),
      );
      this.run(
        K.rmsNormBackwardW,
        { rows, dim },
        { dy: whole(G, false), x: whole(X, false), rstd: whole(R, false), dw: whole(DW, true) },
        this.grid(cdiv(dim, 64)),
      );
    });
  }

  /** The inverse frequencies (ops.ts ropeInvFreq, the same f32 values the host backends use) on the device; cached per (theta, D). */
  private freqs(theta: number, D: number, invFreq: Float32Array): GPUBuffer {
    const key = `${theta}/${D}`;
    let b = this.freqCache.get(key);
    if (!b) {
      const f = new Float32Array(Math.max(4, D / 2));
      f.set(invFreq);
      b = this.device.createBuffer({ size: bytesOf(f.length), usage: USAGE.STORAGE | USAGE.COPY_DST, label: `rope freqs ${key}` });
      this.stats.buffersCreated++;
      // A fresh buffer no queued op uses yet, so writing it ahead of the pending batch is safe.
      this.device.queue.writeBuffer(b, 0, f);
      this.freqCache.set(key, b);
    }
    return b;
  }

  kernelRope({ x, pos, rows, heads, D, theta, inverse, invFreq }: KernelArgs['rope']): void {
    this.live('rope');
    const X = this.T(x, 'rope'),
      Pt = this.T(pos, 'rope');
    const freq: Arg = { b0: this.freqs(theta, D, invFreq), split: NO_SPLIT };
    this.withWhole('rope', (whole) =>
      this.run(
        K.rope,
        { rows, heads, D, inverse: inverse ? 1 : 0 },
        { pos: whole(Pt, false), freq, x: whole(X, true) },
        this.grid(cdiv(rows * (D / 2), 64)),
      ),
    );
  }

  // ================================================================ attention

  private attnParams(s: AttentionShape) {
    const { B, Tq, Hq, Hkv, D, qStart, kvCap } = s;
    return { B, Tq, Hq, Hkv, qStart, kvCap, scale: 1 / Math.sqrt(D) };
  }

  /** The per-sequence starts and rows of an attention call as bindings (absent when the call has none). */
  private seqArgs(s: { qStarts?: Tensor; qRows?: Tensor }, whole: (t: GpuTensor, rw: boolean) => Arg) {
    return {
      qs: s.qStarts ? whole(this.T(s.qStarts, 'attention'), false) : undefined,
      qr: s.qRows ? whole(this.T(s.qRows, 'attention'), false) : undefined,
    };
  }

  kernelAttention(s: KernelArgs['attention']): void {
    this.live('attention');
    const [Q, Kc, Vc, O, L] = [s.q, s.kCache, s.vCache, s.out, s.lse].map((t) => this.T(t, 'attention'));
    const p = this.attnParams(s);
    const flash = this.kernels === 'tiled' ? flashShape(s) : undefined;
    const rows = s.qRows ? s.Tq : s.B * s.Tq;
    this.withWhole('attention', (whole) =>
      this.run(
        flash ? flash.forward : K.attention,
        p,
        {
          q: whole(Q, false),
          k: whole(Kc, false),
          v: whole(Vc, false),
          out: whole(O, true),
          lse: whole(L, true),
          ...this.seqArgs(s, whole),
        },
        this.grid(flash ? flash.queryGroups : cdiv(s.Hq * rows, 64)),
        flash ? flash.consts : { D: s.D, ...seqConsts(s) },
      ),
    );
  }

  kernelAttentionBackward(s: KernelArgs['attentionBackward']): void {
    this.live('attentionBackward');
    const [G, Q, Kc, Vc, O, L, DQ, DK, DV] = [s.dOut, s.q, s.kCache, s.vCache, s.out, s.lse, s.dq, s.dkCache, s.dvCache].map((t) =>
      this.T(t, 'attentionBackward'),
    );
    const p = this.attnParams(s);
    const nq = s.Hq * (s.qRows ? s.Tq : s.B * s.Tq);
    if (!nq) return;
    const delta: Arg = { b0: this.buffer(bytesOf(nq), 'attention delta'), split: NO_SPLIT };
    // Key pass: d-chunks of 16 columns give a real GPU enough invocations; each recomputes the full dots.
    const DC = s.D % 16 === 0 && s.D > 16 ? 16 : s.D;
    const flash = this.kernels === 'tiled' ? flashShape(s, DC) : undefined;
    this.withWhole('attentionBackward', (whole) => {
      const g = whole(G, false),
        qa = whole(Q, false),
        ka = whole(Kc, false),
        va = whole(Vc, false),
        la = whole(L, false);
      const seq = this.seqArgs(s, whole);
      const qArgs = { dout: g, q: qa, k: ka, v: va, out: whole(O, false), lse: la, dq: whole(DQ, true), delta, ...seq };
      const kvArgs = { dout: g, q: qa, k: ka, v: va, lse: la, delta, dk: whole(DK, true), dv: whole(DV, true), ...seq };
      if (flash) {
        this.run(flash.backwardQ, p, qArgs, this.grid(flash.queryGroups), flash.consts);
        this.run(flash.backwardKV, p, kvArgs, this.grid(flash.keyGroups), flash.kvConsts);
        return;
      }
      this.run(K.attentionBackwardQ, p, qArgs, this.grid(cdiv(nq, 64)), { D: s.D, ...seqConsts(s) });
      const nkv = s.B * s.Hkv * keysBound(s) * (s.D / DC);
      this.run(K.attentionBackwardKV, p, kvArgs, this.grid(cdiv(nkv, 64)), { D: s.D, DC, ...seqConsts(s) });
    });
    this.release(delta.b0);
  }

  // ================================================================ loss

  kernelCrossEntropy({ logits, labels, losses, rows, V, weights, logitsOff, labelOff, lossOff }: KernelArgs['crossEntropy']): void {
    this.live('crossEntropy');
    const X = this.T(logits, 'crossEntropy'),
      Y = this.T(labels, 'crossEntropy'),
      L = this.T(losses, 'crossEntropy');
    const W = weights ? this.T(weights, 'crossEntropy') : undefined;
    if (rows <= 0) return;
    const spec: KernelSpec = this.kernels === 'tiled' ? { ...K.crossEntropy, section: 'crossEntropyOnline' } : K.crossEntropy;
    this.withWhole('crossEntropy', (whole) =>
      this.run(
        spec,
        { V, rows, logitsOff, labelOff, lossOff },
        { x: whole(X, !!W), labels: whole(Y, false), losses: whole(L, true), weights: W ? whole(W, false) : undefined },
        this.grid(rows),
        { HAS_W: !!W },
      ),
    );
  }
}
