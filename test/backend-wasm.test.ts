// The WebAssembly SIMD backend: the op-by-op conformance suite against CpuBackend, plus what the suite's small
// shapes cannot reach: memory growth past the initial pages, allocator reuse, bounds checks, and matmuls at
// Qwen2-0.5B-like shapes (K and N past the kernel's cache blocks) in all four transpose variants.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backend/cpu.js';
import { createWasmBackend, type WasmBackend } from '../src/backend/wasm.js';
import { backendConformance, maxRelErr, randn } from './_conformance.js';

backendConformance('wasm (1 thread)', () => createWasmBackend({ threads: 1 }));

describe('wasm backend memory', () => {
  it('grows memory past the initial pages and keeps older tensors intact', async () => {
    const be = (await createWasmBackend()) as WasmBackend;
    const before = be.memoryBytes;
    const a = be.alloc(1000, 'f32', 'a');
    const ids = be.alloc(7, 'i32', 'ids');
    const av = randn(1000, 1);
    const iv = new Int32Array([5, -1, 2 ** 31 - 1, 0, 3, -100, 42]);
    be.upload(a, av);
    be.upload(ids, iv);
    // Several blocks, each larger than the whole initial memory, force repeated grows (which detach the views).
    const big: ReturnType<typeof be.alloc>[] = [];
    for (let i = 0; i < 4; i++) {
      const t = be.alloc(Math.ceil(before / 4) + 12345, 'f32', `big${i}`);
      be.upload(t, new Float32Array([i + 1]), t.size - 1);
      big.push(t);
    }
    expect(be.memoryBytes).toBeGreaterThan(before * 4);
    expect(Array.from(await be.read(a))).toEqual(Array.from(av));
    expect(Array.from(await be.read(ids))).toEqual(Array.from(iv));
    for (let i = 0; i < 4; i++) expect(Array.from(await be.read(big[i], big[i].size - 2))).toEqual([0, i + 1]);
    // Freed memory is reused and comes back zero-filled.
    be.free(big[1]);
    const again = be.alloc(1000, 'f32', 'again');
    expect((await be.read(again)).every((v) => v === 0)).toBe(true);
    // Freeing the topmost tensor lowers the heap top; what is allocated there next must not see its old data.
    be.free(big[3]);
    const top = be.alloc(big[3].size, 'f32', 'top');
    expect(Array.from(await be.read(top, top.size - 2))).toEqual([0, 0]);
    // Ops still work on the grown memory.
    be.axpy({ alpha: 2, x: a, y: again, n: 1000 });
    expect(
      maxRelErr(
        await be.read(again),
        av.map((v) => 2 * v),
      ),
    ).toBeLessThan(1e-6);
    be.destroy();
  });

  it('coalesces freed blocks so alternating alloc/free does not leak', async () => {
    const be = (await createWasmBackend()) as WasmBackend;
    const ts = Array.from({ length: 50 }, (_, i) => be.alloc(10000 + i * 17, 'f32', `t${i}`));
    const grown = be.memoryBytes;
    for (let round = 0; round < 20; round++) {
      for (const t of ts.splice(0)) be.free(t);
      for (let i = 0; i < 50; i++) ts.push(be.alloc(10000 + ((i * 31 + round) % 50) * 17, 'f32', `t${i}`));
    }
    expect(be.memoryBytes).toBe(grown);
    be.destroy();
  });

  it('honours maxMemoryBytes and names the tensor on bad access', async () => {
    const be = await createWasmBackend({ maxMemoryBytes: 8 * 2 ** 20 });
    expect(() => be.alloc(4 * 2 ** 20, 'f32', 'too-big')).toThrow(/out of memory/);
    const a = be.alloc(10, 'f32', 'small');
    expect(() => be.axpy({ alpha: 1, x: a, y: a, n: 11 })).toThrow(/'small'/);
    be.free(a);
    expect(() => be.scale({ x: a, s: 2, n: 1 })).toThrow(/freed/);
    const ids = be.alloc(1, 'i32', 'ids'),
      table = be.alloc(6, 'f32', 'table'),
      out = be.alloc(3, 'f32', 'out');
    be.upload(ids, new Int32Array([2]));
    expect(() => be.embedding({ ids, table, out, rows: 1, dim: 3 })).toThrow(/id 2/);
    be.destroy();
  });
});

describe('wasm matmul at Qwen2-0.5B-like shapes vs CpuBackend', () => {
  // K = 896 spans several K blocks (256); N = 1100 spans two N blocks (1024) and ends in a partial 8-column panel;
  // M = 37 ends in a partial 4-row panel; offsets make every operand start unaligned.
  const M = 37,
    N = 1100,
    K = 896;
  for (const [transA, transB] of [
    [false, true],
    [false, false],
    [true, false],
    [true, true],
  ] as const) {
    it(`M=${M} N=${N} K=${K} transA=${transA} transB=${transB}, bias + accumulate`, async () => {
      const cpu = new CpuBackend(),
        be = await createWasmBackend();
      const av = randn(M * K + 3, 100),
        bv = randn(N * K + 1, 101, 0.05),
        cv = randn(M * N + 2, 102),
        biasv = randn(N, 103);
      const run = async (b: typeof cpu | typeof be) => {
        const a = b.alloc(av.length),
          w = b.alloc(bv.length),
          c = b.alloc(cv.length),
          bias = b.alloc(N);
        b.upload(a, av);
        b.upload(w, bv);
        b.upload(c, cv);
        b.upload(bias, biasv);
        b.matmul({ a, b: w, c, M, N, K, transA, transB, bias, accumulate: true, aOff: 3, bOff: 1, cOff: 2 });
        return b.read(c);
      };
      const [want, got] = [await run(cpu), await run(be)];
      expect(maxRelErr(got, want)).toBeLessThan(1e-5);
      be.destroy();
    });
  }

  it('[128, 896] x [896 -> 4864] (the MLP up projection), transB', async () => {
    const M = 128,
      K = 896,
      N = 4864;
    const cpu = new CpuBackend(),
      be = await createWasmBackend();
    const av = randn(M * K, 110),
      bv = randn(N * K, 111, 0.05);
    const run = async (b: typeof cpu | typeof be) => {
      const a = b.alloc(M * K),
        w = b.alloc(N * K),
        c = b.alloc(M * N);
      b.upload(a, av);
      b.upload(w, bv);
      b.matmul({ a, b: w, c, M, N, K, transB: true });
      return b.read(c);
    };
    const [want, got] = [await run(cpu), await run(be)];
    expect(maxRelErr(got, want)).toBeLessThan(1e-5);
    be.destroy();
  });
});

