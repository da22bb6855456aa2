// Op-by-op conformance of a Backend against the plain-JS CpuBackend (the executable spec in src/backend/cpu.ts),
// derived from the op table (src/backend/ops.ts): every op of OPS has cases here (CASES is typed by the table, so
// an op without a case does not compile), and for each case the tensors the case does not give are allocated at
// the size the op's declared ranges need (plus a margin) and filled with random data; every tensor the table says
// the op writes is compared. A backend without a kernel for an op of the table fails "has a kernel for every op".
// Each backend's test file calls `backendConformance(name, factory)`. Shapes are deliberately odd (not multiples
// of 4, 16 or 64) so tiling edge cases are exercised, and offsets are non-zero where the op takes them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import { kernelName, OP_NAMES, OPS, type ArgSpec, type KernelCapability, type OpArgs, type OpName } from '../src/backend/ops.js';
import { BackendError, type Backend, type Tensor } from '../src/backend/types.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0,
    den = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-6);
}

type Init = Float32Array | Int32Array | number;

/** Runs `op` on both backends with the same inputs and returns the named outputs of both ([dut, ref]). */
export async function both(
  ref: Backend,
  dut: Backend,
  inputs: Record<string, Init>,
  op: (b: Backend, t: Record<string, Tensor>) => void,
  outputs: string[],
) {
  const res: Record<string, [Float32Array | Int32Array, Float32Array | Int32Array]> = {};
  const run = async (b: Backend) => {
    const t: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) {
      if (typeof v === 'number') t[k] = b.alloc(v, 'f32', k);
      else {
        t[k] = b.alloc(v.length, v instanceof Int32Array ? 'i32' : 'f32', k);
        b.upload(t[k], v);
      }
    }
    op(b, t);
    const out = [];
    for (const k of outputs) out.push(await b.read(t[k]));
    for (const x of Object.values(t)) b.free(x);
    return out;
  };
  const r = await run(ref),
    d = await run(dut);
  outputs.forEach((k, i) => (res[k] = [d[i], r[i]]));
  return res;
}

// ---------------------------------------------------------------- the cases of every op of the table

/** The names of the tensor arguments of op K. */
type TensorKeys<K extends OpName> = { [P in keyof OpArgs[K]]-?: NonNullable<OpArgs[K][P]> extends Tensor ? P : never }[keyof OpArgs[K]];

export interface OpCase<K extends OpName> {
  name: string;
  /** The scalar arguments (sizes, offsets, flags); tensors come from `data` or are made from the table's ranges. */
  args: Omit<OpArgs[K], TensorKeys<K>>;
  /** Contents of tensor arguments (a number: that many zeros). Optional tensors (bias, weights) are passed only if given here. */
  data?: Partial<Record<TensorKeys<K>, Init>>;
  /** Runs before the op on the same tensors (e.g. the forward whose saved statistics a backward reads). */
  before?: (b: Backend, t: Record<string, Tensor>) => void;
  tol?: number;
  /** A kernel capability the case needs: a backend without it must refuse the call with a BackendError instead. */
  needs?: KernelCapability;
}

const attnShape = (B: number, Tq: number, Hq: number, Hkv: number, D: number, qStart: number, kvCap: number) => ({
  B,
  Tq,
  Hq,
  Hkv,
  D,
  qStart,
  kvCap,
});
/**
 * Aligned segments (src/model/qwen2.ts): 3 sequences at their own positions with their own numbers of rows (the
 * second has none); Tq counts all rows and qStart bounds the starts.
 */
const RAGGED_CASE = 'per-sequence starts and rows (qStarts, qRows), one sequence without rows';
const raggedShape = attnShape(3, 5, 4, 2, 8, 9, 12);
const raggedData = { qStarts: new Int32Array([5, 0, 9]), qRows: new Int32Array([0, 3, 3, 5]) };
/** Starts only (every sequence has Tq rows), as a caller with equal segment lengths would pass them. */
const STARTS_CASE = 'per-sequence starts only (qStarts)';
const startsShape = attnShape(3, 4, 4, 2, 8, 6, 12);
const startsData = { qStarts: new Int32Array([6, 0, 3]) };
/**
 * Ragged and long enough that a flash kernel deals each sequence several query blocks (32 rows at GQA 4:2) and key
 * blocks, at different positions per sequence, around an empty one.
 */
