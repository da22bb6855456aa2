// C[M, N] (+)= op(A) op(B) (+ bias), f32 accumulation.
//
// Every kernel file is split into `//#kernel <name>` sections; src/backend/webgpu.ts prepends a generated header
// to a section: the `Params` uniform struct `P`, storage bindings with accessors `ld_x(i)` (f32/i32 element),
// `ld4_x(i)` (4 consecutive elements starting at element i; a real vec4 load when x is bound as array<vec4>, which
// the backend only does when every such i is a multiple of 4), `st_x(i, v)`, and specialisation constants.
// Indices are relative to the first buffer bound for x; a tensor split over several GPUBuffers is bound as a pair
// of neighbouring chunks and the accessors pick the right one, so kernels never see the split.
//
// Specialisation constants: TRANS_A (A stored [K, M]), TRANS_B (B stored [N, K]), HAS_BIAS, WG_X, WG_Y, and the
// two fusions (MatmulOptions.swigluGate / .residual): SWIGLU_A (the left operand is silu(g) * a, computed as it is
// loaded: the SwiGLU activation never goes through memory) and HAS_RES (C = r + product: the residual add is
// part of the store, so the product never goes through memory either). Both bindings share their tensor's layout
// (g: A's, r: C's), so the same indices serve.
// Params: M, N, K; aOff, bOff, cOff (element offsets, relative to the bound chunk, u32 wrap-around arithmetic);
// the ranges [mLo, mHi), [nLo, nHi), [kLo, kHi) this dispatch owns (a split operand restricts one of them);
// mBase, nBase (first block origin, multiples of 4 at or below mLo, nLo); accumulate; useBias, useRes (the
// dispatch holding k = 0 adds the bias and the residual; the others accumulate onto it).
//
// The same template serves all four transpose variants: only the two tile loaders below depend on them.

// Loads of the left operand (element i of A as stored, or 4 from i): with SWIGLU_A, silu(g[i]) * a[i] exactly as
// the swiglu op computes it (swiglu.wgsl).
fn lda(i: u32) -> f32 {
  if (SWIGLU_A) { return swiglu(ld_g(i), ld_a(i)); }
  return ld_a(i);
}
fn lda4(i: u32) -> vec4<f32> {
  if (SWIGLU_A) {
    let g = ld4_g(i);
    let u = ld4_a(i);
    return vec4<f32>(swiglu(g.x, u.x), swiglu(g.y, u.y), swiglu(g.z, u.z), swiglu(g.w, u.w));
  }
  return ld4_a(i);
}

//#kernel blocked
// Register blocking: each invocation computes a 4x4 block of C, keeping it in a mat4x4 and consuming K four at a
// time as two 4x4 tiles (8 four-wide loads per 64 multiply-adds). On software rasterisers (llvmpipe) this is the
// lever that matters: invocations are vectorised across SIMD lanes and there is no benefit from shared memory.
// Rows or columns past the owned range are computed from whatever the (robust) loads return and never stored.

// Tile of A: column kk holds A(m0..m0+3, k+kk).
fn tile_a(m0: u32, k: u32) -> mat4x4<f32> {
  if (TRANS_A) {
    let o = P.aOff + k * P.M + m0;
    return mat4x4<f32>(lda4(o), lda4(o + P.M), lda4(o + 2u * P.M), lda4(o + 3u * P.M));
  }
  let o = P.aOff + m0 * P.K + k;
  return transpose(mat4x4<f32>(lda4(o), lda4(o + P.K), lda4(o + 2u * P.K), lda4(o + 3u * P.K)));
}

// Tile of B: column j holds B(k..k+3, n0+j).
fn tile_b(k: u32, n0: u32) -> mat4x4<f32> {
  if (TRANS_B) {
    let o = P.bOff + n0 * P.K + k;
    return mat4x4<f32>(ld4_b(o), ld4_b(o + P.K), ld4_b(o + 2u * P.K), ld4_b(o + 3u * P.K));
  }
  let o = P.bOff + k * P.N + n0;
  return transpose(mat4x4<f32>(ld4_b(o), ld4_b(o + P.N), ld4_b(o + 2u * P.N), ld4_b(o + 3u * P.N)));
}

