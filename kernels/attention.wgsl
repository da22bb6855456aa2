// Causal grouped-query attention without materialising the [Tq, Tk] score matrix (header: see matmul.wgsl).
// q, out, dOut: [B, Tq, Hq, D]; K/V caches: [B, kvCap, Hkv, D]; lse, delta: [B, Hq, Tq]. Query i of a sequence
// sits at absolute position qStart + i and attends keys 0..qStart+i. Query head h reads kv head h / (Hq/Hkv).
// D is a specialisation constant so per-invocation row buffers live in registers / private memory.
// Params: B, Tq, Hq, Hkv, qStart, kvCap, scale (= 1/sqrt(D)).
//
// Per-sequence layouts (the model's aligned segments, src/model/qwen2.ts): with QSTARTS the i32 binding qs holds
// sequence b's start position (<= qStart) instead of qStart; with QROWS (always with QSTARTS) the i32 binding qr
// holds B + 1 row offsets: sequence b owns rows qr[b] .. qr[b+1] - 1 of q/out/dOut (Tq then counts all rows) and
// lse/delta's [Hq, rows of b] block from element Hq * qr[b]. The offsets come from the model, not from users; an
// out-of-range value reads or writes out of bounds, which WebGPU clamps, so it corrupts results but not memory.

/** Sequence b's first row in q/out/dOut (row r's elements start at r * Hq * D). */
fn seq_row0(b: u32) -> u32 { if (QROWS) { return u32(ld_qr(b)); } return b * P.Tq; }
/** Sequence b's number of query rows. */
fn seq_rows(b: u32) -> u32 { if (QROWS) { return u32(ld_qr(b + 1u) - ld_qr(b)); } return P.Tq; }
/** The position of sequence b's query row 0. */
fn seq_start(b: u32) -> u32 { if (QSTARTS) { return u32(ld_qs(b)); } return P.qStart; }
/** Query rows of all sequences. */
fn all_rows() -> u32 { if (QROWS) { return P.Tq; } return P.B * P.Tq; }
/** Keys any sequence may have (the key kernels' grid): the last visible position + 1, at most kvCap. */
fn keys_bound() -> u32 { return min(P.qStart + P.Tq, P.kvCap); }

//#kernel forward
// One invocation per (b, h, i), online (flash-style) softmax over the keys: a running max m, a running sum l
// of exp(s - m) and a running weighted sum of V rows, rescaled whenever the max grows.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  //#include query_row
  let nk = s0 + i + 1u;
  var q: array<f32, D>;
  var acc: array<f32, D>;
  for (var c = 0u; c < D; c += 1u) { q[c] = ld_q(qo + c); }
  var m = 0.0;
  var l = 0.0;
  for (var j = 0u; j < nk; j += 1u) {
    let ko = ((b * P.kvCap + j) * P.Hkv + kh) * D;
    var d = 0.0;
    for (var c = 0u; c < D; c += 1u) { d += q[c] * ld_k(ko + c); }
    let s = d * P.scale;
    if (j == 0u || s > m) {
      // New maximum: rescale what was accumulated so far (exp(-inf) = 0 on the first key).
      let corr = select(exp(m - s), 0.0, j == 0u);
      l = l * corr + 1.0;
      for (var c = 0u; c < D; c += 1u) { acc[c] = acc[c] * corr + ld_v(ko + c); }
      m = s;
    } else {
      let p = exp(s - m);
      l += p;
      for (var c = 0u; c < D; c += 1u) { acc[c] += p * ld_v(ko + c); }
    }
  }
  let inv = 1.0 / l;
  for (var c = 0u; c < D; c += 1u) { st_out(qo + c, acc[c] * inv); }
  st_lse(li, m + log(l));
}

