// The O(n) ops: elementwise arithmetic, copies, embedding, RMSNorm, RoPE, SwiGLU, cross-entropy, AdamW.
// Each loop runs four lanes at a time; tails (n % 4) go through loadPartial/storePartial so they use the same
// arithmetic as the body (matters for the exp-based ops, whose scalar and vector paths would round differently).
import { axpyRow, dot, expv, hmax, hsum, laneMask, loadPartial, partStart, storePartial } from './_simd_math';

// Threads: every export ends in (tid, nth) and does thread tid's share of the OUTPUT (a range of elements in
// multiples of 16, of rows, or of columns where rows sum into one output row), see partStart. nth = 1 is the whole op.

/** Thread tid's first element of an n-element elementwise op. */
// @ts-ignore: decorator
@inline
function elemStart(n: i32, tid: i32, nth: i32): i32 {
  return partStart(n, 16, tid, nth);
}

// @ts-ignore: decorator
@inline
function addRow(x: usize, y: usize, n: i32): void {
  axpyRow(1, x, y, n);
}

/** out[i] = a[i] + b[i] (out may alias a or b: each element is read before it is written). */
export function add(a: usize, b: usize, out: usize, n: i32, tid: i32, nth: i32): void {
  let i = elemStart(n, tid, nth);
  n = elemStart(n, tid + 1, nth);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

export function axpy(alpha: f32, x: usize, y: usize, n: i32, tid: i32, nth: i32): void {
  const i0 = elemStart(n, tid, nth), o = <usize>i0 << 2;
  axpyRow(alpha, x + o, y + o, elemStart(n, tid + 1, nth) - i0);
}

export function scale(x: usize, s: f32, n: i32, tid: i32, nth: i32): void {
  const sv = f32x4.splat(s);
  let i = elemStart(n, tid, nth);
  n = elemStart(n, tid + 1, nth);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, f32x4.mul(v128.load(x + o), sv));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(x + o, load<f32>(x + o) * s);
  }
}

/** x[0, n) = 0 (Backend.zero: a model's gradients are zeroed before every step, ~100 MB at the bench's mid config). */
export function zeroFill(x: usize, n: i32, tid: i32, nth: i32): void {
  const i0 = elemStart(n, tid, nth);
  memory.fill(x + (<usize>i0 << 2), 0, <usize>(elemStart(n, tid + 1, nth) - i0) << 2);
}

/** Strides in elements; src/dst already include their offsets. */
export function copy2d(src: usize, dst: usize, rows: i32, cols: i32, srcStride: i32, dstStride: i32, accumulate: bool, tid: i32, nth: i32): void {
  for (let r = partStart(rows, 1, tid, nth), r1 = partStart(rows, 1, tid + 1, nth); r < r1; r++) {
    const s = src + (<usize>(r * srcStride) << 2), d = dst + (<usize>(r * dstStride) << 2);
    if (accumulate) addRow(s, d, cols);
    else memory.copy(d, s, <usize>cols << 2);
  }
}

export function embedding(ids: usize, table: usize, out: usize, rows: i32, dim: i32, tid: i32, nth: i32): void {
  const bytes = <usize>dim << 2;
  for (let r = partStart(rows, 1, tid, nth), r1 = partStart(rows, 1, tid + 1, nth); r < r1; r++) {
    const t = load<i32>(ids + (<usize>r << 2));
    if (t < 0) continue;
    memory.copy(out + <usize>r * bytes, table + <usize>t * bytes, bytes);
  }
}

/** Rows with the same id sum into one table row, so threads split the columns (every thread walks all rows). */
export function embeddingBackward(ids: usize, dOut: usize, dTable: usize, rows: i32, dim: i32, tid: i32, nth: i32): void {
  const bytes = <usize>dim << 2;
  const c0 = elemStart(dim, tid, nth), width = elemStart(dim, tid + 1, nth) - c0, o = <usize>c0 << 2;
  if (width <= 0) return;
  for (let r = 0; r < rows; r++) {
    const t = load<i32>(ids + (<usize>r << 2));
    if (t < 0) continue;
    addRow(dOut + <usize>r * bytes + o, dTable + <usize>t * bytes + o, width);
  }
}

/** A column sum: threads split the columns. */
export function sumRows(dY: usize, dBias: usize, rows: i32, cols: i32, tid: i32, nth: i32): void {
  const c0 = elemStart(cols, tid, nth), width = elemStart(cols, tid + 1, nth) - c0, o = <usize>c0 << 2;
  if (width <= 0) return;
  for (let r = 0; r < rows; r++) addRow(dY + (<usize>(r * cols) << 2) + o, dBias + o, width);
}