// A(m0..m0+3, k) and B(k, n0..n0+3) for the K tail (K not a multiple of 4).
fn col_a(m0: u32, k: u32) -> vec4<f32> {
  if (TRANS_A) { return lda4(P.aOff + k * P.M + m0); }
  let o = P.aOff + m0 * P.K + k;
  return vec4<f32>(lda(o), lda(o + P.K), lda(o + 2u * P.K), lda(o + 3u * P.K));
}
fn row_b(k: u32, n0: u32) -> vec4<f32> {
  if (TRANS_B) {
    let o = P.bOff + n0 * P.K + k;
    return vec4<f32>(ld_b(o), ld_b(o + P.K), ld_b(o + 2u * P.K), ld_b(o + 3u * P.K));
  }
  return ld4_b(P.bOff + k * P.N + n0);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m0 = P.mBase + 4u * gid.y;
  let n0 = P.nBase + 4u * gid.x;
  if (m0 >= P.mHi || n0 >= P.nHi) { return; }
  var acc = mat4x4<f32>(); // column j = C(m0..m0+3, n0+j)
  var k = P.kLo;
  let k4 = P.kLo + ((P.kHi - P.kLo) & ~3u);
  for (; k < k4; k += 4u) {
    acc += tile_a(m0, k) * tile_b(k, n0);
  }
  for (; k < P.kHi; k += 1u) {
    let a = col_a(m0, k);
    let b = row_b(k, n0);
    acc[0] += a * b.x;
    acc[1] += a * b.y;
    acc[2] += a * b.z;
    acc[3] += a * b.w;
  }
  for (var j = 0u; j < 4u; j += 1u) {
    let n = n0 + j;
    if (n < P.nLo || n >= P.nHi) { continue; }
    var bias = 0.0;
    if (HAS_BIAS) { if (P.useBias != 0u) { bias = ld_bias(n); } }
    for (var i = 0u; i < 4u; i += 1u) {
      let m = m0 + i;
      if (m < P.mLo || m >= P.mHi) { continue; }
      let idx = P.cOff + m * P.N + n;
      var v = acc[j][i] + bias;
      if (P.accumulate != 0u) { v += ld_c(idx); }
      if (HAS_RES) { if (P.useRes != 0u) { v += ld_r(idx); } }
      st_c(idx, v);
    }
  }
}

//#kernel naive
// One invocation per output element, scalar loads: the baseline the blocked kernel is measured against.
fn a_at(m: u32, k: u32) -> f32 {
  if (TRANS_A) { return lda(P.aOff + k * P.M + m); }
  return lda(P.aOff + m * P.K + k);
}
fn b_at(k: u32, n: u32) -> f32 {
  if (TRANS_B) { return ld_b(P.bOff + n * P.K + k); }
  return ld_b(P.bOff + k * P.N + n);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = P.mBase + gid.y;
  let n = P.nBase + gid.x;
  if (m < P.mLo || m >= P.mHi || n < P.nLo || n >= P.nHi) { return; }
  var s = 0.0;
  for (var k = P.kLo; k < P.kHi; k += 1u) { s += a_at(m, k) * b_at(k, n); }
  if (HAS_BIAS) { if (P.useBias != 0u) { s += ld_bias(n); } }
  let idx = P.cOff + m * P.N + n;
  if (P.accumulate != 0u) { s += ld_c(idx); }
  if (HAS_RES) { if (P.useRes != 0u) { s += ld_r(idx); } }
  st_c(idx, s);
}

