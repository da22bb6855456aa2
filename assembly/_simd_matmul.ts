// C[M, N] (+)= op(A) op(B): GotoBLAS-style blocked matmul with WASM SIMD.
//
// Why this shape: a register-blocked micro-kernel (MR x NR = 4 x 8 outputs held in 8 v128 accumulators, 11 of
// the 16 SIMD registers V8 gives us on x64) does 16 vector mul/add per 6 loads. To keep it fed, both operands are
// PACKED first into the exact order the kernel reads them (A panels: 4 rows interleaved along k; B panels: 8
// columns contiguous per k). Packing is also where the four transpose variants and the element offsets are
// absorbed, so there is only one kernel. Edge tiles are zero-padded in packing and written through a small temp
// tile. Blocking: KC x NC of B (~1 MiB, L2/L3) is packed once per (jc, pc); MC x KC of A (128 KiB, L2) per ic.

import { madd, partStart } from './_simd_math';

const MR = 4;
const NR = 8;
export const KC = 256;
export const MC = 128;
export const NC = 1024;
/** f32 elements of scratch a matmul call needs (packed A block + packed B block + one edge tile). */
export const MATMUL_SCRATCH: i32 = MC * KC + KC * NC + MR * NR;

/** Packs op(A)[m0.., k0..] (mc x kc) into MR-row panels: ap[(p*kc + k)*MR + i] = op(A)[m0 + p*MR + i, k0 + k]. */
function packA(a: usize, M: i32, K: i32, transA: bool, m0: i32, mc: i32, k0: i32, kc: i32, ap: usize): void {
  for (let p = 0; p < mc; p += MR) {
    const rows = min(MR, mc - p);
    const dst = ap + (<usize>(p * kc) << 2);
    if (transA) {
      // A stored [K, M]: the MR values for one k are contiguous.
      for (let k = 0; k < kc; k++) {
        const src = a + (<usize>((k0 + k) * M + m0 + p) << 2);
        const d = dst + (<usize>(k * MR) << 2);
        if (rows == MR) v128.store(d, v128.load(src));
        else for (let i = 0; i < MR; i++) store<f32>(d + (<usize>i << 2), i < rows ? load<f32>(src + (<usize>i << 2)) : 0);
      }
    } else {
      // A stored [M, K]: gather one element from each of MR rows per k; 4x4 blocks are transposed in registers.
      const r0 = a + (<usize>((m0 + p) * K + k0) << 2);
      const ld = <usize>K << 2;
      if (rows == MR) {
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          const o = <usize>k << 2;
          const x0 = v128.load(r0 + o), x1 = v128.load(r0 + ld + o), x2 = v128.load(r0 + 2 * ld + o), x3 = v128.load(r0 + 3 * ld + o);
          const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5); // a0 b0 a1 b1
          const t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5); // c0 d0 c1 d1
          const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7); // a2 b2 a3 b3
          const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7); // c2 d2 c3 d3
          const d = dst + (<usize>(k * MR) << 2);
          v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
          v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 16);
          v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 32);
          v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 48);
        }
        for (; k < kc; k++) {
          const o = <usize>k << 2;
          const d = dst + (<usize>(k * MR) << 2);
          for (let i = 0; i < MR; i++) store<f32>(d + (<usize>i << 2), load<f32>(r0 + <usize>i * ld + o));
        }
      } else {
        for (let k = 0; k < kc; k++) {
          const o = <usize>k << 2;
          const d = dst + (<usize>(k * MR) << 2);
          for (let i = 0; i < MR; i++) store<f32>(d + (<usize>i << 2), i < rows ? load<f32>(r0 + <usize>i * ld + o) : 0);
        }
      }
    }
  }
}

/** Packs op(B)[k0.., n0..] (kc x nc) into NR-column panels: bp[(q*kc + k)*NR + j] = op(B)[k0 + k, n0 + q*NR + j]. */
function packB(b: usize, N: i32, K: i32, transB: bool, k0: i32, kc: i32, n0: i32, nc: i32, bp: usize): void {
  if (!transB) {
    // B stored [K, N]: walk each source row once, left to right (sequential reads; a column-panel order would
    // touch kc different pages per panel, which measured ~2x slower on wide N), scattering 8-float chunks.
    const full = nc & ~(NR - 1);
    for (let k = 0; k < kc; k++) {
      const src = b + (<usize>((k0 + k) * N + n0) << 2);
      let d = bp + (<usize>(k * NR) << 2);
      const panel = <usize>(kc * NR) << 2;
      for (let q = 0; q < full; q += NR) {
        const o = <usize>q << 2;
        v128.store(d, v128.load(src + o));
        v128.store(d, v128.load(src + o, 16), 16);
        d += panel;
      }
      if (full < nc) for (let j = 0; j < NR; j++) store<f32>(d + (<usize>j << 2), full + j < nc ? load<f32>(src + (<usize>(full + j) << 2)) : 0);
    }
    return;
  }
  for (let q = 0; q < nc; q += NR) {
    const cols = min(NR, nc - q);
    const dst = bp + (<usize>(q * kc) << 2);
    // B stored [N, K] (a Linear weight): column j of op(B) is row n0+q+j, contiguous in k. 4x4 transposes.
    const ld = <usize>K << 2;
    for (let jj = 0; jj < NR; jj += 4) {
      const r0 = b + (<usize>((n0 + q + jj) * K + k0) << 2);
      if (cols >= jj + 4) {
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          const o = <usize>k << 2;
          const x0 = v128.load(r0 + o), x1 = v128.load(r0 + ld + o), x2 = v128.load(r0 + 2 * ld + o), x3 = v128.load(r0 + 3 * ld + o);
          const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5);
          const t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7);
          const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
          const d = dst + (<usize>(k * NR + jj) << 2);
          v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
          v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), NR * 4);
          v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), NR * 8);
          v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), NR * 12);
        }
        for (; k < kc; k++) {
          const o = <usize>k << 2;
          const d = dst + (<usize>(k * NR + jj) << 2);
          for (let j = 0; j < 4; j++) store<f32>(d + (<usize>j << 2), load<f32>(r0 + <usize>j * ld + o));
        }
      } else {
        for (let k = 0; k < kc; k++) {
          const o = <usize>k << 2;
          const d = dst + (<usize>(k * NR + jj) << 2);
          for (let j = 0; j < 4; j++) store<f32>(d + (<usize>j << 2), jj + j < cols ? load<f32>(r0 + <usize>j * ld + o) : 0);
        }
      }
    }
  }
}

