// Getting a WebGPU adapter and device in every runtime, and saying which one and why.
// - Browsers and Deno: `navigator.gpu`.
// - Node and Bun: the npm `webgpu` package (Dawn), loaded via dynamic import of ../node/dawn.ts. Dawn's Vulkan
//   backend first; on stock Mesa 22 lavapipe Dawn rejects the Vulkan adapter, so then Dawn's GLES backend in
//   compatibility mode on a surfaceless EGL display (Mesa llvmpipe), which works with distribution packages.
// The device is created with the adapter's real limits (compatibility mode and the spec defaults are far below
// what the hardware grants, e.g. 4 storage buffers per stage and 128 MiB bindings).

export type AdapterChoice = 'vulkan' | 'gles' | 'auto';

export interface WebGPUDeviceOptions {
  /** Node/Bun only: which Dawn backend to use ('auto': Vulkan, then GLES). Ignored where navigator.gpu exists. */
  adapter?: AdapterChoice;
  powerPreference?: GPUPowerPreference;
}

export interface WebGPUDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** e.g. "Dawn GLES compat (Mesa llvmpipe): Vulkan adapter unavailable: ..." */
  info: string;
  /** Keeps the Dawn instance alive as long as the device. */
  gpu: GPU;
  /**
   * A software rasteriser (llvmpipe, lavapipe, SwiftShader, WARP...) rather than a hardware GPU: decides which
   * kernel variants the backend picks by default (see WebGPUBackendOptions.kernels).
   */
  software: boolean;
  /** Optional features enabled on the device (those of OPTIONAL_FEATURES the adapter has). */
  features: Set<string>;
}

/** Features requested whenever the adapter offers them; kernels use them only when asked or auto-selected. */
const OPTIONAL_FEATURES = ['shader-f16', 'subgroups'] as const;

/** Adapter names of software implementations (what adapter.info reports for them across Dawn, wgpu and Chrome). */
export const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|software|basic render|warp\b/i;

/** True for a software adapter: the fallback flag where the runtime sets it, else the adapter's name. */
export function isSoftwareAdapter(a: GPUAdapter): boolean {
  const i = (a as GPUAdapter & { info?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).info;
  if ((a as { isFallbackAdapter?: boolean }).isFallbackAdapter || i?.isFallbackAdapter) return true;
  return SOFTWARE_ADAPTER.test(describeAdapter(a));
}

/** Limits copied from the adapter into requiredLimits (never more than it grants, never the low defaults). */
const LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxDynamicUniformBuffersPerPipelineLayout',
  'maxBindingsPerBindGroup',
] as const;

function describeAdapter(a: GPUAdapter): string {
  const i = (a as GPUAdapter & { info?: GPUAdapterInfo }).info;
  if (!i) return 'unknown adapter';
  const parts = [i.vendor, i.architecture, i.device, i.description].filter((s) => s?.length);
  return parts.length ? [...new Set(parts)].join(' ') : 'unknown adapter';
}

async function deviceFor(gpu: GPU, adapter: GPUAdapter, label: string, why: string[] = []): Promise<WebGPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features?.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'latentlm' });
  const features = new Set(requiredFeatures.filter((f) => device.features?.has(f)));
  return {
    device,
    adapter,
    gpu,
    software: isSoftwareAdapter(adapter),
    features,
    info: `${label} (${describeAdapter(adapter)})${why.length ? `: ${why.join('; ')}` : ''}`,
  };
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/** Finds an adapter and creates a device; throws an Error listing everything tried if none works. */
export async function requestWebGPU(opts: WebGPUDeviceOptions = {}): Promise<WebGPUDevice> {
  const tried: string[] = [];
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) {
    try {
      const adapter = await nav.gpu.requestAdapter({ powerPreference: opts.powerPreference });
      if (adapter) return await deviceFor(nav.gpu, adapter, 'navigator.gpu');
      tried.push('navigator.gpu: requestAdapter() returned null');
    } catch (e) {
      tried.push(`navigator.gpu: ${msg(e)}`);
    }
  }
  const isNodeLike = typeof process !== 'undefined' && !!(process as { versions?: { node?: string } }).versions?.node;
  if (isNodeLike && !nav?.gpu) {
    let dawn: Awaited<ReturnType<typeof import('../node/dawn.js').loadDawn>> | undefined;
    let prepareGles: (() => Promise<void>) | undefined;
    try {
      const m = await import('../node/dawn.js');
      prepareGles = m.prepareGles;
      dawn = await m.loadDawn();
    } catch (e) {
      tried.push(`npm 'webgpu' (Dawn) failed to load: ${msg(e)}`);
    }
    const choice = opts.adapter ?? 'auto';
    if (dawn && (choice === 'vulkan' || choice === 'auto')) {
      try {
        const gpu = dawn.create([]);
        const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
        if (adapter) return await deviceFor(gpu, adapter, 'Dawn Vulkan', tried);
        // Dawn prints the reason on stderr (on Mesa 22 lavapipe: "shaderUniform*ArrayDynamicIndexing required").
        tried.push('Dawn Vulkan: no adapter (requestAdapter() returned null; see Dawn warnings on stderr)');
      } catch (e) {
        tried.push(`Dawn Vulkan: ${msg(e)}`);
      }
    }
    if (dawn && (choice === 'gles' || choice === 'auto')) {
      try {
        await prepareGles?.();
        const gpu = dawn.create(['backend=opengles']);
        const adapter = await gpu.requestAdapter({
          featureLevel: 'compatibility',
          powerPreference: opts.powerPreference,
        } as GPURequestAdapterOptions);
        if (adapter) return await deviceFor(gpu, adapter, 'Dawn GLES compat', tried);
        tried.push('Dawn GLES compat: no adapter (requestAdapter() returned null)');
      } catch (e) {
        tried.push(`Dawn GLES compat: ${msg(e)}`);
      }
    }
  } else if (!nav?.gpu) {
    tried.push('no navigator.gpu in this runtime');
  }
  throw new Error(`no WebGPU adapter: ${tried.join('; ')}`);
}
