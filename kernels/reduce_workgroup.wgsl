// Workgroup-wide reductions, appended to the kernels that need them (rmsnorm, cross-entropy, sumSquares): a tree
// over workgroup memory, log2(WG) barriers (WG a power of two). Every invocation of the workgroup must call them
// in uniform control flow, and every invocation gets the result. The subgroup variant, reduce_subgroup.wgsl,
// defines the same functions; the backend appends one or the other (see `reductions` in src/backend/webgpu.ts).
var<workgroup> wg_red: array<f32, WG>;
var<workgroup> wg_red2: array<f32, WG>;

fn wg_sum(v: f32, lid: u32) -> f32 {
  workgroupBarrier(); // every invocation has read the previous result before wg_red is reused
  wg_red[lid] = v;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) { wg_red[lid] += wg_red[lid + h]; }
    workgroupBarrier();
  }
  return wg_red[0];
}

fn wg_max(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  wg_red[lid] = v;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) { wg_red[lid] = max(wg_red[lid], wg_red[lid + h]); }
    workgroupBarrier();
  }
  return wg_red[0];
}

// Combines per-invocation online-softmax states (running max m, sum s of exp(x - m)) into the workgroup's
// log-sum-exp m + log(s).
fn wg_lse(m: f32, s: f32, lid: u32) -> f32 {
  workgroupBarrier();
  wg_red[lid] = m;
  wg_red2[lid] = s;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      let m1 = wg_red[lid];
      let m2 = wg_red[lid + h];
      let mm = max(m1, m2);
      wg_red2[lid] = wg_red2[lid] * exp(m1 - mm) + wg_red2[lid + h] * exp(m2 - mm);
      wg_red[lid] = mm;
    }
    workgroupBarrier();
  }
  return wg_red[0] + log(wg_red2[0]);
}
