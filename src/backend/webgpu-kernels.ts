// Which WGSL kernel variants the WebGPU backend runs, per adapter.
// Two families, each passing the same conformance and parity suites:
// - 'simple': no workgroup memory. Matmul keeps a 4x4 block per invocation in registers, attention walks the keys
//   one by one per query. On software rasterisers (llvmpipe, lavapipe, SwiftShader) invocations are vectorised
//   across SIMD lanes and workgroup memory is ordinary memory plus barriers, so this is what runs fastest there.
// - 'tiled': workgroup-memory tiles. Matmul stages BM x BK and BK x BN tiles and computes RM x RN outputs per
//   invocation; attention stages key/value tiles shared by a block of queries (and, for grouped-query attention,
//   by every query head of a KV group) and skips tiles the causal mask hides. This is what a hardware GPU needs:
//   its global memory bandwidth is far below its arithmetic rate, and workgroup memory is where reuse happens.
// 'auto' picks 'simple' on a software adapter or one whose limits cannot hold the tiles, and 'tiled' otherwise.
import { BackendError } from './types.js';

export type KernelFamily = 'tiled' | 'simple';
export type MatmulKernel = 'tiled' | 'blocked' | 'naive';

/** Shape of the tiled matmul: a BM x BN tile of C per workgroup of (BN/RN) x (BM/RM) invocations, K in steps of BK. */
export interface MatmulTile {
  bm: number;
  bn: number;
  bk: number;
  rm: number;
  rn: number;
}

/** 64x64 tiles, 4x4 outputs per invocation (256 invocations, about 8 KiB of workgroup memory: within the WebGPU defaults). */
export const TILED_MATMUL: MatmulTile = { bm: 64, bn: 64, bk: 16, rm: 4, rn: 4 };

/** Tile shapes the GPU bench compares (all within WebGPU's default limits: 256 invocations, 16 KiB workgroup memory). */
export const MATMUL_TILES: Record<string, MatmulTile> = {
  '64x64/4x4': TILED_MATMUL,
  '128x64/8x4': { bm: 128, bn: 64, bk: 16, rm: 8, rn: 4 },
  '128x128/8x8': { bm: 128, bn: 128, bk: 8, rm: 8, rn: 8 },
};

const FAMILIES = ['tiled', 'simple', 'auto'] as const;

/** The environment variable that forces a family where no option is given (tests run each suite per family). */
export const KERNELS_ENV = 'LATENTLM_WEBGPU_KERNELS';

function fromEnv(): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.[KERNELS_ENV] || undefined;
}

/** What the tiled family needs: 256 invocations and 16 KiB of workgroup memory (WebGPU's core defaults). */
export const TILED_NEEDS = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 16384 } as const;

/** The limits of TILED_NEEDS this device falls short of, as a readable list ('' when none). */
export function tiledShortfall(limits: Partial<Record<keyof typeof TILED_NEEDS, number>>): string {
  return Object.entries(TILED_NEEDS)
    .filter(([k, need]) => !((limits[k as keyof typeof TILED_NEEDS] ?? 0) >= need))
    .map(([k, need]) => `${k} ${limits[k as keyof typeof TILED_NEEDS]} < ${need}`)
    .join(', ');
}

/**
 * Resolves the requested family ('auto' or absent: by adapter kind and limits); throws on an unknown name, or
 * when 'tiled' is forced on a device whose limits cannot run it.
 */
export function chooseKernels(
  requested: KernelFamily | 'auto' | undefined,
  software: boolean,
  limits: Partial<Record<keyof typeof TILED_NEEDS, number>> = TILED_NEEDS,
): KernelFamily {
  const want = requested ?? fromEnv() ?? 'auto';
  if (!(FAMILIES as readonly string[]).includes(want)) {
    const where = requested === undefined ? `${KERNELS_ENV}=${want}` : `kernels: '${want}'`;
    throw new BackendError(`unknown kernel family (${where}); expected one of ${FAMILIES.join(', ')}`, 'webgpu');
  }
  const short = tiledShortfall(limits);
  if (want === 'auto') return software || short ? 'simple' : 'tiled';
  if (want === 'tiled' && short) throw new BackendError(`the tiled kernels need more than this device grants (${short})`, 'webgpu');
  return want as KernelFamily;
}

// ---- reductions: workgroup-memory tree or subgroup operations ----
// The workgroup-wide sums and maxima of RMSNorm, cross-entropy (over up to 151,936 classes per row) and the
// gradient norm (sumSquares) are one library, appended to those kernels in one of two forms that define the
// same functions (kernels/reduce_workgroup.wgsl, kernels/reduce_subgroup.wgsl):
// - 'workgroup': a tree over workgroup memory, log2(WG) barriers; runs everywhere.
// - 'subgroup': subgroupAdd / subgroupMax within each subgroup, then the same over the per-subgroup partials;
//   needs the adapter's `subgroups` feature (and full, linearly laid out subgroups, which the backend checks once
//   per device with a probe kernel before it uses them).
// 'auto' picks 'subgroup' on a hardware adapter that has the feature and passes the probe, 'workgroup' otherwise
// (on the software adapters here, subgroups are emulated and gain nothing measurable: see the README).
export type Reductions = 'workgroup' | 'subgroup';

/** The environment variable that forces the reduction variant where no option is given. */
export const REDUCTIONS_ENV = 'LATENTLM_WEBGPU_REDUCTIONS';

const REDUCTION_CHOICES = ['workgroup', 'subgroup', 'auto'] as const;

/** The requested reduction variant (option, else environment, else 'auto'); throws on an unknown name. */
export function requestedReductions(requested: Reductions | 'auto' | undefined): Reductions | 'auto' {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const want = requested ?? (env?.[REDUCTIONS_ENV] || undefined) ?? 'auto';
  if (!(REDUCTION_CHOICES as readonly string[]).includes(want)) {
    const where = requested === undefined ? `${REDUCTIONS_ENV}=${want}` : `reductions: '${want}'`;
    throw new BackendError(`unknown reduction variant (${where}); expected one of ${REDUCTION_CHOICES.join(', ')}`, 'webgpu');
  }
  return want as Reductions | 'auto';
}

/**
 * Resolves the reduction variant. `usable` is '' when subgroup reductions can run on this device, else why not
 * (no `subgroups` feature, or the layout probe failed); forcing 'subgroup' then throws with that reason.
 */
export function chooseReductions(want: Reductions | 'auto', software: boolean, usable: string): Reductions {
  if (want === 'subgroup' && usable) throw new BackendError(`subgroup reductions are unavailable here: ${usable}`, 'webgpu');
  if (want === 'auto') return !software && !usable ? 'subgroup' : 'workgroup';
  return want;
}

/** Levels of the subgroup reduction for a workgroup of `wg` invocations at subgroup size `minSize` (>= 2). */
export function subgroupLevels(wg: number, minSize: number): number {
  let levels = 1;
  for (let span = minSize; span < wg; span *= minSize) levels++;
  return levels;
}