export function rmsNorm(x: usize, w: usize, y: usize, rstd: usize, rows: i32, dim: i32, eps: f32, tid: i32, nth: i32): void {
  for (let r = partStart(rows, 1, tid, nth), r1 = partStart(rows, 1, tid + 1, nth); r < r1; r++) {
    const xo = x + (<usize>(r * dim) << 2), yo = y + (<usize>(r * dim) << 2);
    const ss = dot(xo, xo, dim);
    const rs = <f32>(1.0 / Math.sqrt(<f64>ss / <f64>dim + <f64>eps));
    store<f32>(rstd + (<usize>r << 2), rs);
    const rv = f32x4.splat(rs);
    let c = 0;
    for (; c + 4 <= dim; c += 4) {
      const o = <usize>c << 2;
      v128.store(yo + o, f32x4.mul(v128.load(w + o), f32x4.mul(v128.load(xo + o), rv)));
    }
    for (; c < dim; c++) {
      const o = <usize>c << 2;
      store<f32>(yo + o, load<f32>(w + o) * (load<f32>(xo + o) * rs));
    }
  }
}

/**
 * y = w x rs  =>  dx += rs (w g) - x rs^3 mean(w g x);  dw += g x rs. dx rows are split between threads; dw sums
 * over rows, so its columns are split instead (each thread adds every row's share into its columns, in row order).
 */
export function rmsNormBackward(dy: usize, x: usize, w: usize, rstd: usize, dx: usize, dw: usize, rows: i32, dim: i32, tid: i32, nth: i32): void {
  rmsNormBackwardDw(dy, x, rstd, dw, rows, dim, elemStart(dim, tid, nth), elemStart(dim, tid + 1, nth));
  for (let r = partStart(rows, 1, tid, nth), r1 = partStart(rows, 1, tid + 1, nth); r < r1; r++) {
    const ro = <usize>(r * dim) << 2;
    const go = dy + ro, xo = x + ro, dxo = dx + ro;
    const rs = load<f32>(rstd + (<usize>r << 2));
    let acc = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= dim; c += 4) {
      const o = <usize>c << 2;
      acc = f32x4.add(acc, f32x4.mul(f32x4.mul(v128.load(w + o), v128.load(go + o)), v128.load(xo + o)));
    }
    let d = hsum(acc);
    for (; c < dim; c++) {
      const o = <usize>c << 2;
      d += load<f32>(w + o) * load<f32>(go + o) * load<f32>(xo + o);
    }
    const k = (d / <f32>dim) * rs * rs * rs;
    const rv = f32x4.splat(rs), kv = f32x4.splat(k);
    c = 0;
    for (; c + 4 <= dim; c += 4) {
      const o = <usize>c << 2;
      const g = v128.load(go + o), xv = v128.load(xo + o);
      v128.store(dxo + o, f32x4.add(v128.load(dxo + o), f32x4.sub(f32x4.mul(f32x4.mul(v128.load(w + o), g), rv), f32x4.mul(xv, kv))));
    }
    for (; c < dim; c++) {
      const o = <usize>c << 2;
      const g = load<f32>(go + o), xv = load<f32>(xo + o);
      store<f32>(dxo + o, load<f32>(dxo + o) + (load<f32>(w + o) * g * rs - xv * k));
    }
  }
}

/** dw[c] += sum_r g x rs for columns c0..c1 (c0 a multiple of 4), rows in order. */
function rmsNormBackwardDw(dy: usize, x: usize, rstd: usize, dw: usize, rows: i32, dim: i32, c0: i32, c1: i32): void {
  for (let r = 0; r < rows; r++) {
    const ro = <usize>(r * dim) << 2;
    const go = dy + ro, xo = x + ro;
    const rs = load<f32>(rstd + (<usize>r << 2));
    const rv = f32x4.splat(rs);
    let c = c0;
    for (; c + 4 <= c1; c += 4) {
      const o = <usize>c << 2;
      v128.store(dw + o, f32x4.add(v128.load(dw + o), f32x4.mul(f32x4.mul(v128.load(go + o), v128.load(xo + o)), rv)));
    }
    for (; c < c1; c++) {
      const o = <usize>c << 2;
      store<f32>(dw + o, load<f32>(dw + o) + load<f32>(go + o) * load<f32>(xo + o) * rs);
    }
  }
}

/**
 * Rotation in place on x [rows, heads, D] with a precomputed table: cos at tab[r*half + i], sin at
 * tab[rows*half + r*half + i] (the JS side computes it exactly as the reference does, in f64 trig on f32 angles).
 */