const LONG_RAGGED_CASE = 'per-sequence starts and rows, 40 + 0 + 35 rows';
const longRaggedShape = attnShape(3, 75, 4, 2, 8, 30, 80);
const longRaggedData = {
  qStarts: new Int32Array([30, 3, 0]),
  qRows: new Int32Array([0, 40, 40, 75]),
  q: randn(75 * 4 * 8, 42, 2),
  kCache: randn(3 * 80 * 2 * 8, 43, 2),
};
const seqCases = [
  [RAGGED_CASE, raggedShape, raggedData],
  [STARTS_CASE, startsShape, startsData],
  [LONG_RAGGED_CASE, longRaggedShape, longRaggedData],
] as const;
const attnBefore = (b: Backend, t: Record<string, Tensor>, s: ReturnType<typeof attnShape> & { qStarts?: Tensor; qRows?: Tensor }) =>
  b.attention({ q: t.q, kCache: t.kCache, vCache: t.vCache, out: t.out, lse: t.lse, ...s });
const attnCases = (
  [
    ['GQA 4:2, with a KV-cache prefix', attnShape(2, 5, 4, 2, 8, 3, 11)],
    ['GQA 7:1, with a KV-cache prefix', attnShape(2, 5, 7, 1, 8, 3, 11)],
    ['GQA 3:3, with a KV-cache prefix', attnShape(2, 5, 3, 3, 8, 3, 11)],
    ['a long sequence (T=70, D=16)', attnShape(1, 70, 2, 1, 16, 0, 70)],
  ] as const
).map(([name, s]) => ({ name, s }));

const ids = new Int32Array([3, 0, 10, 3, -1, 7, 3, 10, 1]);
const labels = new Int32Array([0, 4, -100, 130, 77, 3, 9]);
const adamHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 3, gradScale: 0.5 };

