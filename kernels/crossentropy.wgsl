// Softmax cross-entropy over V classes (V up to 151,936), one workgroup per row (header: see matmul.wgsl).
// Params: V, rows, logitsOff, labelOff, lossOff. Optional binding `weights` (HAS_W): then the logits row is
// replaced by the gradient w * (softmax - onehot(label)) so no second [rows, V] matrix is ever kept.
// Ignored rows (label < 0) still run the reductions (keeps every barrier in uniform control flow) and write
// loss 0 / gradient 0.

var<workgroup> picked: f32;

// Given the row's log-sum-exp: the loss (lse - picked logit) and, with HAS_W, the gradient in place of the row.
fn finish(r: u32, live: bool, y: i32, o: u32, lse: f32, lid: u32) {
  if (lid == 0u && y >= 0) { picked = ld_x(o + u32(y)); }
  workgroupBarrier(); // the label's logit is read before the gradient overwrites the row
  if (!live) { return; }
  if (lid == 0u) { st_losses(P.lossOff + r, select(0.0, lse - picked, y >= 0)); }
  if (HAS_W) {
    let w = ld_weights(P.labelOff + r);
    for (var c = lid; c < P.V; c += WG) {
      var gr = 0.0;
      if (y >= 0) { gr = w * (exp(ld_x(o + c) - lse) - select(0.0, 1.0, c == u32(y))); }
      st_x(o + c, gr);
    }
  }
}

//#kernel crossEntropy
// Two passes over the row for the log-sum-exp (max, then sum of exp), each reduced across the workgroup.
var<workgroup> red: array<f32, WG>;

fn reduce_max(lid: u32) -> f32 {
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) { red[lid] = max(red[lid], red[lid + h]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier(); // everyone has read red[0] before it is reused
  return r;
}

fn reduce_sum(lid: u32) -> f32 {
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) { red[lid] += red[lid + h]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  let live = r < P.rows;
  let rr = min(r, P.rows - 1u);
  let y = ld_labels(P.labelOff + rr);
  let o = P.logitsOff + rr * P.V;
  var mx = -3.4028e38;
  for (var c = lid; c < P.V; c += WG) { mx = max(mx, ld_x(o + c)); }
  red[lid] = mx;
  mx = reduce_max(lid);
  var s = 0.0;
  for (var c = lid; c < P.V; c += WG) { s += exp(ld_x(o + c) - mx); }
  red[lid] = s;
  finish(r, live, y, o, mx + log(reduce_sum(lid)), lid);
}

//#kernel crossEntropyOnline
// The tiled family's variant: one pass for the log-sum-exp (online softmax: a running max and a sum rescaled when
// the max grows), then one workgroup reduction of (max, sum) pairs. On a hardware GPU the op is bound by memory
// traffic, and this reads the 151,936 logits of a row once fewer (2 reads and 1 write per element instead of 3 + 1).
var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  let live = r < P.rows;
  let rr = min(r, P.rows - 1u);
  let y = ld_labels(P.labelOff + rr);
  let o = P.logitsOff + rr * P.V;
  var mx = -3.4028e38;
  var s = 0.0;
  for (var c = lid; c < P.V; c += WG) {
    let x = ld_x(o + c);
    if (x > mx) { s = s * exp(mx - x) + 1.0; mx = x; } else { s += exp(x - mx); }
  }
  red_m[lid] = mx;
  red_s[lid] = s;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lid < h) {
      let m1 = red_m[lid];
      let m2 = red_m[lid + h];
      let m = max(m1, m2);
      red_s[lid] = red_s[lid] * exp(m1 - m) + red_s[lid + h] * exp(m2 - m);
      red_m[lid] = m;
    }
    workgroupBarrier();
  }
  let lse = red_m[0] + log(red_s[0]);
  workgroupBarrier(); // everyone has read the totals
  finish(r, live, y, o, lse, lid);
}
