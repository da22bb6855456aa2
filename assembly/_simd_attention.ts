// Causal grouped-query attention, forward and backward. The [Tq, Tk] score matrix is never stored: the forward
// keeps one row of nk scores in the caller-provided scratch, the backward a block of QB rows. Scores come four
// keys at a time (dots4), a score row's exps go through the vector exp, P.V and dS.K keep the output row in
// registers (weightedRowSum), and dK/dV rows are updated once per block of QB query rows.
import { axpyRow, dot, expv, hmax, hsum, laneMask, loadPartial, madd, partStart, storePartial } from './_simd_math';

/** In place: s[j] = exp(s[j] - sub) for j < n; returns the sum of the results. */
function expRow(s: usize, n: i32, sub: f32): f32 {
  const sv = f32x4.splat(sub);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const e = expv(f32x4.sub(v128.load(s + o), sv));
    v128.store(s + o, e);
    acc = f32x4.add(acc, e);
  }
  let sum = hsum(acc);
  if (j < n) {
    // Tail through a padded vector so it rounds exactly like the body.
    const e = expv(f32x4.sub(loadPartial(s + (<usize>j << 2), n - j, 0), sv));
    storePartial(s + (<usize>j << 2), e, n - j);
    sum += hsum(v128.and(e, laneMask(n - j)));
  }
  return sum;
}

/**
 * Four dot products at once: lane t = x . rows[t] for the rows at r, r + stride, r + 2 stride, r + 3 stride
 * (D % 4 == 0). x is loaded once per four keys, and the four accumulators are reduced with one 4x4 transpose
 * instead of four horizontal sums.
 */
// @ts-ignore: decorator
@inline
function dots4(x: usize, r: usize, stride: usize, D: i32): v128 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const r1 = r + stride, r2 = r + 2 * stride, r3 = r + 3 * stride;
  for (let d = 0; d < D; d += 4) {
    const o = <usize>d << 2;
    const xv = v128.load(x + o);
    a0 = madd(xv, v128.load(r + o), a0);
    a1 = madd(xv, v128.load(r1 + o), a1);
    a2 = madd(xv, v128.load(r2 + o), a2);
    a3 = madd(xv, v128.load(r3 + o), a3);
  }
  // (a0 a1 a2 a3) -> lane t = sum of a_t's lanes.
  const t0 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7)); // a0[0+2] a1[0+2] a0[1+3] a1[1+3]
  const t1 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(t0, t1, 0, 1, 4, 5), v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
}

/** s[j] = scale * (x . row_j) for j < n, rows at r + j*stride; returns the max. */
function scoreRow(x: usize, r: usize, stride: usize, D: i32, n: i32, scale: f32, s: usize): f32 {
  let mx: f32 = -Infinity;
  let j = 0;
  if ((D & 3) == 0) {
    const sv = f32x4.splat(scale);
    let mv = f32x4.splat(-Infinity);
    for (; j + 4 <= n; j += 4) {
      const v = f32x4.mul(dots4(x, r + <usize>j * stride, stride, D), sv);
      v128.store(s + (<usize>j << 2), v);
      mv = f32x4.pmax(mv, v);
    }
    mx = hmax(mv);
  }
  for (; j < n; j++) {
    const sj = dot(x, r + <usize>j * stride, D) * scale;
    store<f32>(s + (<usize>j << 2), sj);
    mx = max(mx, sj);
  }
  return mx;
}

/**
 * out[0..D) (+)= alpha * sum_j p[j] * row_j (rows at r + j*stride). The output is held in registers 16 floats
 * at a time while all n rows stream past, instead of a load/store of the whole row per key.
 */
function weightedRowSum(p: usize, r: usize, stride: usize, n: i32, D: i32, alpha: f32, out: usize, accumulate: bool): void {
  const av = f32x4.splat(alpha);
  let d = 0;
  for (; d + 16 <= D; d += 16) {
    const o = <usize>d << 2;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let rj = r + o;
    for (let j = 0; j < n; j++) {
      const pj = v128.load32_splat(p + (<usize>j << 2));
      a0 = madd(pj, v128.load(rj), a0);
      a1 = madd(pj, v128.load(rj, 16), a1);
      a2 = madd(pj, v128.load(rj, 32), a2);
      a3 = madd(pj, v128.load(rj, 48), a3);
      rj += stride;
    }
    a0 = f32x4.mul(a0, av); a1 = f32x4.mul(a1, av); a2 = f32x4.mul(a2, av); a3 = f32x4.mul(a3, av);
    if (accumulate) {
      a0 = f32x4.add(a0, v128.load(out + o)); a1 = f32x4.add(a1, v128.load(out + o, 16));
      a2 = f32x4.add(a2, v128.load(out + o, 32)); a3 = f32x4.add(a3, v128.load(out + o, 48));
    }
    v128.store(out + o, a0); v128.store(out + o, a1, 16); v128.store(out + o, a2, 32); v128.store(out + o, a3, 48);
  }
  for (; d < D; d++) {
    // Remainder columns (D % 16) one at a time: rare shapes only.
    const o = <usize>d << 2;
    let acc: f32 = 0;
    for (let j = 0; j < n; j++) acc += load<f32>(p + (<usize>j << 2)) * load<f32>(r + o + <usize>j * stride);
    store<f32>(out + o, (accumulate ? load<f32>(out + o) : 0) + alpha * acc);
  }
}