/** The 4x8 register tile: C[0..4, 0..8] (at cp, row stride ldc bytes) = (addC ? C : 0) + Ap^T Bp over kc. */
function kernel4x8(kc: i32, ap: usize, bp: usize, cp: usize, ldc: usize, addC: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = ap + (<usize>(kc * MR) << 2);
  while (ap < end) {
    const b0 = v128.load(bp), b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    ap += MR * 4;
    bp += NR * 4;
  }
  if (addC) {
    c00 = f32x4.add(c00, v128.load(cp)); c01 = f32x4.add(c01, v128.load(cp, 16));
    c10 = f32x4.add(c10, v128.load(cp + ldc)); c11 = f32x4.add(c11, v128.load(cp + ldc, 16));
    c20 = f32x4.add(c20, v128.load(cp + 2 * ldc)); c21 = f32x4.add(c21, v128.load(cp + 2 * ldc, 16));
    c30 = f32x4.add(c30, v128.load(cp + 3 * ldc)); c31 = f32x4.add(c31, v128.load(cp + 3 * ldc, 16));
  }
  v128.store(cp, c00); v128.store(cp, c01, 16);
  v128.store(cp + ldc, c10); v128.store(cp + ldc, c11, 16);
  v128.store(cp + 2 * ldc, c20); v128.store(cp + 2 * ldc, c21, 16);
  v128.store(cp + 3 * ldc, c30); v128.store(cp + 3 * ldc, c31, 16);
}

/**
 * C[M, N] (+)= op(A) op(B) (+ bias). a, b, c, bias are byte addresses (element offsets already applied; bias 0 =
 * none). scratch: nth x MATMUL_SCRATCH f32 elements, 16-byte aligned (thread tid uses the tid-th).
 *
 * Threads: thread tid of nth computes one block of C: the larger of M and N is cut into nth parts of whole
 * micro-tiles. Each element's sum runs over k in the same order with the same instructions whichever thread owns it
 * (and whether its tile is an edge tile or not), so C does not depend on nth.
 */
export function matmul(a: usize, b: usize, c: usize, bias: usize, M: i32, N: i32, K: i32, transA: bool, transB: bool, accumulate: bool, scratch: usize, tid: i32, nth: i32): void {
  let m0 = 0, m1 = M, n0 = 0, n1 = N;
  if (N >= M) {
    n0 = partStart(N, NR, tid, nth);
    n1 = partStart(N, NR, tid + 1, nth);
  } else {
    m0 = partStart(M, MR, tid, nth);
    m1 = partStart(M, MR, tid + 1, nth);
  }
  if (m0 >= m1 || n0 >= n1) return;
  const ap = scratch + <usize>tid * (<usize>MATMUL_SCRATCH << 2);
  const bp = ap + (<usize>(MC * KC) << 2);
  const tile = bp + (<usize>(KC * NC) << 2);
  const ldc = <usize>N << 2;
  if (K == 0 && !accumulate) for (let m = m0; m < m1; m++) memory.fill(c + <usize>m * ldc + (<usize>n0 << 2), 0, <usize>(n1 - n0) << 2);
  for (let jc = n0; jc < n1; jc += NC) {
    const nc = min(NC, n1 - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      const addC = accumulate || pc > 0;
      packB(b, N, K, transB, pc, kc, jc, nc, bp);
      for (let ic = m0; ic < m1; ic += MC) {
        const mc = min(MC, m1 - ic);
        packA(a, M, K, transA, ic, mc, pc, kc, ap);
        for (let q = 0; q < nc; q += NR) {
          const cols = min(NR, nc - q);
          const bq = bp + (<usize>(q * kc) << 2);
          for (let p = 0; p < mc; p += MR) {
            const rows = min(MR, mc - p);
            const apP = ap + (<usize>(p * kc) << 2);
            const cp = c + <usize>(ic + p) * ldc + (<usize>(jc + q) << 2);
            if (rows == MR && cols == NR) {
              kernel4x8(kc, apP, bq, cp, ldc, addC);
            } else {
              kernel4x8(kc, apP, bq, tile, NR * 4, false);
              for (let i = 0; i < rows; i++)
                for (let j = 0; j < cols; j++) {
                  const d = cp + <usize>i * ldc + (<usize>j << 2);
                  const v = load<f32>(tile + (<usize>(i * NR + j) << 2));
                  store<f32>(d, addC ? load<f32>(d) + v : v);
                }
            }
          }
        }
      }
    }
  }
  if (bias) {
    for (let m = m0; m < m1; m++) {
      const row = c + <usize>m * ldc;
      let n = n0;
      for (; n + 4 <= n1; n += 4) {
        const o = <usize>n << 2;
        v128.store(row + o, f32x4.add(v128.load(row + o), v128.load(bias + o)));
      }
      for (; n < n1; n++) {
        const o = <usize>n << 2;
        store<f32>(row + o, load<f32>(row + o) + load<f32>(bias + o));
      }
    }
  }
}
