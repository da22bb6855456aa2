// Causal grouped-query attention without materialising the [Tq, Tk] score matrix (header: see matmul.wgsl).
// q, out, dOut: [B, Tq, Hq, D]; K/V caches: [B, kvCap, Hkv, D]; lse, delta: [B, Hq, Tq]. Query i of a sequence
// sits at absolute position qStart + i and attends keys 0..qStart+i. Query head h reads kv head h / (Hq/Hkv).
// D is a specialisation constant so per-invocation row buffers live in registers / private memory.
// Params: B, Tq, Hq, Hkv, qStart, kvCap, scale (= 1/sqrt(D)).

//#kernel forward
// One invocation per (b, h, i), online (flash-style) softmax over the keys: a running max m, a running sum l
// of exp(s - m) and a running weighted sum of V rows, rescaled whenever the max grows.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  //#include query_row
  let nk = P.qStart + i + 1u;
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
  st_lse((b * P.Hq + h) * P.Tq + i, m + log(l));
}

//#kernel backwardQ
// One invocation per (b, h, i): delta_i = sum_c dO*O (saved for the key pass), then for every key j
// p = exp(s_ij - lse_i) (recomputed, as in the CPU reference), ds = p * (dO.v_j - delta_i) * scale,
// dq_i += ds * k_j.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  //#include query_row
  let li = (b * P.Hq + h) * P.Tq + i;
  let nk = P.qStart + i + 1u;
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
  let nKeys = P.qStart + P.Tq;
  let t = (wid.y * nwg.x + wid.x) * WG + lid;
  if (t >= P.B * P.Hkv * nKeys * nChunks) { return; }
  let ch = t % nChunks;
  let j = (t / nChunks) % nKeys;
  let kh = (t / (nChunks * nKeys)) % P.Hkv;
  let b = t / (nChunks * nKeys * P.Hkv);
  let rep = P.Hq / P.Hkv;
  let ko = ((b * P.kvCap + j) * P.Hkv + kh) * D;
  let c0 = ch * DC;
  var k: array<f32, D>;
  var v: array<f32, D>;
  var dk: array<f32, DC>;
  var dv: array<f32, DC>;
  for (var c = 0u; c < D; c += 1u) { k[c] = ld_k(ko + c); v[c] = ld_v(ko + c); }
  // Query i sees key j iff j <= qStart + i.
  let i0 = select(0u, j - P.qStart, j > P.qStart);
  for (var h = kh * rep; h < (kh + 1u) * rep; h += 1u) {
    for (var i = i0; i < P.Tq; i += 1u) {
      let qo = ((b * P.Tq + i) * P.Hq + h) * D;
      let li = (b * P.Hq + h) * P.Tq + i;
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
  st_lse((b * P.Hq + h) * P.Tq + i, m + log(l));
}

//#kernel flashBackwardQ
// Tiled dQ (same workgroup layout and K/V staging as flashForward): delta_i = dO_i . O_i, then for every visible
// key p = exp(s - lse_i), ds = p * (dO_i . v_j - delta_i) * scale, dq_i += ds * k_j.
var<workgroup> Ks: array<f32, BKV * D>;
var<workgroup> Vs: array<f32, BKV * D>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  //#include query_block
  let li = (b * P.Hq + h) * P.Tq + min(i, P.Tq - 1u);
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
  let nKeys = P.qStart + P.Tq;
  let nkb = (nKeys + BKK - 1u) / BKK;
  let grp = wid.y * nwg.x + wid.x;
  if (grp >= P.B * P.Hkv * nkb) { return; }
  let kb = grp % nkb;
  let kh = (grp / nkb) % P.Hkv;
  let b = grp / (nkb * P.Hkv);
  let jj = lid / nChunks;
  let c0 = (lid % nChunks) * DC;
  let j = kb * BKK + jj;
  let jLive = j < nKeys;
  //#include stage_kv(ROWS = BKK, FIRST = kb * BKK, END = nKeys)
  var dk: array<f32, DC>;
  var dv: array<f32, DC>;
  let jFirst = kb * BKK;
  let iStart = select(0u, jFirst - P.qStart, jFirst > P.qStart);
  for (var h = kh * REP; h < (kh + 1u) * REP; h += 1u) {
    for (var i0 = iStart; i0 < P.Tq; i0 += BQT) {
      workgroupBarrier(); // the previous tile is no longer read (and, the first time, Ks/Vs are written)
      for (var e = lid; e < BQT * D; e += WG) {
        let i = i0 + e / D;
        var qv = 0.0;
        var gv = 0.0;
        if (i < P.Tq) { let o = ((b * P.Tq + i) * P.Hq + h) * D + e % D; qv = ld_q(o); gv = ld_dout(o); }
        Qs[e] = qv;
        Gs[e] = gv;
      }
      for (var e = lid; e < BQT; e += WG) {
        let i = min(i0 + e, P.Tq - 1u);
        Ls[e] = ld_lse((b * P.Hq + h) * P.Tq + i);
        Ds[e] = ld_delta((b * P.Hq + h) * P.Tq + i);
      }
      workgroupBarrier();
      for (var qq = 0u; qq < BQT; qq += 1u) {
        let i = i0 + qq;
        // Query i sees key j iff j <= qStart + i.
        if (!jLive || i >= P.Tq || j > P.qStart + i) { continue; }
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