//#kernel backwardQ
// One invocation per (b, h, i): delta_i = sum_c dO*O (saved for the key pass), then for every key j
// p = exp(s_ij - lse_i) (recomputed, as in the CPU reference), ds = p * (dO.v_j - delta_i) * scale,
// dq_i += ds * k_j.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  //#include query_row
  let nk = s0 + i + 1u;
  var q: array<f32, D>;
  var g: array<f32, D>;
  var dq: array<f32, D>;
  var delta = 0.0;
  for (var c = 0u; c < D; c += 1u) {
    q[c] = ld_q(qo + c);
    g[c] = ld_dout(qo + c);
    delta += g[c] * ld_out(qo + c);
  }
  st_delta(li, delta);
  let l = ld_lse(li);
  for (var j = 0u; j < nk; j += 1u) {
    let ko = ((b * P.kvCap + j) * P.Hkv + kh) * D;
    var d = 0.0;
    var dp = 0.0;
    for (var c = 0u; c < D; c += 1u) {
      d += q[c] * ld_k(ko + c);
      dp += g[c] * ld_v(ko + c);
    }
    let ds = exp(d * P.scale - l) * (dp - delta) * P.scale;
    for (var c = 0u; c < D; c += 1u) { dq[c] += ds * ld_k(ko + c); }
  }
  for (var c = 0u; c < D; c += 1u) { st_dq(qo + c, ld_dq(qo + c) + dq[c]); }
}

//#kernel backwardKV
// Key-row parallel: one invocation per (b, kv head, key row j, chunk of DC columns) loops over the query heads
// sharing the kv head and the queries that see key j, so dK/dV rows are owned by one invocation (no atomics).
// Needs delta from backwardQ. Each invocation recomputes the full-D dot products for its chunk.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let nChunks = D / DC;
  let nKeys = keys_bound();
  let t = (wid.y * nwg.x + wid.x) * WG + lid;
  if (t >= P.B * P.Hkv * nKeys * nChunks) { return; }
  let ch = t % nChunks;
  let j = (t / nChunks) % nKeys;
  let kh = (t / (nChunks * nKeys)) % P.Hkv;
  let b = t / (nChunks * nKeys * P.Hkv);
  let r0 = seq_row0(b);
  let n = seq_rows(b);
  let s0 = seq_start(b);
  // Keys no query of sequence b sees (past its last position) get no gradient: their rows are left as they are.
  if (j >= s0 + n) { return; }
  let rep = P.Hq / P.Hkv;
  let ko = ((b * P.kvCap + j) * P.Hkv + kh) * D;
  let c0 = ch * DC;
  var k: array<f32, D>;
  var v: array<f32, D>;
  var dk: array<f32, DC>;
  var dv: array<f32, DC>;
  for (var c = 0u; c < D; c += 1u) { k[c] = ld_k(ko + c); v[c] = ld_v(ko + c); }
  // Query i sees key j iff j <= s0 + i.
  let i0 = select(0u, j - s0, j > s0);
  for (var h = kh * rep; h < (kh + 1u) * rep; h += 1u) {
    for (var i = i0; i < n; i += 1u) {
      let qo = ((r0 + i) * P.Hq + h) * D;
      let li = P.Hq * r0 + h * n + i;
      var d = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < D; c += 1u) {
        d += ld_q(qo + c) * k[c];
        dp += ld_dout(qo + c) * v[c];
      }
      let p = exp(d * P.scale - ld_lse(li));
      let ds = p * (dp - ld_delta(li)) * P.scale;
      for (var c = 0u; c < DC; c += 1u) {
        dv[c] += p * ld_dout(qo + c0 + c);
        dk[c] += ds * ld_q(qo + c0 + c);
      }
    }
  }
  for (var c = 0u; c < DC; c += 1u) {
    st_dk(ko + c0 + c, ld_dk(ko + c0 + c) + dk[c]);
    st_dv(ko + c0 + c, ld_dv(ko + c0 + c) + dv[c]);
  }
}

