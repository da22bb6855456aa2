// C[M, N] (+)= op(A) op(B): GotoBLAS-style blocked matmul with WASM SIMD.
//
// Why this shape: a register-blocked micro-kernel (MR x NR = 4 x 8 outputs held in 8 v128 accumulators, 11 of
// the 16 SIMD registers V8 gives us on x64) does 16 vector mul/add per 6 loads. To keep it fed, both operands are
// PACKED first into the exact order the kernel reads them (A panels: 4 rows interleaved along k; B panels: 8
// columns contiguous per k). Packing is also where the four transpose variants and the element offsets are
// absorbed, so there is only one kernel. Edge tiles are zero-padded in packing and written through a small temp
// tile. Blocking: KC x NC of B (~1 MiB, L2/L3) is packed once per (jc, pc); MC x KC of A (128 KiB, L2) per ic.
// Few rows (a latent's one-position pass, decoding, a thread's share of a short matmul): packing B then costs as
// much as the multiply-adds it feeds, so with M <= 4 a stored [K, N] B is read in place, with M = 1 a stored
// [N, K] B is transposed in registers (kernel1x8T), and single-row tiles skip the three zero rows (kernel1x8).
// Measured (1 thread, CPU time per call): dX [1x384] x [384x128] 2.8 -> 8.6 GFLOP/s; fwd [1x128] -> 384 5 -> 6-7.

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

/**
 * The 4x8 register tile: C[0..4, 0..8] (at cp, row stride ldc bytes) = (addC ? C : 0) + Ap^T Bp over kc. The 8
 * values of B for one k are contiguous; consecutive k are `ldb` bytes apart (NR * 4 in a packed panel, the row
 * stride of B when it is read in place).
 */
function kernel4x8(kc: i32, ap: usize, bp: usize, ldb: usize, cp: usize, ldc: usize, addC: bool): void {
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
    bp += ldb;
  }
  storeTile(c00, c01, c10, c11, c20, c21, c30, c31, cp, ldc, addC);
}

/**
 * kernel4x8 for a tile of ONE row (M = 1: a latent's single-position pass, incremental decoding; the last row of an
 * M = 4n + 1 block): the same multiply-adds in the same order for that row, without the three rows of zeros.
 * C[0, 0..8] at cp = (addC ? C : 0) + sum over k of Ap[k] Bp[k].
 */
function kernel1x8(kc: i32, ap: usize, bp: usize, ldb: usize, cp: usize, addC: bool): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
  const end = ap + (<usize>(kc * MR) << 2);
  while (ap < end) {
    const a = v128.load32_splat(ap);
    c0 = madd(a, v128.load(bp), c0);
    c1 = madd(a, v128.load(bp, 16), c1);
    ap += MR * 4;
    bp += ldb;
  }
  if (addC) {
    c0 = f32x4.add(c0, v128.load(cp));
    c1 = f32x4.add(c1, v128.load(cp, 16));
  }
  v128.store(cp, c0);
  v128.store(cp, c1, 16);
}

/**
 * kernel1x8 with B stored [N, K] (a Linear weight) read in place: the 8 rows at br (row stride ldk bytes) are
 * transposed 4 k at a time in registers, as packB would, and consumed at once. For one row of A the packing is most
 * of the work, so this skips it; the multiply-adds and their order are kernel1x8's.
 */