export function rope(x: usize, tab: usize, rows: i32, heads: i32, D: i32, tid: i32, nth: i32): void {
  const half = D >> 1;
  const sinBase = tab + (<usize>(rows * half) << 2);
  for (let r = partStart(rows, 1, tid, nth), r1 = partStart(rows, 1, tid + 1, nth); r < r1; r++) {
    const co = tab + (<usize>(r * half) << 2), so = sinBase + (<usize>(r * half) << 2);
    for (let h = 0; h < heads; h++) {
      const xo = x + (<usize>((r * heads + h) * D) << 2), xh = xo + (<usize>half << 2);
      let i = 0;
      for (; i + 4 <= half; i += 4) {
        const o = <usize>i << 2;
        const a = v128.load(xo + o), b = v128.load(xh + o), c = v128.load(co + o), s = v128.load(so + o);
        v128.store(xo + o, f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s)));
        v128.store(xh + o, f32x4.add(f32x4.mul(b, c), f32x4.mul(a, s)));
      }
      for (; i < half; i++) {
        const o = <usize>i << 2;
        const a = load<f32>(xo + o), b = load<f32>(xh + o), c = load<f32>(co + o), s = load<f32>(so + o);
        store<f32>(xo + o, a * c - b * s);
        store<f32>(xh + o, b * c + a * s);
      }
    }
  }
}

// @ts-ignore: decorator
@inline
function sigmoidv(g: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), expv(f32x4.neg(g))));
}

export function swiglu(gate: usize, up: usize, out: usize, n: i32, tid: i32, nth: i32): void {
  let i = elemStart(n, tid, nth);
  n = elemStart(n, tid + 1, nth);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(gate + o);
    v128.store(out + o, f32x4.mul(f32x4.mul(g, sigmoidv(g)), v128.load(up + o)));
  }
  if (i < n) {
    const o = <usize>i << 2, t = n - i;
    const g = loadPartial(gate + o, t, 0);
    storePartial(out + o, f32x4.mul(f32x4.mul(g, sigmoidv(g)), loadPartial(up + o, t, 0)), t);
  }
}

export function swigluBackward(dOut: usize, gate: usize, up: usize, dGate: usize, dUp: usize, n: i32, tid: i32, nth: i32): void {
  const one = f32x4.splat(1);
  let i = elemStart(n, tid, nth);
  n = elemStart(n, tid + 1, nth);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const d = v128.load(dOut + o), g = v128.load(gate + o), u = v128.load(up + o);
    const sig = sigmoidv(g);
    v128.store(dUp + o, f32x4.add(v128.load(dUp + o), f32x4.mul(f32x4.mul(d, g), sig)));
    v128.store(dGate + o, f32x4.add(v128.load(dGate + o), f32x4.mul(f32x4.mul(f32x4.mul(d, u), sig), f32x4.add(one, f32x4.mul(g, f32x4.sub(one, sig))))));
  }
  if (i < n) {
    const o = <usize>i << 2, t = n - i;
    const d = loadPartial(dOut + o, t, 0), g = loadPartial(gate + o, t, 0), u = loadPartial(up + o, t, 0);
    const sig = sigmoidv(g);
    storePartial(dUp + o, f32x4.add(loadPartial(dUp + o, t, 0), f32x4.mul(f32x4.mul(d, g), sig)), t);
    storePartial(dGate + o, f32x4.add(loadPartial(dGate + o, t, 0), f32x4.mul(f32x4.mul(f32x4.mul(d, u), sig), f32x4.add(one, f32x4.mul(g, f32x4.sub(one, sig))))), t);
  }
}

/**
 * Softmax cross-entropy per row (see Backend.crossEntropy). logits/labels/losses/weights already include their
 * offsets; weights 0 = loss only. Labels < 0 are ignored (loss 0, gradient row 0).
 */