//#kernel flashForward
// Tiled variant for hardware GPUs. A workgroup owns one (b, kv head) and a block of BQ query positions for all
// REP = Hq / Hkv query heads of that KV group (WG = REP * BQ invocations, one query row each). Keys and values
// are staged BKV rows at a time in workgroup memory and read from there by every query row of the block: each
// K/V element loaded from global memory serves REP * BQ queries instead of one. The key loop stops at the
// block's last visible key (causal tile skipping: the tiles above the diagonal are never loaded). Per tile the
// scores are computed first, then the running max, sum and output are rescaled once (online softmax).
var<workgroup> Ks: array<f32, BKV * D>;
var<workgroup> Vs: array<f32, BKV * D>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  //#include query_block
  var q: array<f32, D>;
  var acc: array<f32, D>;
  var sc: array<f32, BKV>;
  for (var c = 0u; c < D; c += 1u) { q[c] = ld_q(qo + c) * P.scale; }
  var m = -3.4028e38;
  var l = 0.0;
  for (var j0 = 0u; j0 < kEnd; j0 += BKV) {
    //#include stage_kv(ROWS = BKV, FIRST = j0, END = kEnd)
    workgroupBarrier();
    var tmax = m;
    for (var jj = 0u; jj < BKV; jj += 1u) {
      var s = 0.0;
      for (var c = 0u; c < D; c += 1u) { s += q[c] * Ks[jj * D + c]; }
      sc[jj] = s;
      if (j0 + jj < nk) { tmax = max(tmax, s); }
    }
    let corr = exp(m - tmax); // 0 on the first visible key (m is -max f32), 1 when the max did not grow
    l *= corr;
    for (var c = 0u; c < D; c += 1u) { acc[c] *= corr; }
    for (var jj = 0u; jj < BKV; jj += 1u) {
      if (j0 + jj >= nk) { break; }
      let p = exp(sc[jj] - tmax);
      l += p;
      for (var c = 0u; c < D; c += 1u) { acc[c] += p * Vs[jj * D + c]; }
    }
    m = tmax;
    workgroupBarrier();
  }
  if (!live) { return; }
  let inv = 1.0 / l;
  for (var c = 0u; c < D; c += 1u) { st_out(qo + c, acc[c] * inv); }
  st_lse(li, m + log(l));
}

//#kernel flashBackwardQ
// Tiled dQ (same workgroup layout and K/V staging as flashForward): delta_i = dO_i . O_i, then for every visible
// key p = exp(s - lse_i), ds = p * (dO_i . v_j - delta_i) * scale, dq_i += ds * k_j.
var<workgroup> Ks: array<f32, BKV * D>;
var<workgroup> Vs: array<f32, BKV * D>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  //#include query_block
  var q: array<f32, D>;
  var g: array<f32, D>;
  var dq: array<f32, D>;
  var delta = 0.0;
  for (var c = 0u; c < D; c += 1u) {
    q[c] = ld_q(qo + c);
    g[c] = ld_dout(qo + c);
    delta += g[c] * ld_out(qo + c);
  }
  let lse = ld_lse(li);
  for (var j0 = 0u; j0 < kEnd; j0 += BKV) {
    //#include stage_kv(ROWS = BKV, FIRST = j0, END = kEnd)
    workgroupBarrier();
    for (var jj = 0u; jj < BKV; jj += 1u) {
      if (j0 + jj >= nk) { break; }
      var d = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < D; c += 1u) {
        d += q[c] * Ks[jj * D + c];
        dp += g[c] * Vs[jj * D + c];
      }
      let ds = exp(d * P.scale - lse) * (dp - delta) * P.scale;
      for (var c = 0u; c < D; c += 1u) { dq[c] += ds * Ks[jj * D + c]; }
    }
    workgroupBarrier();
  }
  if (!live) { return; }
  st_delta(li, delta);
  for (var c = 0u; c < D; c += 1u) { st_dq(qo + c, ld_dq(qo + c) + dq[c]); }
}