//#kernel tiled
// Workgroup-memory tiling for hardware GPUs: a workgroup of WG_X x WG_Y invocations owns a BM x BN tile of C,
// each invocation RM x RN outputs of it (rows lid.y + i*WG_Y, columns lid.x + j*WG_X: neighbouring invocations
// read neighbouring tile words, so the inner loop is free of bank conflicts). K is consumed BK at a time: the
// workgroup stages A(BM x BK) and B(BK x BN) in workgroup memory with loads that are contiguous along each
// operand's stored row (coalesced for all four transpose forms), then every invocation runs BK rank-1 updates
// from the staged tiles: each loaded element feeds BM (or BN) multiply-adds instead of one.
// Staged loads outside the owned ranges are zeros, so the K tail and the M/N edges need no special case.
// TILE is f32, or f16 with `shader-f16` (F16: inputs rounded to half when staged, products accumulated in f32).
// Constants: BM, BN, BK, RM, RN with WG_X = BN / RN, WG_Y = BM / RM.
// Tile rows are padded by one word: loads contiguous along K (A as stored [M, K], B as [N, K]) then write with an
// odd stride, which keeps those stores free of bank conflicts too.
const SA: u32 = BM + 1u;
const SB: u32 = BN + 1u;
var<workgroup> As: array<TILE, BK * SA>; // As[k * SA + m]
var<workgroup> Bs: array<TILE, BK * SB>; // Bs[k * SB + n]

fn a_at(m: u32, k: u32) -> f32 {
  if (m < P.mLo || m >= P.mHi || k >= P.kHi) { return 0.0; }
  if (TRANS_A) { return lda(P.aOff + k * P.M + m); }
  return lda(P.aOff + m * P.K + k);
}
fn b_at(k: u32, n: u32) -> f32 {
  if (n < P.nLo || n >= P.nHi || k >= P.kHi) { return 0.0; }
  if (TRANS_B) { return ld_b(P.bOff + n * P.K + k); }
  return ld_b(P.bOff + k * P.N + n);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let m0 = P.mBase + wid.y * BM;
  let n0 = P.nBase + wid.x * BN;
  var acc: array<f32, RM * RN>;
  var a: array<f32, RM>;
  var b: array<f32, RN>;
  // The K loop bounds are uniform (parameters), so every barrier is reached by the whole workgroup.
  for (var k0 = P.kLo; k0 < P.kHi; k0 += BK) {
    for (var e = li; e < BM * BK; e += WG_X * WG_Y) {
      var mm: u32;
      var kk: u32;
      if (TRANS_A) { mm = e % BM; kk = e / BM; } else { kk = e % BK; mm = e / BK; }
      As[kk * SA + mm] = TILE(a_at(m0 + mm, k0 + kk));
    }
    for (var e = li; e < BK * BN; e += WG_X * WG_Y) {
      var nn: u32;
      var kk: u32;
      if (TRANS_B) { kk = e % BK; nn = e / BK; } else { nn = e % BN; kk = e / BN; }
      Bs[kk * SB + nn] = TILE(b_at(k0 + kk, n0 + nn));
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk += 1u) {
      for (var i = 0u; i < RM; i += 1u) { a[i] = f32(As[kk * SA + lid.y + i * WG_Y]); }
      for (var j = 0u; j < RN; j += 1u) { b[j] = f32(Bs[kk * SB + lid.x + j * WG_X]); }
      for (var i = 0u; i < RM; i += 1u) {
        for (var j = 0u; j < RN; j += 1u) { acc[i * RN + j] = fma(a[i], b[j], acc[i * RN + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var j = 0u; j < RN; j += 1u) {
    let n = n0 + lid.x + j * WG_X;
    if (n < P.nLo || n >= P.nHi) { continue; }
    var bias = 0.0;
    if (HAS_BIAS) { if (P.useBias != 0u) { bias = ld_bias(n); } }
    for (var i = 0u; i < RM; i += 1u) {
      let m = m0 + lid.y + i * WG_Y;
      if (m < P.mLo || m >= P.mHi) { continue; }
      let idx = P.cOff + m * P.N + n;
      var v = acc[i * RN + j] + bias;
      if (P.accumulate != 0u) { v += ld_c(idx); }
      if (HAS_RES) { if (P.useRes != 0u) { v += ld_r(idx); } }
      st_c(idx, v);
    }
  }
}
