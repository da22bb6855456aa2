// Causal grouped-query attention, forward and backward, one query row at a time (the [Tq, Tk] score matrix is
// never stored: one row of nk scores lives in the caller-provided scratch). Inner loops run over the head
// dimension with v128 (dot / axpyRow), and the exps of a whole score row go through the vector exp.
import { axpyRow, dot, expv, hsum, laneMask, loadPartial, storePartial } from './_simd_math';

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

/** q, out [B, Tq, Hq, D]; k, v [B, kvCap, Hkv, D]; lse [B, Hq, Tq]; scratch >= qStart + Tq f32. */
export function attention(q: usize, k: usize, v: usize, out: usize, lse: usize, B: i32, Tq: i32, Hq: i32, Hkv: i32, D: i32, qStart: i32, kvCap: i32, scratch: usize): void {
  const rep = Hq / Hkv;
  const scale = <f32>(1.0 / Math.sqrt(<f64>D));
  const kvRow = <usize>(Hkv * D) << 2; // bytes between consecutive positions of one kv head
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kh = h / rep;
      const kBase = k + (<usize>((b * kvCap * Hkv + kh) * D) << 2);
      const vBase = v + (<usize>((b * kvCap * Hkv + kh) * D) << 2);
      for (let i = 0; i < Tq; i++) {
        const qo = q + (<usize>(((b * Tq + i) * Hq + h) * D) << 2);
        const oo = out + (<usize>(((b * Tq + i) * Hq + h) * D) << 2);
        const nk = qStart + i + 1;
        let mx: f32 = -Infinity;
        for (let j = 0; j < nk; j++) {
          const sj = dot(qo, kBase + <usize>j * kvRow, D) * scale;
          store<f32>(scratch + (<usize>j << 2), sj);
          mx = max(mx, sj);
        }
        const sum = expRow(scratch, nk, mx);
        memory.fill(oo, 0, <usize>D << 2);
        const inv: f32 = 1.0 / sum;
        for (let j = 0; j < nk; j++) axpyRow(load<f32>(scratch + (<usize>j << 2)) * inv, vBase + <usize>j * kvRow, oo, D);
        store<f32>(lse + (<usize>((b * Hq + h) * Tq + i) << 2), mx + Mathf.log(sum));
      }
    }
}

/** dq, dk, dv accumulate (+=). scratch >= qStart + Tq f32. */
export function attentionBackward(g: usize, q: usize, k: usize, v: usize, out: usize, lse: usize, dq: usize, dk: usize, dv: usize, B: i32, Tq: i32, Hq: i32, Hkv: i32, D: i32, qStart: i32, kvCap: i32, scratch: usize): void {
  const rep = Hq / Hkv;
  const scale = <f32>(1.0 / Math.sqrt(<f64>D));
  const kvRow = <usize>(Hkv * D) << 2;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kh = h / rep;
      const off = <usize>((b * kvCap * Hkv + kh) * D) << 2;
      for (let i = 0; i < Tq; i++) {
        const ro = <usize>(((b * Tq + i) * Hq + h) * D) << 2;
        const qo = q + ro, go = g + ro, dqo = dq + ro;
        const nk = qStart + i + 1;
        const l = load<f32>(lse + (<usize>((b * Hq + h) * Tq + i) << 2));
        const delta = dot(go, out + ro, D);
        // p_j = exp(q.k_j * scale - lse), recomputed rather than stored (flash-attention style).
        for (let j = 0; j < nk; j++) store<f32>(scratch + (<usize>j << 2), dot(qo, k + off + <usize>j * kvRow, D) * scale);
        expRow(scratch, nk, l);
        for (let j = 0; j < nk; j++) {
          const p = load<f32>(scratch + (<usize>j << 2));
          const kj = k + off + <usize>j * kvRow, vj = v + off + <usize>j * kvRow;
          const dp = dot(go, vj, D);
          axpyRow(p, go, dv + off + <usize>j * kvRow, D);
          const ds = p * (dp - delta) * scale;
          axpyRow(ds, kj, dqo, D);
          axpyRow(ds, qo, dk + off + <usize>j * kvRow, D);
        }
      }
    }
}
