// Token embedding gather and its scatter-add backward (header: see matmul.wgsl).
// The table may be split over several GPUBuffers (Qwen2-0.5B: 151936 x 896 f32 = 545 MB). The backend issues
// one dispatch per chunk, binding that chunk and its successor, and tells the kernel which table rows
// [lo, hi) start in it (`base` = first element of the bound chunk); rows outside are some other dispatch's.

//#kernel forward
// out[r, c] = table[ids[r], c]; rows whose id is negative are left untouched.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= P.rows * P.dim) { return; }
  let r = i / P.dim;
  let c = i % P.dim;
  let id = ld_ids(r);
  if (id < 0 || u32(id) < P.lo || u32(id) >= P.hi) { return; }
  st_out(i, ld_table(u32(id) * P.dim + c - P.base));
}

//#kernel backward
// dTable[ids[r], c] += dOut[r, c]. Repeated ids must add up without float atomics (WGSL has none), so one
// invocation owns column c and walks the rows in order: deterministic, and rows (tokens in a batch) are few.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = (wid.y * nwg.x + wid.x) * WG + lid;
  if (c >= P.dim) { return; }
  for (var r = 0u; r < P.rows; r += 1u) {
    let id = ld_ids(r);
    if (id < 0 || u32(id) < P.lo || u32(id) >= P.hi) { continue; }
    let t = u32(id) * P.dim + c - P.base;
    st_dtable(t, ld_dtable(t) + ld_dout(r * P.dim + c));
  }
}