describe('wasm matmul with few rows (B read in place, one-row kernels)', () => {
  // M <= 4 reads a stored [K, N] B in place and M = 1 with B stored [N, K] transposes it in registers
  // (assembly/_simd_matmul.ts); every row must come out bit-identical to the same row of a taller matmul (the packed
  // 4x8 path), so a result never depends on how many rows share a call (batched vs one-sequence forwards,
  // incremental decoding). N = 13 ends in a partial panel; K = 7 has a k tail; K = 300 spans two K blocks.
  const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
  for (const [transA, transB] of [
    [false, true],
    [false, false],
    [true, false],
    [true, true],
  ] as const)
    for (const [N, K] of [
      [13, 7],
      [40, 300],
      [16, 33],
    ]) {
      it(`rows of M = 1..5 equal rows of M = 9 bit for bit, and CpuBackend (N=${N} K=${K} transA=${transA} transB=${transB})`, async () => {
        const cpu = new CpuBackend(),
          be = await createWasmBackend({ threads: 1 });
        const X = randn(9 * K, 200 + N),
          W = randn(N * K, 300 + K, 0.1),
          C0 = randn(9 * N, 400),
          bias = randn(N, 500);
        // op(A) rows r0..r0+m of X, stored as the call expects (transposed when transA)
        const aOf = (r0: number, m: number) => {
          if (!transA) return X.slice(r0 * K, (r0 + m) * K);
          const t = new Float32Array(K * m);
          for (let k = 0; k < K; k++) for (let i = 0; i < m; i++) t[k * m + i] = X[(r0 + i) * K + k];
          return t;
        };
        const run = async (b: typeof cpu | typeof be, r0: number, m: number) => {
          const a = b.alloc(m * K + 1),
            w = b.alloc(N * K + 2),
            c = b.alloc(m * N),
            bi = b.alloc(N);
          b.upload(a, aOf(r0, m), 1);
          b.upload(w, W, 2);
          b.upload(c, C0.subarray(r0 * N, (r0 + m) * N));
          b.upload(bi, bias);
          b.matmul({ a, b: w, c, M: m, N, K, transA, transB, bias: bi, accumulate: true, aOff: 1, bOff: 2 });
          return (await b.read(c)) as Float32Array;
        };
        const tall = await run(be, 0, 9);
        expect(maxRelErr(tall, (await run(cpu, 0, 9)) as Float32Array)).toBeLessThan(1e-5);
        for (const m of [1, 2, 3, 4, 5])
          for (const r0 of [0, 9 - m]) {
            const got = await run(be, r0, m);
            expect(bits(got), `M=${m} rows ${r0}..`).toEqual(bits(tall.slice(r0 * N, (r0 + m) * N)));
          }
        be.destroy();
      });
    }
});

describe('wasm attention at a Qwen2-0.5B head shape vs CpuBackend', () => {
  // D = 64 takes the 16-float register blocks of the kernel (the conformance suite's D = 8/16 do not all);
  // Tq = 10 ends in a partial query block of the backward; qStart > 0 reads a KV-cache prefix.
  it('B=2 Tq=10 Hq=14 Hkv=2 D=64 qStart=5', async () => {
    const s = { B: 2, Tq: 10, Hq: 14, Hkv: 2, D: 64, qStart: 5, kvCap: 17 };
    const nq = s.B * s.Tq * s.Hq * s.D,
      nkv = s.B * s.kvCap * s.Hkv * s.D,
      nl = s.B * s.Hq * s.Tq;
    const inputs = {
      q: randn(nq, 120),
      k: randn(nkv, 121),
      v: randn(nkv, 122),
      g: randn(nq, 123),
      dq: randn(nq, 124),
      dk: randn(nkv, 125),
      dv: randn(nkv, 126),
    };
    const run = async (b: Awaited<ReturnType<typeof createWasmBackend>>) => {
      const t = Object.fromEntries(
        Object.entries(inputs).map(([k, v]) => {
          const x = b.alloc(v.length, 'f32', k);
          b.upload(x, v);
          return [k, x];
        }),
      );
      const out = b.alloc(nq),
        lse = b.alloc(nl);
      b.attention({ q: t.q, kCache: t.k, vCache: t.v, out, lse, ...s });
      b.attentionBackward({ dOut: t.g, q: t.q, kCache: t.k, vCache: t.v, out, lse, dq: t.dq, dkCache: t.dk, dvCache: t.dv, ...s });
      return Promise.all([out, lse, t.dq, t.dk, t.dv].map((x) => b.read(x)));
    };
    const want = await run(new CpuBackend()),
      be = await createWasmBackend(),
      got = await run(be);
    ['out', 'lse', 'dq', 'dk', 'dv'].forEach((name, i) => expect(maxRelErr(got[i], want[i]), name).toBeLessThan(1e-5));
    be.destroy();
  });
});
