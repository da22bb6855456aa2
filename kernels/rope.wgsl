// Rotary position embeddings, HF rotate_half convention, in place on x [rows, heads, D] (header: see matmul.wgsl).
// The inverse frequencies f_i = theta^(-2i/D) come from the host (computed in f64 and rounded once, exactly as
// the CPU reference does), because f32 pow() on a GPU is only accurate to a few ulp and the angle pos * f_i
// reaches thousands of radians. For the same reason sin/cos are evaluated here with Cody-Waite range reduction
// and Cephes' single-precision polynomials instead of the builtins, whose accuracy outside [-pi, pi] is
// unspecified (and poor on several GPUs).

// (sin x, cos x), Cephes sinf/cosf: accurate to about 1e-7 for |x| < 8192 and still well below 1e-5 beyond.
fn sincos(x: f32) -> vec2<f32> {
  let ax = abs(x);
  var j = u32(ax * 1.27323954473516); // 4 / pi
  var y = f32(j);
  if ((j & 1u) == 1u) { j += 1u; y += 1.0; }
  j = j & 7u;
  // ax - y * pi/4 in three parts: each product is exact for y < 2^15, so no cancellation error.
  let z = ((ax - y * 0.78515625) - y * 2.4187564849853515625e-4) - y * 3.77489497744594108e-8;
  let zz = z * z;
  let sp = ((-1.9515295891e-4 * zz + 8.3321608736e-3) * zz - 1.6666654611e-1) * zz * z + z;
  let cp = ((2.443315711809948e-5 * zz - 1.388731625493765e-3) * zz + 4.166664568298827e-2) * zz * zz - 0.5 * zz + 1.0;
  var s: f32;
  var c: f32;
  switch j {
    case 0u: { s = sp; c = cp; }
    case 2u: { s = cp; c = -sp; }
    case 4u: { s = -sp; c = -cp; }
    default: { s = -cp; c = sp; }
  }
  return vec2<f32>(select(s, -s, x < 0.0), c);
}

//#kernel rope
// One invocation per (row, frequency i < D/2); the rotation is shared by all heads of the row.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let half = P.D / 2u;
  let t = (wid.y * nwg.x + wid.x) * WG + lid;
  if (t >= P.rows * half) { return; }
  let r = t / half;
  let i = t % half;
  let ang = f32(ld_pos(r)) * ld_freq(i);
  let sc = sincos(ang);
  let s = select(sc.x, -sc.x, P.inverse != 0u);
  let c = sc.y;
  for (var h = 0u; h < P.heads; h += 1u) {
    let o = (r * P.heads + h) * P.D;
    let a = ld_x(o + i);
    let b = ld_x(o + i + half);
    st_x(o + i, a * c - b * s);
    st_x(o + i + half, b * c + a * s);
  }
}