export function crossEntropy(logits: usize, labels: usize, losses: usize, weights: usize, rows: i32, V: i32, tid: i32, nth: i32): void {
  const rowBytes = <usize>V << 2;
  const tail = V & 3, body = V - tail;
  for (let r = partStart(rows, 1, tid, nth), r1 = partStart(rows, 1, tid + 1, nth); r < r1; r++) {
    const x = logits + <usize>r * rowBytes;
    const y = load<i32>(labels + (<usize>r << 2));
    if (y < 0) {
      store<f32>(losses + (<usize>r << 2), 0);
      if (weights) memory.fill(x, 0, rowBytes);
      continue;
    }
    let mv = f32x4.splat(-Infinity);
    // pmax (one instruction) instead of max (NaN/-0 handling, ~7 on x64): logits are finite.
    for (let c = 0; c < body; c += 4) mv = f32x4.pmax(mv, v128.load(x + (<usize>c << 2)));
    if (tail) mv = f32x4.pmax(mv, loadPartial(x + (<usize>body << 2), tail, -Infinity));
    const mx = hmax(mv);
    const mxv = f32x4.splat(mx);
    let sv = f32x4.splat(0);
    for (let c = 0; c < body; c += 4) sv = f32x4.add(sv, expv(f32x4.sub(v128.load(x + (<usize>c << 2)), mxv)));
    if (tail) sv = f32x4.add(sv, v128.and(expv(f32x4.sub(loadPartial(x + (<usize>body << 2), tail, 0), mxv)), laneMask(tail)));
    const lse = mx + Mathf.log(hsum(sv));
    const xy = load<f32>(x + (<usize>y << 2));
    store<f32>(losses + (<usize>r << 2), lse - xy);
    if (weights) {
      const w = load<f32>(weights + (<usize>r << 2));
      const wv = f32x4.splat(w), lv = f32x4.splat(lse);
      for (let c = 0; c < body; c += 4) {
        const p = x + (<usize>c << 2);
        v128.store(p, f32x4.mul(wv, expv(f32x4.sub(v128.load(p), lv))));
      }
      if (tail) {
        const p = x + (<usize>body << 2);
        storePartial(p, f32x4.mul(wv, expv(f32x4.sub(loadPartial(p, tail, 0), lv))), tail);
      }
      // The label column: w * (softmax - 1), from the saved logit (the row was overwritten above).
      const py = f32x4.extract_lane(expv(f32x4.splat(xy - lse)), 0);
      store<f32>(x + (<usize>y << 2), w * (py - 1));
    }
  }
}

/** AdamW; omb1 = 1 - beta1, omb2 = 1 - beta2, bc1/bc2 the bias corrections (computed in f64 by the caller). */
export function adamw(p: usize, g: usize, m: usize, v: usize, n: i32, lr: f32, beta1: f32, beta2: f32, omb1: f32, omb2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32, gradScale: f32, tid: i32, nth: i32): void {
  const b1 = f32x4.splat(beta1), b2 = f32x4.splat(beta2), o1 = f32x4.splat(omb1), o2 = f32x4.splat(omb2);
  const lrv = f32x4.splat(lr), epsv = f32x4.splat(eps), wdv = f32x4.splat(wd), c1 = f32x4.splat(bc1), c2 = f32x4.splat(bc2), gs = f32x4.splat(gradScale);
  let i = elemStart(n, tid, nth);
  n = elemStart(n, tid + 1, nth);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gv = f32x4.mul(v128.load(g + o), gs);
    const mv = f32x4.add(f32x4.mul(b1, v128.load(m + o)), f32x4.mul(o1, gv));
    const vv = f32x4.add(f32x4.mul(b2, v128.load(v + o)), f32x4.mul(f32x4.mul(o2, gv), gv));
    v128.store(m + o, mv);
    v128.store(v + o, vv);
    const pv = v128.load(p + o);
    const upd = f32x4.add(f32x4.div(f32x4.div(mv, c1), f32x4.add(f32x4.sqrt(f32x4.div(vv, c2)), epsv)), f32x4.mul(wdv, pv));
    v128.store(p + o, f32x4.sub(pv, f32x4.mul(lrv, upd)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gv = load<f32>(g + o) * gradScale;
    const mv = beta1 * load<f32>(m + o) + omb1 * gv;
    const vv = beta2 * load<f32>(v + o) + omb2 * gv * gv;
    store<f32>(m + o, mv);
    store<f32>(v + o, vv);
    const pv = load<f32>(p + o);
    store<f32>(p + o, pv - lr * (mv / bc1 / (Mathf.sqrt(vv / bc2) + eps) + wd * pv));
  }
}

/** sum(x^2) over n elements, accumulated in f64 (it feeds the global gradient norm over millions of values). */
export function sumSquares(x: usize, n: i32): f64 {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    const sq = f32x4.mul(v, v);
    a0 = f64x2.add(a0, f64x2.promote_low_f32x4(sq));
    a1 = f64x2.add(a1, f64x2.promote_low_f32x4(v128.shuffle<f32>(sq, sq, 2, 3, 0, 1)));
  }
  const s = f64x2.add(a0, a1);
  let t = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    t += <f64>(v * v);
  }
  return t;
}
