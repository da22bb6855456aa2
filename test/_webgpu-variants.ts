// Every WebGPU kernel variant against the CPU reference, as a plain script for any runtime whose WebGPU is not
// the one vitest sees (Deno's wgpu on lavapipe/llvmpipe: test/webgpu-variants.test.ts; it also runs under tsx).
// Per variant (simple, tiled, tiled with split tensors, tiled with f16 tiles where the adapter has shader-f16,
// both families with subgroup reductions where the adapter has subgroups):
// matmul in all four transpose forms over several tiles with bias then accumulate, the fused SwiGLU input and
// residual (two forms), attention forward and
// backward with GQA 7:1 and a KV-cache prefix, RMSNorm forward/backward, cross-entropy with its fused gradient.
// Prints one line `VARIANTS {json}` (adapter, per-variant max relative errors) and exits non-zero on a failure.
import { CpuBackend } from '../src/backend/cpu.ts';
import type { AttentionShape, Backend, Tensor } from '../src/backend/types.ts';
import { createWebGPUBackend, type WebGPUBackendOptions } from '../src/backend/webgpu.ts';

function data(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) a[i] = (((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1) * scale;
  return a;
}

/** Runs `op` on a fresh set of tensors made from `inputs` and returns the named outputs. */
async function outputsOf(
  be: Backend,
  inputs: Record<string, Float32Array | Int32Array | number>,
  op: (b: Backend, t: Record<string, Tensor>) => void,
  names: string[],
) {
  const t: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) {
    t[k] = typeof v === 'number' ? be.alloc(v, 'f32', k) : be.alloc(v.length, v instanceof Int32Array ? 'i32' : 'f32', k);
    if (typeof v !== 'number') be.upload(t[k], v);
  }
  op(be, t);
  const out: (Float32Array | Int32Array)[] = [];
  for (const n of names) out.push(await be.read(t[n]));
  for (const x of Object.values(t)) be.free(x);
  return out;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return a.length === b.length ? num / Math.max(den, 1e-6) : Infinity;
}

const M = 70,
  N = 68,
  K = 40;
const attn: AttentionShape = { B: 2, Tq: 9, Hq: 7, Hkv: 1, D: 16, qStart: 4, kvCap: 15 };
const nq = attn.B * attn.Tq * attn.Hq * attn.D,
  nkv = attn.B * attn.kvCap * attn.Hkv * attn.D,
  nl = attn.B * attn.Hq * attn.Tq;
const rows = 5,
  dim = 37,
  V = 131;
const cases: {
  name: string;
  inputs: Record<string, Float32Array | Int32Array | number>;
  op: (b: Backend, t: Record<string, Tensor>) => void;
  outputs: string[];
}[] = [
  ...(
    [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const
  ).map(([transA, transB]) => ({
    name: `matmul transA=${transA} transB=${transB}`,
    inputs: { a: data(M * K, 1), b: data(N * K, 2), c: data(M * N, 3), bias: data(N, 4) },
    op: (b: Backend, t: Record<string, Tensor>) => {
      b.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transA, transB, bias: t.bias });
      b.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transA, transB, accumulate: true });
    },
    outputs: ['c'],
  })),
  ...(
    [
      [false, true],
      [true, false],
    ] as const
  ).map(([transA, transB]) => ({
    // the fusions of the MLP and the output projections: silu(gate) * A loaded as the left operand, residual added
    // in the store, once into a fresh C and once in place (residual = C)
    name: `matmul transA=${transA} transB=${transB} with the fused SwiGLU input and residual`,
    inputs: { a: data(M * K, 5), g: data(M * K, 6, 4), b: data(N * K, 7), r: data(M * N, 8), c: M * N, c2: data(M * N, 9) },
    op: (b: Backend, t: Record<string, Tensor>) => {
      b.matmul({ a: t.a, b: t.b, c: t.c, M, N, K, transA, transB, swigluGate: t.g, residual: t.r });
      b.matmul({ a: t.a, b: t.b, c: t.c2, M, N, K, transA, transB, swigluGate: t.g, residual: t.c2 });
    },
    outputs: ['c', 'c2'],
  })),
  {
    name: 'attention GQA 7:1 forward and backward',
    inputs: {
      q: data(nq, 5),
      k: data(nkv, 6),
      v: data(nkv, 7),
      out: nq,
      lse: nl,
      g: data(nq, 8),
      dq: data(nq, 9),
      dk: data(nkv, 10),
      dv: data(nkv, 11),
    },
    op: (b, t) => {
      b.attention({ q: t.q, kCache: t.k, vCache: t.v, out: t.out, lse: t.lse, ...attn });
      b.attentionBackward({
        dOut: t.g,
        q: t.q,
        kCache: t.k,
        vCache: t.v,
        out: t.out,
        lse: t.lse,
        dq: t.dq,
        dkCache: t.dk,
        dvCache: t.dv,
        ...attn,
      });
    },
    outputs: ['out', 'lse', 'dq', 'dk', 'dv'],
  },
  {
    name: 'rmsNorm forward and backward',
    inputs: {
      x: data(rows * dim, 12),
      w: data(dim, 13),
      y: rows * dim,
      rstd: rows,
      dy: data(rows * dim, 14),
      dx: data(rows * dim, 15),
      dw: data(dim, 16),
    },
    op: (b, t) => {
      b.rmsNorm({ x: t.x, w: t.w, y: t.y, rstd: t.rstd, rows, dim, eps: 1e-6 });
      b.rmsNormBackward({ dy: t.dy, x: t.x, w: t.w, rstd: t.rstd, dx: t.dx, dw: t.dw, rows, dim });
    },
    outputs: ['y', 'rstd', 'dx', 'dw'],
  },
  {
    // many partials per workgroup and 35 workgroups: both reduction levels of sumSquares at work
    name: 'sumSquares (gradient norm)',
    inputs: { x: data(70001, 18), out: data(3, 19) },
    op: (b, t) => b.sumSquares({ x: t.x, n: 70001, out: t.out, outIndex: 1 }),
    outputs: ['out'],
  },
  {
    name: 'crossEntropy over 3001 classes (loss only)',
    inputs: { x: data(3 * 3001, 20, 12), labels: new Int32Array([3000, 0, 1234]), l: 3 },
    op: (b, t) => b.crossEntropy({ logits: t.x, labels: t.labels, losses: t.l, rows: 3, V: 3001 }),
    outputs: ['l'],
  },
  {
    name: 'crossEntropy with the fused gradient',
    inputs: {
      x: data(rows * V, 17, 8),
      labels: new Int32Array([0, 4, -100, 130, 77]),
      w: new Float32Array([0.5, 1, 1, 0.25, -2]),
      l: rows,
    },
    op: (b, t) => b.crossEntropy({ logits: t.x, labels: t.labels, losses: t.l, rows, V, weights: t.w }),
    outputs: ['x', 'l'],
  },
];

