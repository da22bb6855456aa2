// Elementwise maps, strided copies and reductions (see matmul.wgsl for the generated header: P, ld_x, st_x, WG).
// `zero` needs no kernel: the backend uses GPUCommandEncoder.clearBuffer on the affected byte range.

//#kernel map
// The generic 1-D map behind add / axpy / scale / swiglu / swigluBackward / adamw. The backend's op table
// (MAP_OPS in src/backend/webgpu.ts) supplies $LOADS (`let r_x = ld_x(P.o_x + i);` for every input),
// $BODY (WGSL assigning `w_y` for every output, usually calling a function from the op's own .wgsl file) and
// $STORES (`st_y(P.o_y + i, w_y);`). Offsets P.o_x are relative to the chunk bound for x; the backend cuts n
// at every chunk boundary of every operand, so one dispatch never straddles two GPUBuffers.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= P.n) { return; }
  $LOADS
  $BODY
  $STORES
}

//#kernel copy2d
// dst[dstOff + r*dstStride + c] (+)= src[srcOff + r*srcStride + c] for r in [rLo, rHi), c < cols.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= (P.rHi - P.rLo) * P.cols) { return; }
  let r = P.rLo + i / P.cols;
  let c = i % P.cols;
  let s = ld_src(P.srcOff + r * P.srcStride + c);
  let d = P.dstOff + r * P.dstStride + c;
  if (P.accumulate != 0u) { st_dst(d, ld_dst(d) + s); } else { st_dst(d, s); }
}

//#kernel sumRows
// dBias[c] += sum_r dY[r, c]: one invocation per column, rows summed in order (deterministic, no atomics).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = (wid.y * nwg.x + wid.x) * WG + lid;
  if (c >= P.cols) { return; }
  var s = 0.0;
  for (var r = 0u; r < P.rows; r += 1u) { s += ld_dy(r * P.cols + c); }
  st_db(c, ld_db(c) + s);
}

//#kernel sumSquaresPartial
// Stage 1 of sumSquares: workgroup g of this dispatch reduces x[xOff + g*WG + t + s*nGroups*WG] (t < WG, s >= 0,
// below n) into part[pOff + g]. WG must be a power of two (wg_sum: the appended reduction library).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  let stride = P.nGroups * WG;
  for (var i = wid.x * WG + lid; i < P.n; i += stride) {
    let v = ld_x(P.xOff + i);
    s += v * v;
  }
  let total = wg_sum(s, lid);
  if (lid == 0u) { st_part(P.pOff + wid.x, total); }
}

//#kernel sumSquaresFinal
// Stage 2: one workgroup sums the nPart partials and adds the total into out[outIndex].
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < P.nPart; i += WG) { s += ld_part(i); }
  let total = wg_sum(s, lid);
  if (lid == 0u) { st_out(P.outIndex, ld_out(P.outIndex) + total); }
}

//#kernel subgroupProbe
// Run once per device by the backend before it uses kernels/reduce_subgroup.wgsl (one workgroup of WG): counts
// the invocations whose subgroup is not what that library assumes (full, and invocation lid in subgroup
// lid / size at rank lid % size), then runs its three reductions on known values.
// out = [bad invocations, sum of lid, max of lid, log-sum-exp of WG zeros (= log WG), subgroup size of lid 0].
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = subgroupAdd(1u);
  let rank = subgroupExclusiveAdd(1u);
  let first = subgroupBroadcastFirst(lid);
  let ok = n >= SG_MIN && WG % n == 0u && rank == lid % n && first == lid - rank;
  let bad = wg_sum(select(1.0, 0.0, ok), lid);
  let s = wg_sum(f32(lid), lid);
  let m = wg_max(f32(lid), lid);
  let l = wg_lse(0.0, 1.0, lid);
  if (lid == 0u) { st_out(0u, bad); st_out(1u, s); st_out(2u, m); st_out(3u, l); st_out(4u, f32(n)); }
}
