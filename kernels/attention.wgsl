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
  let t = (wid.y * nwg.x + wid.x) * WG + lid;
  if (t >= P.B * P.Hq * P.Tq) { return; }
  let i = t % P.Tq;
  let h = (t / P.Tq) % P.Hq;
  let b = t / (P.Tq * P.Hq);
  let kh = h / (P.Hq / P.Hkv);
  let qo = ((b * P.Tq + i) * P.Hq + h) * D;
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
  let t = (wid.y * nwg.x + wid.x) * WG + lid;
  if (t >= P.B * P.Hq * P.Tq) { return; }
  let i = t % P.Tq;
  let h = (t / P.Tq) % P.Hq;
  let b = t / (P.Tq * P.Hq);
  let kh = h / (P.Hq / P.Hkv);
  let qo = ((b * P.Tq + i) * P.Hq + h) * D;
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