export const CASES: { [K in OpName]: OpCase<K>[] } = {
  copy2d: [
    { name: 'strided rows with offsets', args: { rows: 3, cols: 5, srcOff: 2, srcStride: 7, dstOff: 1, dstStride: 9 }, tol: 0 },
    { name: 'accumulate', args: { rows: 2, cols: 4, srcStride: 5, dstOff: 30, dstStride: 6, accumulate: true }, tol: 0 },
    { name: 'one row, stride 0', args: { rows: 1, cols: 20, srcOff: 10, srcStride: 0, dstOff: 20, dstStride: 0 }, tol: 0 },
  ],
  add: [{ name: '33 elements, in place', args: { n: 33 }, tol: 1e-6 }],
  axpy: [{ name: 'with offsets', args: { alpha: 0.37, n: 20, xOff: 3, yOff: 11 }, tol: 1e-6 }],
  scale: [{ name: '33 elements', args: { s: -1.5, n: 33 }, tol: 1e-6 }],
  embedding: [
    { name: 'gather (repeated ids, skipped -1)', args: { rows: 9, dim: 13 }, data: { ids, table: randn(11 * 13, 6) }, tol: 1e-6 },
  ],
  embeddingBackward: [
    { name: 'scatter-add (repeated ids, skipped -1)', args: { rows: 9, dim: 13 }, data: { ids, dTable: randn(11 * 13, 9) }, tol: 1e-6 },
  ],
  matmul: [
    ...(
      [
        [false, false],
        [false, true],
        [true, false],
        [true, true],
      ] as const
    ).flatMap(([transA, transB]) => [
      {
        name: `transA=${transA} transB=${transB} with bias and offsets`,
        args: { M: 19, N: 23, K: 29, transA, transB, aOff: 5, bOff: 3, cOff: 7 },
        data: { bias: randn(23, 13) },
      },
      {
        name: `transA=${transA} transB=${transB} accumulate`,
        args: { M: 19, N: 23, K: 29, transA, transB, accumulate: true, aOff: 5, bOff: 3, cOff: 7 },
      },
      {
        name: `transA=${transA} transB=${transB} with the fused SwiGLU input, residual and bias`,
        args: { M: 19, N: 23, K: 29, transA, transB, aOff: 5, bOff: 3, cOff: 7 },
        // the gate has A's size and the residual C's (their contract), so all four are given
        data: {
          bias: randn(23, 13),
          a: randn(19 * 29 + 5, 16),
          swigluGate: randn(19 * 29 + 5, 17, 4),
          c: randn(19 * 23 + 7, 20),
          residual: randn(19 * 23 + 7, 19),
        },
      },
    ]),
    { name: 'a Qwen2-like shape (M=33, N=136, K=96)', args: { M: 33, N: 136, K: 96, transB: true } },
  ],
  sumRows: [{ name: '17 x 9', args: { rows: 17, cols: 9 } }],
  rmsNorm: [{ name: '7 x 37', args: { rows: 7, dim: 37, eps: 1e-6 } }],
  rmsNormBackward: [
    {
      name: '7 x 37',
      args: { rows: 7, dim: 37 },
      before: (b, t) => b.rmsNorm({ x: t.x, w: t.w, y: b.alloc(7 * 37), rstd: t.rstd, rows: 7, dim: 37, eps: 1e-6 }),
    },
  ],
  rope: [
    { name: 'forward', args: { rows: 6, heads: 3, D: 10, theta: 10000 }, data: { pos: new Int32Array([0, 1, 2, 7, 100, 4095]) } },
    {
      name: 'inverse',
      args: { rows: 6, heads: 3, D: 10, theta: 1e6, inverse: true },
      data: { pos: new Int32Array([0, 1, 2, 7, 100, 4095]) },
    },
  ],
  attention: [
    ...attnCases.map(({ name, s }) => ({
      name,
      args: s,
      data: name.startsWith('a long') ? { q: randn(70 * 2 * 16, 40, 2), kCache: randn(70 * 16, 41, 2) } : {},
    })),
    ...seqCases.map(([name, args, data]) => ({ name, args, data, needs: 'queryStarts' as const })),
  ],
  attentionBackward: [
    ...attnCases.map(({ name, s }) => ({ name, args: s, before: (b: Backend, t: Record<string, Tensor>) => attnBefore(b, t, s) })),
    ...seqCases.map(([name, args, data]) => ({
      name,
      args,
      data,
      needs: 'queryStarts' as const,
      before: (b: Backend, t: Record<string, Tensor>) => attnBefore(b, t, { ...args, qStarts: t.qStarts, qRows: t.qRows }),
    })),
  ],
  swiglu: [{ name: '45 elements', args: { n: 45 }, data: { gate: randn(45, 50, 4) } }],
  swigluBackward: [{ name: '45 elements', args: { n: 45 }, data: { gate: randn(45, 50, 4) } }],
  crossEntropy: [
    {
      name: 'losses and fused gradient, ignore index, offsets',
      args: { rows: 5, V: 131, logitsOff: 9, labelOff: 1, lossOff: 2 },
      data: { logits: randn(5 * 131 + 9, 60, 8), labels, weights: new Float32Array([0, 0.5, 1, 0.25, -2, 1, 1]) },
    },
    { name: 'losses only', args: { rows: 5, V: 131 }, data: { logits: randn(5 * 131, 61, 8), labels } },
  ],
  adamw: [{ name: '77 elements', args: { n: 77, ...adamHyper }, data: { m: randn(77, 72, 0.1), v: randn(77, 73, 0.1).map(Math.abs) } }],
  sumSquares: [{ name: 'accumulates into out[1]', args: { n: 77, outIndex: 1 } }],
};