function kernel1x8T(kc: i32, ap: usize, br: usize, ldk: usize, cp: usize, addC: bool): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
  const r4 = br + 4 * ldk;
  let k = 0;
  for (; k + 4 <= kc; k += 4) {
    const o = <usize>k << 2;
    const a = ap + (<usize>(k * MR) << 2);
    const x0 = v128.load(br + o), x1 = v128.load(br + ldk + o), x2 = v128.load(br + 2 * ldk + o), x3 = v128.load(br + 3 * ldk + o);
    const y0 = v128.load(r4 + o), y1 = v128.load(r4 + ldk + o), y2 = v128.load(r4 + 2 * ldk + o), y3 = v128.load(r4 + 3 * ldk + o);
    const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5);
    const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7);
    const u0 = v128.shuffle<f32>(y0, y1, 0, 4, 1, 5), u1 = v128.shuffle<f32>(y2, y3, 0, 4, 1, 5);
    const u2 = v128.shuffle<f32>(y0, y1, 2, 6, 3, 7), u3 = v128.shuffle<f32>(y2, y3, 2, 6, 3, 7);
    let av = v128.load32_splat(a);
    c0 = madd(av, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), c0);
    c1 = madd(av, v128.shuffle<f32>(u0, u1, 0, 1, 4, 5), c1);
    av = v128.load32_splat(a, MR * 4);
    c0 = madd(av, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), c0);
    c1 = madd(av, v128.shuffle<f32>(u0, u1, 2, 3, 6, 7), c1);
    av = v128.load32_splat(a, MR * 8);
    c0 = madd(av, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), c0);
    c1 = madd(av, v128.shuffle<f32>(u2, u3, 0, 1, 4, 5), c1);
    av = v128.load32_splat(a, MR * 12);
    c0 = madd(av, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), c0);
    c1 = madd(av, v128.shuffle<f32>(u2, u3, 2, 3, 6, 7), c1);
  }
  for (; k < kc; k++) {
    const o = <usize>k << 2;
    const av = v128.load32_splat(ap + (<usize>(k * MR) << 2));
    let b0 = f32x4.splat(load<f32>(br + o)), b1 = f32x4.splat(load<f32>(r4 + o));
    b0 = f32x4.replace_lane(b0, 1, load<f32>(br + ldk + o));
    b0 = f32x4.replace_lane(b0, 2, load<f32>(br + 2 * ldk + o));
    b0 = f32x4.replace_lane(b0, 3, load<f32>(br + 3 * ldk + o));
    b1 = f32x4.replace_lane(b1, 1, load<f32>(r4 + ldk + o));
    b1 = f32x4.replace_lane(b1, 2, load<f32>(r4 + 2 * ldk + o));
    b1 = f32x4.replace_lane(b1, 3, load<f32>(r4 + 3 * ldk + o));
    c0 = madd(av, b0, c0);
    c1 = madd(av, b1, c1);
  }
  if (addC) {
    c0 = f32x4.add(c0, v128.load(cp));
    c1 = f32x4.add(c1, v128.load(cp, 16));
  }
  v128.store(cp, c0);
  v128.store(cp, c1, 16);
}

/** Writes the eight accumulators of a 4x8 tile to C (adding C's values first when addC). */
// @ts-ignore: decorator
@inline
function storeTile(c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128, cp: usize, ldc: usize, addC: bool): void {
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
      // One row panel (M <= MR): each B value is used by one tile only, so packing a stored [K, N] B would copy it
      // just to read it once: the kernels read it in place (row stride N) instead. Same values, same order.
      const direct = !transB && m1 - m0 <= MR;
      // One row of A and B stored [N, K]: kernel1x8T transposes B in registers instead (full panels; the partial
      // last panel is packed).
      const directT = transB && m1 - m0 == 1;
      if (!direct && !directT) packB(b, N, K, transB, pc, kc, jc, nc, bp);
      else if (directT && nc % NR) packB(b, N, K, true, pc, kc, jc + (nc & ~(NR - 1)), nc % NR, bp);
      for (let ic = m0; ic < m1; ic += MC) {
        const mc = min(MC, m1 - ic);
        packA(a, M, K, transA, ic, mc, pc, kc, ap);
        for (let q = 0; q < nc; q += NR) {
          const cols = min(NR, nc - q);
          let bq = bp + (<usize>(q * kc) << 2), ldb: usize = NR * 4;
          if (directT) {
            if (cols == NR) {
              kernel1x8T(kc, ap, b + (<usize>((jc + q) * K + pc) << 2), <usize>K << 2, c + <usize>ic * ldc + (<usize>(jc + q) << 2), addC);
              continue;
            }
            bq = bp; // the packed partial panel
          } else if (direct) {
            if (cols == NR) {
              bq = b + (<usize>(pc * N + jc + q) << 2);
              ldb = <usize>N << 2;
            } else {
              // the last, partial panel: reading 8 columns in place would run past the end of B
              packB(b, N, K, false, pc, kc, jc + q, cols, bp);
              bq = bp;
            }
          }
          for (let p = 0; p < mc; p += MR) {
            const rows = min(MR, mc - p);
            const apP = ap + (<usize>(p * kc) << 2);
            const cp = c + <usize>(ic + p) * ldc + (<usize>(jc + q) << 2);
            if (rows == MR && cols == NR) {
              kernel4x8(kc, apP, bq, ldb, cp, ldc, addC);
            } else if (rows == 1 && cols == NR) {
              kernel1x8(kc, apP, bq, ldb, cp, addC);
            } else {
              if (rows == 1) kernel1x8(kc, apP, bq, ldb, tile, false);
              else kernel4x8(kc, apP, bq, ldb, tile, NR * 4, false);
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
