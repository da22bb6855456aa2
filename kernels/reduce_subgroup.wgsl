// The subgroup variant of reduce_workgroup.wgsl (same functions, same contract), for adapters with the
// `subgroups` feature: each subgroup reduces its values in registers (subgroupAdd / subgroupMax), its first
// invocation writes one partial per subgroup, and the partials are reduced the same way, SG_LEVELS times, so a
// 256-wide workgroup needs 2 levels (4 barriers) at subgroup size 32 instead of 8 tree steps. SG_LEVELS (set by
// the backend) is the number of levels at the adapter's smallest subgroup size SG_MIN; larger subgroups finish
// early and carry the total through the remaining levels. The backend declares `enable subgroups;`.
// Assumes what every implementation does and the backend checks once per device (a probe kernel, see
// src/backend/webgpu.ts): subgroups are full and laid out along local_invocation_index, so invocation lid
// belongs to subgroup lid / subgroup size. The subgroup size is not a builtin argument here (library functions
// cannot see entry-point builtins): subgroupAdd(1u) counts the subgroup, subgroupExclusiveAdd(1u) ranks within it.
var<workgroup> wg_red: array<f32, WG>;
var<workgroup> wg_red2: array<f32, WG>;

fn wg_sum(v: f32, lid: u32) -> f32 {
  let n = subgroupAdd(1u);
  let lead = subgroupExclusiveAdd(1u) == 0u;
  var x = v;
  var count = WG; // values still to combine, held by invocations 0 .. count-1 after the first level
  for (var level = 0u; level < SG_LEVELS; level += 1u) {
    let s = subgroupAdd(x);
    workgroupBarrier(); // the previous level's (or call's) partials have been read
    if (lead && lid < count) { wg_red[lid / n] = s; }
    count = (count + n - 1u) / n;
    workgroupBarrier();
    x = select(0.0, wg_red[lid], lid < count);
  }
  return wg_red[0];
}

fn wg_max(v: f32, lid: u32) -> f32 {
  let n = subgroupAdd(1u);
  let lead = subgroupExclusiveAdd(1u) == 0u;
  var x = v;
  var count = WG;
  for (var level = 0u; level < SG_LEVELS; level += 1u) {
    let s = subgroupMax(x);
    workgroupBarrier();
    if (lead && lid < count) { wg_red[lid / n] = s; }
    count = (count + n - 1u) / n;
    workgroupBarrier();
    x = select(-3.4028e38, wg_red[lid], lid < count);
  }
  return wg_red[0];
}

fn wg_lse(m: f32, s: f32, lid: u32) -> f32 {
  let n = subgroupAdd(1u);
  let lead = subgroupExclusiveAdd(1u) == 0u;
  var xm = m;
  var xs = s;
  var count = WG;
  for (var level = 0u; level < SG_LEVELS; level += 1u) {
    let mm = subgroupMax(xm);
    let ss = subgroupAdd(xs * exp(xm - mm));
    workgroupBarrier();
    if (lead && lid < count) { wg_red[lid / n] = mm; wg_red2[lid / n] = ss; }
    count = (count + n - 1u) / n;
    workgroupBarrier();
    xm = select(-3.4028e38, wg_red[lid], lid < count);
    xs = select(0.0, wg_red2[lid], lid < count);
  }
  return wg_red[0] + log(wg_red2[0]);
}