//#kernel flashBackwardKV
// Tiled dK/dV: a workgroup owns one (b, kv head) and a block of BKK key rows; invocation (key jj, column chunk ch)
// owns DC columns of dK and dV for its key (no atomics). The block's K/V rows are staged once; then, for every
// query head of the group, query rows (Q, dO, lse, delta) are staged BQT at a time and shared by all keys of the
// block. Query tiles start at the first query that sees the block's first key (causal tile skipping).
var<workgroup> Ks: array<f32, BKK * D>;
var<workgroup> Vs: array<f32, BKK * D>;
var<workgroup> Qs: array<f32, BQT * D>;
var<workgroup> Gs: array<f32, BQT * D>;
var<workgroup> Ls: array<f32, BQT>;
var<workgroup> Ds: array<f32, BQT>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let nChunks = D / DC;
  let nkb = (keys_bound() + BKK - 1u) / BKK;
  let grp = wid.y * nwg.x + wid.x;
  if (grp >= P.B * P.Hkv * nkb) { return; }
  let kb = grp % nkb;
  let kh = (grp / nkb) % P.Hkv;
  let b = grp / (nkb * P.Hkv);
  let r0 = seq_row0(b);
  let n = seq_rows(b);
  let s0 = seq_start(b);
  // Keys of sequence b: those its queries see. A block past them (per-sequence layouts) returns, workgroup-uniform.
  let nKeys = s0 + n;
  if (kb * BKK >= nKeys) { return; }
  let jj = lid / nChunks;
  let c0 = (lid % nChunks) * DC;
  let j = kb * BKK + jj;
  let jLive = j < nKeys;
  //#include stage_kv(ROWS = BKK, FIRST = kb * BKK, END = nKeys)
  var dk: array<f32, DC>;
  var dv: array<f32, DC>;
  let jFirst = kb * BKK;
  let iStart = select(0u, jFirst - s0, jFirst > s0);
  for (var h = kh * REP; h < (kh + 1u) * REP; h += 1u) {
    for (var i0 = iStart; i0 < n; i0 += BQT) {
      workgroupBarrier(); // the previous tile is no longer read (and, the first time, Ks/Vs are written)
      for (var e = lid; e < BQT * D; e += WG) {
        let i = i0 + e / D;
        var qv = 0.0;
        var gv = 0.0;
        if (i < n) { let o = ((r0 + i) * P.Hq + h) * D + e % D; qv = ld_q(o); gv = ld_dout(o); }
        Qs[e] = qv;
        Gs[e] = gv;
      }
      for (var e = lid; e < BQT; e += WG) {
        let li = P.Hq * r0 + h * n + min(i0 + e, n - 1u);
        Ls[e] = ld_lse(li);
        Ds[e] = ld_delta(li);
      }
      workgroupBarrier();
      for (var qq = 0u; qq < BQT; qq += 1u) {
        let i = i0 + qq;
        // Query i sees key j iff j <= s0 + i.
        if (!jLive || i >= n || j > s0 + i) { continue; }
        var d = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < D; c += 1u) {
          d += Qs[qq * D + c] * Ks[jj * D + c];
          dp += Gs[qq * D + c] * Vs[jj * D + c];
        }
        let p = exp(d * P.scale - Ls[qq]);
        let ds = p * (dp - Ds[qq]) * P.scale;
        for (var c = 0u; c < DC; c += 1u) {
          dv[c] += p * Gs[qq * D + c0 + c];
          dk[c] += ds * Qs[qq * D + c0 + c];
        }
      }
    }
  }
  if (!jLive) { return; }
  let ko = ((b * P.kvCap + j) * P.Hkv + kh) * D;
  for (var c = 0u; c < DC; c += 1u) {
    st_dk(ko + c0 + c, ld_dk(ko + c0 + c) + dk[c]);
    st_dv(ko + c0 + c, ld_dv(ko + c0 + c) + dv[c]);
  }
}
