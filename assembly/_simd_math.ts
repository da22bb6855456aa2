// Shared SIMD helpers for the kernels in assembly/simd.ts: a vectorised exp, and dot/axpy over one row.
// Pointers are byte addresses into linear memory; lengths are in f32 elements.

// exp(x) for four lanes (Cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, 2^n via the exponent
// bits). Relative error ~2 ulp over the normal range, far inside the 1e-4 the backends are held to. Lanes below
// -87.3 (result would be denormal) return exactly 0, as a softmax over a very negative score wants.
// Written for V8's code generator: pmin/pmax are single instructions where min/max (NaN/-0 semantics) are ~7, and
// rounding by adding 1.5*2^23 replaces nearest + trunc_sat (a long sequence on x64): after t = x*log2e + magic,
// the integer n sits in t's low mantissa bits, so n = t - magic as a float and bits(t) - bits(magic) as an int.
// The constants live in memory, not in the code: V8 materialises each v128.const with ~4 instructions on every
// use, while a load is one (and binaryen cannot fold loads back into constants). Measured ~1.5x faster.
const EXP_C: usize = memory.data<f32>([
  -87.3, -87.3, -87.3, -87.3, 88.37, 88.37, 88.37, 88.37,
  12582912.0, 12582912.0, 12582912.0, 12582912.0, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341,
  0.693359375, 0.693359375, 0.693359375, 0.693359375, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4,
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3,
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2,
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1,
  1.0, 1.0, 1.0, 1.0,
], 16);

// @ts-ignore: decorator
@inline
export function expv(x: v128): v128 {
  const lo = v128.load(EXP_C, 0);
  const xc = f32x4.pmin(f32x4.pmax(x, lo), v128.load(EXP_C, 16));
  const magic = v128.load(EXP_C, 32);
  const t = f32x4.add(f32x4.mul(xc, v128.load(EXP_C, 48)), magic);
  const n = f32x4.sub(t, magic);
  let r = f32x4.sub(xc, f32x4.mul(n, v128.load(EXP_C, 64)));
  r = f32x4.sub(r, f32x4.mul(n, v128.load(EXP_C, 80)));
  let p = v128.load(EXP_C, 96);
  p = f32x4.add(f32x4.mul(p, r), v128.load(EXP_C, 112));
  p = f32x4.add(f32x4.mul(p, r), v128.load(EXP_C, 128));
  p = f32x4.add(f32x4.mul(p, r), v128.load(EXP_C, 144));
  p = f32x4.add(f32x4.mul(p, r), v128.load(EXP_C, 160));
  p = f32x4.add(f32x4.mul(p, r), v128.load(EXP_C, 176));
  const one = v128.load(EXP_C, 192);
  p = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), one);
  // 2^n: n in [-126, 127] after the clamp, so (n + 127) << 23 is a normal float's bit pattern; 127 << 23 is
  // the bit pattern of 1.0, so adding `one`'s bits after the shift does the bias.
  const pow2n = i32x4.add(i32x4.shl(i32x4.sub(t, magic), 23), one);
  return v128.and(f32x4.mul(p, pow2n), f32x4.ge(x, lo));
}

/** Horizontal sum of four lanes. */
// @ts-ignore: decorator
@inline
export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

// @ts-ignore: decorator
@inline
export function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** sum_i x[i] * y[i] over n elements (two accumulators hide the add latency). */
export function dot(x: usize, y: usize, n: i32): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(x + o), v128.load(y + o)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(x + o, 16), v128.load(y + o, 16)));
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(x + o), v128.load(y + o)));
  }
  let s = hsum(f32x4.add(a0, a1));
  for (; i < n; i++) s += load<f32>(x + (<usize>i << 2)) * load<f32>(y + (<usize>i << 2));
  return s;
}

/** y[i] += alpha * x[i] over n elements. */
export function axpyRow(alpha: f32, x: usize, y: usize, n: i32): void {
  const av = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(av, v128.load(x + o))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + alpha * load<f32>(x + o));
  }
}

/** Lanes 0..n-1 all-ones, the rest zero (n in 0..4). */
// @ts-ignore: decorator
@inline
export function laneMask(n: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(n));
}

// @ts-ignore: decorator
@inline
/** Loads n < 4 floats into lanes 0..n-1; the other lanes hold `fill`. Never reads past p + 4n. */
export function loadPartial(p: usize, n: i32, fill: f32): v128 {
  let v = f32x4.splat(fill);
  if (n > 0) v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

// @ts-ignore: decorator
@inline
/** Stores lanes 0..n-1 (n < 4). */
export function storePartial(p: usize, v: v128, n: i32): void {
  if (n > 0) store<f32>(p, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (n > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/**
 * a * b + c per lane: one fused multiply-add where the module is built with relaxed SIMD (the *_fma build, picked at
 * load when the engine has it), else a multiply then an add (bit-identical to writing c + a * b).
 */
// @ts-ignore: decorator
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/**
 * Start of thread `tid`'s share of [0, total) when it is cut into `nth` contiguous parts of whole `unit`s (the end is
 * partStart(tid + 1)). Threads only ever split OUTPUT elements: every element is computed by exactly the same
 * instructions whichever part it lands in (units are multiples of 4 so the vector/tail split of a row is global), so
 * results are bit-identical for any thread count.
 */
export function partStart(total: i32, unit: i32, tid: i32, nth: i32): i32 {
  const units = (total + unit - 1) / unit;
  return min(total, <i32>((<i64>units * <i64>tid) / <i64>nth) * unit);
}