/** Query rows per block in the backward: dK/dV rows are read-modified-written once per block, not per row. */
const QB = 4;

/** Bytes of scratch ONE thread needs for attention or its backward with this cache capacity (the backward's 2 x QB rows). */
export function attentionScratchBytes(kvCap: i32): i32 {
  return 2 * QB * kvCap * 4 + 64;
}

/** Position of sequence b's query row 0: qStarts[b] when the call has per-sequence starts (qStarts != 0), else qStart. */
// @ts-ignore: decorator
@inline
function startOf(qStarts: usize, b: i32, qStart: i32): i32 {
  return qStarts ? load<i32>(qStarts + (<usize>b << 2)) : qStart;
}

/** Sequence b's first query row: qRows[b] with per-sequence rows (qRows != 0), else b * Tq. */
// @ts-ignore: decorator
@inline
function firstRow(qRows: usize, b: i32, Tq: i32): i32 {
  return qRows ? load<i32>(qRows + (<usize>b << 2)) : b * Tq;
}

/**
 * q, out [B, Tq, Hq, D]; k, v [B, kvCap, Hkv, D]; lse [B, Hq, Tq]. qStarts: 0, or i32 [B] per-sequence starts (each
 * <= qStart); qRows: 0, or i32 [B + 1] per-sequence first rows (then q, out are [Tq, Hq, D] with Tq all the rows,
 * and sequence b's lse block [Hq, rows of b] starts at Hq * qRows[b]); both checked by the caller. scratch: nth x
 * attentionScratchBytes(kvCap). Thread tid of nth takes a contiguous share of the B x Hq (sequence, head) pairs,
 * which write disjoint rows.
 */
export function attention(q: usize, k: usize, v: usize, out: usize, lse: usize, qStarts: usize, qRows: usize, B: i32, Tq: i32, Hq: i32, Hkv: i32, D: i32, qStart: i32, kvCap: i32, scratch: usize, tid: i32, nth: i32): void {
  const rep = Hq / Hkv;
  const scale = <f32>(1.0 / Math.sqrt(<f64>D));
  const kvRow = <usize>(Hkv * D) << 2; // bytes between consecutive positions of one kv head
  scratch += <usize>tid * <usize>attentionScratchBytes(kvCap);
  const u1 = partStart(B * Hq, 1, tid + 1, nth);
  for (let u = partStart(B * Hq, 1, tid, nth); u < u1; u++) {
    const b = u / Hq, h = u % Hq;
    const kh = h / rep;
    const qs = startOf(qStarts, b, qStart);
    const r0 = firstRow(qRows, b, Tq), n = qRows ? firstRow(qRows, b + 1, Tq) - r0 : Tq;
    const kBase = k + (<usize>((b * kvCap * Hkv + kh) * D) << 2);
    const vBase = v + (<usize>((b * kvCap * Hkv + kh) * D) << 2);
    for (let i = 0; i < n; i++) {
      const qo = q + (<usize>(((r0 + i) * Hq + h) * D) << 2);
      const oo = out + (<usize>(((r0 + i) * Hq + h) * D) << 2);
      const nk = qs + i + 1;
      const mx = scoreRow(qo, kBase, kvRow, D, nk, scale, scratch);
      const sum = expRow(scratch, nk, mx);
      weightedRowSum(scratch, vBase, kvRow, nk, D, <f32>1.0 / sum, oo, false);
      store<f32>(lse + (<usize>(Hq * r0 + h * n + i) << 2), mx + Mathf.log(sum));
    }
  }
}

/**
 * dq, dk, dv accumulate (+=). Per thread, attentionScratchBytes(kvCap): per query row of a block, its probabilities
 * p_j and then its dS_j = p_j (dP_j - delta) scale (zero past the row's causal limit, up to the block's).
 * Thread tid of nth takes a contiguous share of the B x Hkv (sequence, kv head) pairs: the dK/dV rows of a kv head
 * sum over its query heads, so one thread does all of them, in head order (the order of the one-thread loop).
 */