const probe = await createWebGPUBackend({ kernels: 'tiled' });
const hasF16 = probe.features.has('shader-f16');
const hasSubgroups = probe.features.has('subgroups');
const report: {
  adapter: string;
  features: string[];
  auto: string;
  autoReductions: string;
  subgroupNote: string;
  variants: Record<string, Record<string, number>>;
  failures: string[];
} = {
  adapter: probe.info,
  features: [...probe.features],
  auto: '',
  autoReductions: '',
  subgroupNote: '',
  variants: {},
  failures: [],
};
probe.destroy();
const auto = await createWebGPUBackend({ kernels: 'auto' });
report.auto = auto.kernels;
report.autoReductions = auto.reductions;
report.subgroupNote = auto.subgroupNote;
auto.destroy();

const variants: [string, WebGPUBackendOptions, number][] = [
  ['simple', { kernels: 'simple' }, 1e-4],
  ['tiled', { kernels: 'tiled' }, 1e-4],
  ['tiled, split at 1 KiB', { kernels: 'tiled', maxBindingBytes: 1024 }, 1e-4],
  // half-rounded matmul inputs (2^-11 relative each): the matmul cases only are held to a looser bound
  ...(hasF16 ? ([['tiled f16', { kernels: 'tiled', matmulF16: true }, 5e-3]] as [string, WebGPUBackendOptions, number][]) : []),
  // subgroup reductions (RMSNorm, cross-entropy; sumSquares in the case below) with either family
  ...(hasSubgroups
    ? ([
        ['simple subgroup', { kernels: 'simple', reductions: 'subgroup' }, 1e-4],
        ['tiled subgroup', { kernels: 'tiled', reductions: 'subgroup' }, 1e-4],
      ] as [string, WebGPUBackendOptions, number][])
    : []),
];
/** Variants that exist only where the adapter has a feature: asking for them elsewhere is not an error. */
const OPTIONAL = ['tiled f16', 'simple subgroup', 'tiled subgroup'];
// Arguments restrict the run to the named variants (e.g. `tiled 'tiled f16'`); unknown names are an error.
// In a browser: the query string, `?v=tiled&v=simple`.
const g = globalThis as { Deno?: { args: string[] }; process?: { argv: string[] }; location?: { search: string } };
const args: string[] = g.Deno?.args ?? g.process?.argv.slice(2) ?? new URLSearchParams(g.location?.search ?? '').getAll('v');
for (const a of args)
  if (!OPTIONAL.includes(a) && !variants.some(([n]) => n === a))
    throw new Error(`unknown variant '${a}' (known: ${variants.map(([n]) => n).join(', ')})`);
const ref = new CpuBackend();
for (const [vname, opts, tol] of variants.filter(([n]) => !args.length || args.includes(n))) {
  const be = await createWebGPUBackend(opts);
  const errs: Record<string, number> = {};
  for (const c of cases) {
    const [d, r] = [await outputsOf(be, c.inputs, c.op, c.outputs), await outputsOf(ref, c.inputs, c.op, c.outputs)];
    const err = Math.max(...d.map((x, i) => relErr(x, r[i])));
    errs[c.name] = err;
    if (!(err <= (c.name.startsWith('matmul') ? tol : 1e-4))) report.failures.push(`${vname}: ${c.name}: max relative error ${err}`);
    // the f16 path must really round: an f32 kernel is ~1e-7 here
    if (opts.reductions === 'subgroup' && (be as { reductions?: string }).reductions !== 'subgroup')
      report.failures.push(`${vname}: subgroup reductions were not used`);
    if (opts.matmulF16 && c.name.startsWith('matmul') && !(err > 1e-6))
      report.failures.push(`${vname}: ${c.name}: error ${err} is f32-exact, so f16 tiles did not run`);
  }
  report.variants[vname] = errs;
  console.log(`variant ${vname}: worst relative error ${Math.max(...Object.values(errs)).toExponential(2)}`);
  be.destroy();
}
console.log(`VARIANTS ${JSON.stringify(report)}`);
if (report.failures.length) {
  console.error(report.failures.join('\n'));
  (globalThis as { Deno?: { exit(c: number): never } }).Deno?.exit(1);
  (globalThis as { process?: { exit(c: number): never } }).process?.exit(1);
}
