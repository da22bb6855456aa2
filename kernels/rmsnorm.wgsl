// HF Qwen2RMSNorm: y = w * (x * rstd), rstd = 1 / sqrt(mean(x^2) + eps) (header: see matmul.wgsl).
// One workgroup per row; the row's sum is a workgroup reduction (wg_sum: reduce_workgroup.wgsl or
// reduce_subgroup.wgsl, appended by the backend; WG a power of two).

//#kernel forward
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x; // uniform across the workgroup, so the barriers below are legal
  let live = r < P.rows;
  let o = r * P.dim;
  var ss = 0.0;
  if (live) {
    for (var c = lid; c < P.dim; c += WG) { let v = ld_x(o + c); ss += v * v; }
  }
  let total = wg_sum(ss, lid);
  if (!live) { return; }
  let rs = 1.0 / sqrt(total / f32(P.dim) + P.eps);
  if (lid == 0u) { st_rstd(r, rs); }
  for (var c = lid; c < P.dim; c += WG) { st_y(o + c, ld_w(c) * (ld_x(o + c) * rs)); }
}

//#kernel backwardX
// dx += w*g*rstd - x * rstd^3 * mean(w*g*x)
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  let live = r < P.rows;
  let o = r * P.dim;
  var dot = 0.0;
  if (live) {
    for (var c = lid; c < P.dim; c += WG) { dot += ld_w(c) * ld_dy(o + c) * ld_x(o + c); }
  }
  let total = wg_sum(dot, lid);
  if (!live) { return; }
  let rs = ld_rstd(r);
  let k = (total / f32(P.dim)) * rs * rs * rs;
  for (var c = lid; c < P.dim; c += WG) {
    st_dx(o + c, ld_dx(o + c) + ld_w(c) * ld_dy(o + c) * rs - ld_x(o + c) * k);
  }
}

//#kernel backwardW
// dw[c] += sum_r dy[r, c] * x[r, c] * rstd[r]: one invocation per column, rows in order (no atomics).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = (wid.y * nwg.x + wid.x) * WG + lid;
  if (c >= P.dim) { return; }
  var s = ld_dw(c);
  for (var r = 0u; r < P.rows; r += 1u) { s += ld_dy(r * P.dim + c) * ld_x(r * P.dim + c) * ld_rstd(r); }
  st_dw(c, s);
}