/** Seeds that differ per case and per tensor, so no two tensors hold the same data. */
function seedOf(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The tensor arguments of one case: given data, or random data sized by the op's declared ranges. */
function caseInputs<K extends OpName>(op: K, c: OpCase<K>): { inputs: Record<string, Init>; outputs: string[] } {
  const specs = Object.entries(OPS[op].args) as [string, ArgSpec<never>][];
  // the table's defaults, then the case's scalars: what the kernel would see
  const full: Record<string, unknown> = {};
  for (const [k, s] of specs) if ('default' in s) full[k] = s.default;
  Object.assign(full, c.args);
  const inputs: Record<string, Init> = {},
    outputs: string[] = [];
  const data = (c.data ?? {}) as Record<string, Init | undefined>;
  for (const [k, s] of specs) {
    if (!('tensor' in s)) continue;
    if (s.optional && data[k] === undefined) continue;
    const [o, n] = s.range(full as never);
    inputs[k] = data[k] ?? randn(o + n + 3, seedOf(`${op}/${c.name}/${k}`));
    const writes = typeof s.writes === 'function' ? s.writes({ ...full, ...inputs } as never) : s.writes;
    if (writes) outputs.push(k);
  }
  return { inputs, outputs };
}

export function backendConformance(name: string, factory: () => Promise<Backend>, tol = 1e-4) {
  describe(`${name} backend conformance vs CpuBackend`, () => {
    let dut: Backend;
    const ref = new CpuBackend();
    beforeAll(async () => {
      dut = await factory();
    });
    afterAll(() => dut?.destroy());
    const check = (res: Record<string, [ArrayLike<number>, ArrayLike<number>]>, t = tol) => {
      for (const [k, [d, r]] of Object.entries(res)) expect(maxRelErr(d, r), k).toBeLessThanOrEqual(t);
    };

    it('has a kernel for every op of the table, and every op has conformance cases', () => {
      for (const op of OP_NAMES) {
        expect(typeof (dut as unknown as Record<string, unknown>)[kernelName(op)], `${name}: kernel of '${op}'`).toBe('function');
        expect(CASES[op].length > 0, `cases of '${op}'`).toBe(true);
      }
    });

    for (const op of OP_NAMES)
      for (const c of CASES[op] as OpCase<OpName>[]) {
        it(`${op}: ${c.name}`, async () => {
          const { inputs, outputs } = caseInputs(op, c);
          const run = (b: Backend, t: Record<string, Tensor>) => {
            c.before?.(b, t);
            (b[op] as (a: unknown) => void)({ ...c.args, ...t });
          };
          if (c.needs && !(dut as unknown as Record<string, boolean>)[c.needs]) {
            let err: unknown;
            try {
              await both(ref, dut, inputs, run, outputs);
            } catch (e) {
              err = e;
            }
            expect(/not supported by this backend/.test(String(err)), String(err)).toBe(true);
            return;
          }
          check(await both(ref, dut, inputs, run, outputs), c.tol ?? tol);
        });
      }

    it('refuses a tensor too small for any argument, with one BackendError naming the op and the argument', () => {
      for (const op of OP_NAMES) {
        const c = CASES[op][0] as OpCase<OpName>;
        const { inputs } = caseInputs(op, c);
        const t: Record<string, Tensor> = {};
        for (const [k, v] of Object.entries(inputs))
          t[k] = dut.alloc(typeof v === 'number' ? v : v.length, v instanceof Int32Array ? 'i32' : 'f32', k);
        for (const k of Object.keys(t)) {
          const tiny = dut.alloc(1, t[k].dtype, `tiny ${k}`);
          let err: unknown;
          try {
            (dut[op] as (a: unknown) => void)({ ...c.args, ...t, [k]: tiny });
          } catch (e) {
            err = e;
          }
          expect(
            err instanceof BackendError && err.message.includes(`${op}: '${k}' (tensor 'tiny ${k}', 1 elements) accessed at`),
            `${op} with a 1-element '${k}': ${String(err)}`,
          ).toBe(true);
          dut.free(tiny);
        }
        for (const x of Object.values(t)) dut.free(x);
      }
    });

    it('upload / read / zero / copy2d', async () => {
      const a = randn(37, 1);
      const res = await both(
        ref,
        dut,
        { a, b: randn(50, 2), c: randn(50, 3) },
        (b, t) => {
          b.copy2d({ src: t.a, dst: t.b, rows: 3, cols: 5, srcOff: 2, srcStride: 7, dstOff: 1, dstStride: 9 });
          b.copy2d({ src: t.a, dst: t.b, rows: 2, cols: 4, srcStride: 5, dstOff: 30, dstStride: 6, accumulate: true });
          b.zero(t.c, 3, 10);
          b.copy2d({ src: t.a, dst: t.c, rows: 1, cols: 20, srcOff: 10, srcStride: 0, dstOff: 20, dstStride: 0 });
        },
        ['b', 'c'],
      );
      check(res, 0);
      const t = dut.alloc(37);
      dut.upload(t, a);
      expect(Array.from(await dut.read(t, 5, 7))).toEqual(Array.from(a.slice(5, 12)));
      dut.free(t);
    });

    // A backend may keep what it derived from an argument for the next call (WASM keeps the rope table): a tensor
    // rewritten under the same handle, fewer rows and the other direction must each be seen.
    it('rope: the same positions tensor rewritten, fewer rows, and forward / inverse interleaved', async () => {
      const pos1 = new Int32Array([0, 1, 2, 7, 100, 4095]),
        pos2 = new Int32Array([5, 1, 2, 7, 100, 9]);
      const x = randn(6 * 3 * 10, 4);
      const res = await both(
        ref,
        dut,
        { pos: pos1, x1: x, x2: x, x3: x, x4: x, x5: x },
        (b, t) => {
          const r = (x: Tensor, rows: number, inverse: boolean) => b.rope({ x, pos: t.pos, rows, heads: 3, D: 10, theta: 10000, inverse });
          r(t.x1, 6, false);
          r(t.x2, 6, true);
          b.upload(t.pos, pos2);
          r(t.x3, 6, false);
          r(t.x4, 4, false);
          r(t.x5, 6, true);
        },
        ['x1', 'x2', 'x3', 'x4', 'x5'],
      );
      check(res);
      expect(
        Array.from(res.x3[0]).some((v, i) => v !== res.x1[0][i]),
        'the new positions rotate differently',
      ).toBe(true);
    });

    // The fusions (matmul's swigluGate and residual) against their definition on the backend under test itself:
    // swiglu into a tensor, copy the residual, accumulate (the table's cases compare them with the CPU reference).
    for (const [transA, transB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      it(`matmul transA=${transA} transB=${transB}: fused SwiGLU input and residual equal their composition`, async () => {
        const M = 19,
          N = 23,
          K = 29,
          nA = M * K + 5,
          nC = M * N + 7;
        const inputs = { up: randn(nA, 16), gate: randn(nA, 17, 4), b: randn(N * K + 3, 18), res: randn(nC, 19) };
        const outputOf = async (how: 'fused' | 'composed' | 'in place') => {
          const t = Object.fromEntries(
            Object.entries(inputs).map(([k, v]) => {
              const x = dut.alloc(v.length, 'f32', k);
              dut.upload(x, v);
              return [k, x];
            }),
          );
          const c = dut.alloc(nC, 'f32', 'c'),
            act = dut.alloc(nA, 'f32', 'act');
          const o = { M, N, K, transA, transB, aOff: 5, bOff: 3, cOff: 7 };
          if (how === 'fused') dut.matmul({ a: t.up, b: t.b, c, ...o, swigluGate: t.gate, residual: t.res });
          else if (how === 'in place') {
            // residual = C: the product lands on the residual itself
            dut.copy2d({ src: t.res, dst: c, rows: M, cols: N, srcOff: 7, srcStride: N, dstOff: 7, dstStride: N });
            dut.matmul({ a: t.up, b: t.b, c, ...o, swigluGate: t.gate, residual: c });
          } else {
            dut.swiglu({ gate: t.gate, up: t.up, out: act, n: nA });
            dut.copy2d({ src: t.res, dst: c, rows: M, cols: N, srcOff: 7, srcStride: N, dstOff: 7, dstStride: N });
            dut.matmul({ a: act, b: t.b, c, ...o, accumulate: true });
          }
          const out = await dut.read(c);
          for (const x of [...Object.values(t), c, act]) dut.free(x);
          return out;
        };
        const composed = await outputOf('composed');
        expect(maxRelErr(await outputOf('fused'), composed), 'fused vs composed').toBeLessThanOrEqual(1e-6);
        expect(maxRelErr(await outputOf('in place'), composed), 'residual = C vs composed').toBeLessThanOrEqual(1e-6);
      });
    }

    it('matmul fusions refuse what they cannot mean', async () => {
      const a = dut.alloc(12),
        g = dut.alloc(11),
        b = dut.alloc(12),
        c = dut.alloc(9),
        r = dut.alloc(8, 'f32', 'r');
      try {
        expect(() => dut.matmul({ a, b, c, M: 3, N: 3, K: 4, residual: c, accumulate: true })).toThrow(/residual and accumulate/);
        expect(() => dut.matmul({ a, b, c, M: 3, N: 3, K: 4, residual: r })).toThrow(/residual 'r'|residual/);
        expect(() => dut.matmul({ a, b, c, M: 3, N: 3, K: 4, swigluGate: g })).toThrow(/swigluGate/);
      } finally {
        for (const t of [a, g, b, c, r]) dut.free(t);
      }
    });
  });
}