export function attentionBackward(g: usize, q: usize, k: usize, v: usize, out: usize, lse: usize, dq: usize, dk: usize, dv: usize, qStarts: usize, qRows: usize, B: i32, Tq: i32, Hq: i32, Hkv: i32, D: i32, qStart: i32, kvCap: i32, scratch: usize, tid: i32, nth: i32): void {
  const rep = Hq / Hkv;
  const scale = <f32>(1.0 / Math.sqrt(<f64>D));
  const kvRow = <usize>(Hkv * D) << 2;
  const qRow = <usize>(Hq * D) << 2; // bytes between consecutive query rows of one head
  const cap = <usize>kvCap << 2;
  scratch += <usize>tid * <usize>attentionScratchBytes(kvCap);
  const dsBase = scratch + <usize>QB * cap;
  const u1 = partStart(B * Hkv, 1, tid + 1, nth);
  for (let u = partStart(B * Hkv, 1, tid, nth); u < u1; u++)
    for (let h = (u % Hkv) * rep, hEnd = h + rep; h < hEnd; h++) {
      const b = u / Hkv, kh = h / rep;
      const qs = startOf(qStarts, b, qStart);
      const r0 = firstRow(qRows, b, Tq), n = qRows ? firstRow(qRows, b + 1, Tq) - r0 : Tq;
      const off = <usize>((b * kvCap * Hkv + kh) * D) << 2;
      for (let i0 = 0; i0 < n; i0 += QB) {
        const nb = min(QB, n - i0);
        const nkMax = qs + i0 + nb;
        for (let t = 0; t < nb; t++) {
          const i = i0 + t;
          const ro = <usize>(((r0 + i) * Hq + h) * D) << 2;
          const qo = q + ro, go = g + ro;
          const nk = qs + i + 1;
          const pRow = scratch + <usize>t * cap, dsRow = dsBase + <usize>t * cap;
          const l = load<f32>(lse + (<usize>(Hq * r0 + h * n + i) << 2));
          const delta = dot(go, out + ro, D);
          // p_j = exp(q.k_j * scale - lse), recomputed rather than stored (flash-attention style).
          scoreRow(qo, k + off, kvRow, D, nk, scale, pRow);
          expRow(pRow, nk, l);
          scoreRow(go, v + off, kvRow, D, nk, 1, dsRow);
          for (let j = 0; j < nk; j++) {
            const o = <usize>j << 2;
            store<f32>(dsRow + o, load<f32>(pRow + o) * (load<f32>(dsRow + o) - delta) * scale);
          }
          const pad = <usize>(nkMax - nk) << 2;
          memory.fill(pRow + (<usize>nk << 2), 0, pad);
          memory.fill(dsRow + (<usize>nk << 2), 0, pad);
          // dq_i += sum_j dS_j k_j, with the dq row held in registers.
          weightedRowSum(dsRow, k + off, kvRow, nk, D, 1, dq + ro, true);
        }
        // dk_j += sum_t dS_tj q_t;  dv_j += sum_t p_tj g_t over the block's rows.
        const rb = <usize>(((r0 + i0) * Hq + h) * D) << 2;
        if ((D & 3) == 0 && nb == QB) {
          const q0 = q + rb, q1 = q0 + qRow, q2 = q1 + qRow, q3 = q2 + qRow;
          const g0 = g + rb, g1 = g0 + qRow, g2 = g1 + qRow, g3 = g2 + qRow;
          for (let j = 0; j < nkMax; j++) {
            const o = <usize>j << 2;
            const p0 = v128.load32_splat(scratch + o), p1 = v128.load32_splat(scratch + cap + o);
            const p2 = v128.load32_splat(scratch + 2 * cap + o), p3 = v128.load32_splat(scratch + 3 * cap + o);
            const s0 = v128.load32_splat(dsBase + o), s1 = v128.load32_splat(dsBase + cap + o);
            const s2 = v128.load32_splat(dsBase + 2 * cap + o), s3 = v128.load32_splat(dsBase + 3 * cap + o);
            const dkj = dk + off + <usize>j * kvRow, dvj = dv + off + <usize>j * kvRow;
            for (let d = 0; d < D; d += 4) {
              const c = <usize>d << 2;
              let x = v128.load(dvj + c);
              x = f32x4.add(x, f32x4.add(f32x4.add(f32x4.mul(p0, v128.load(g0 + c)), f32x4.mul(p1, v128.load(g1 + c))), f32x4.add(f32x4.mul(p2, v128.load(g2 + c)), f32x4.mul(p3, v128.load(g3 + c)))));
              v128.store(dvj + c, x);
              let y = v128.load(dkj + c);
              y = f32x4.add(y, f32x4.add(f32x4.add(f32x4.mul(s0, v128.load(q0 + c)), f32x4.mul(s1, v128.load(q1 + c))), f32x4.add(f32x4.mul(s2, v128.load(q2 + c)), f32x4.mul(s3, v128.load(q3 + c)))));
              v128.store(dkj + c, y);
            }
          }
        } else {
          for (let t = 0; t < nb; t++) {
            const ro = rb + <usize>t * qRow;
            for (let j = 0; j < nkMax; j++) {
              const kvo = off + <usize>j * kvRow, o = <usize>t * cap + (<usize>j << 2);
              axpyRow(load<f32>(scratch + o), g + ro, dv + kvo, D);
              axpyRow(load<f32>(dsBase + o), q + ro, dk + kvo, D);
            }
          }
        }
      }
    }
}
