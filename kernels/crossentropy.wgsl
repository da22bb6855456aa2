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
// Two passes over the row for the log-sum-exp (max, then sum of exp), each a workgroup reduction (wg_max,
// wg_sum: the reduction library the backend appends, workgroup tree or subgroups).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  //#include ce_row
  for (var c = lid; c < P.V; c += WG) { mx = max(mx, ld_x(o + c)); }
  mx = wg_max(mx, lid);
  var s = 0.0;
  for (var c = lid; c < P.V; c += WG) { s += exp(ld_x(o + c) - mx); }
  finish(r, live, y, o, mx + log(wg_sum(s, lid)), lid);
}

//#kernel crossEntropyOnline
// The tiled family's variant: one pass for the log-sum-exp (online softmax: a running max and a sum rescaled when
// the max grows), then one workgroup reduction of (max, sum) pairs (wg_lse). On a hardware GPU the op is bound by
// memory traffic, and this reads the 151,936 logits of a row once fewer (2 reads and 1 write per element instead
// of 3 + 1).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  //#include ce_row
  var s = 0.0;
  for (var c = lid; c < P.V; c += WG) {
    let x = ld_x(o + c);
    if (x > mx) { s = s * exp(mx - x) + 1.0; mx = x; } else { s += exp(x - mx); }
  }
  finish(r, live, y, o, wg_lse(mx, s, lid), lid);
}
