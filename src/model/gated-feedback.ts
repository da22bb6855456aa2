// Gated feedback (after HRPO, Yue et al. 2025, "Hybrid Latent Reasoning via Reinforcement Learning"): a latent's
// input is a learned, per-dimension mix of the model's own next-token *embedding mixture* and its hidden state,
//   ê = softmax(z / τ)ᵀ E        z = W_head h (the LM head's logits at the position before the latent), E = token embeddings
//   g = sigmoid(W_g h + b_g)     per hidden dimension; W_g = 0 and b_g = logit(g0) at the start (g0 = 0.95)
//   x = g ⊙ ê + (1 − g) ⊙ h
// so the first latents look like ordinary (soft) token embeddings and the gate learns how much of the hidden state to
// let in. Gradients flow through all of it: into h (directly, through the gate and through the logits), the gate's
// parameters, the embedding table (ê) and the output head (z; the same table when tied).
//
// Why the convex mix rather than HRPO's `a ⊙ ê + sqrt(1 − a²) ⊙ W_h h`: the square root's derivative is infinite at
// a = 1, i.e. exactly where the gate starts, and W_h is another H x H matrix to train; the convex mix has one learned
// part (the gate), bounded derivatives everywhere, and the gate alone still decides each dimension's share. It does
// not rescale h (hidden states are larger than embeddings: see scaledFeedback); the gate learns the share instead.
//
// The op table (src/backend/ops.ts) has no softmax, sigmoid or elementwise product, and this module adds none (the
// backends are another layer). They are composed from ops every backend has, each exactly:
//   - softmax(z): crossEntropy with weight 1 replaces a row by softmax − onehot(label); the row gets one extra column
//     holding −1e30 and that column is the label, so the V real columns are exactly the softmax (the extra one
//     underflows to probability 0, and only it receives the −1);
//   - sigmoid(u) and 1 − sigmoid(u): H rows of two logits [u, 0] through the same op: softmax([u, 0]) = [σ(u), σ(−u)];
//   - a ⊙ b: rmsNormBackward with dim 1, x = 0 and weight 1 adds rstd · dy to dx (its x-term vanishes), i.e. a
//     fused elementwise multiply-add with rstd = a, dy = b.
// It relies only on the formulas ops.ts specifies for these ops (test/gated-feedback.test.ts checks it on every
// backend). A dedicated op for each would be cheaper (WebGPU runs one workgroup per element for a ⊙ b here) and would
// agree to rounding.
import type { Backend, Tensor } from '../backend/types.js';
import { GATE_BIAS, GATE_WEIGHT, TOKEN_EMBEDDINGS } from './latent-params.js';
import type { FeedbackContext, LatentFeedback, Qwen2 } from './qwen2.js';

export interface GatedFeedbackOptions {
  /** Temperature τ of the next-token distribution whose embedding mixture is fed back (default 1; fixed, not learned). */
  temperature?: number;
}

/** The gate's value at the start (W_g = 0): mostly the embedding mixture, so the first latents look like embeddings. */
export const DEFAULT_GATE_INIT = 0.95;

/** A logit far below any real one: exp(it − max) is exactly 0 in f32 on every backend. */
const NO_PROBABILITY = -1e30;

/** The scratch tensors of one backend (allocated on first use, reused by every latent: ops run in queue order). */
interface Buffers {
  be: Backend;
  H: number;
  V: number;
  // forward
  /** [V + 1]: logits, then (in place) the distribution π in its first V entries. */
  z: Tensor;
  ehat: Tensor;
  u: Tensor;
  /** [2H] rows [u, 0]: become [σ(u), −σ(u)] (label 1) and [σ(u) − 1, σ(−u)] (label 0). */
  pairG: Tensor;
  pairOneMinusG: Tensor;
  g: Tensor;
  oneMinusG: Tensor;
  h: Tensor;
  x: Tensor;
  // backward
  dx: Tensor;
  dh: Tensor;
  dehat: Tensor;
  diff: Tensor;
  dg: Tensor;
  gPrime: Tensor;
  du: Tensor;
  dpi: Tensor;
  piDpi: Tensor;
  dot: Tensor;
  dotPi: Tensor;
  // constants and sinks
  noProbability: Tensor;
  labelV: Tensor;
  labels1: Tensor;
  labels0: Tensor;
  ones: Tensor;
  zeros: Tensor;
  losses: Tensor;
  dwSink: Tensor;
  /** Every tensor above, for dispose(). */
  all: Tensor[];
}

function allocBuffers(be: Backend, H: number, V: number): Buffers {
  const all: Tensor[] = [];
  const f = (n: number, label: string) => {
    const t = be.alloc(n, 'f32', `gated:${label}`);
    all.push(t);
    return t;
  };
  const i32 = (data: Int32Array, label: string) => {
    const t = be.alloc(data.length, 'i32', `gated:${label}`);
    be.upload(t, data);
    all.push(t);
    return t;
  };
  const n = Math.max(V + 1, 2 * H);
  const b: Buffers = {
    be,
    H,
    V,
    z: f(V + 1, 'z'),
    ehat: f(H, 'ehat'),
    u: f(H, 'u'),
    pairG: f(2 * H, 'pairG'),
    pairOneMinusG: f(2 * H, 'pair1mG'),
    g: f(H, 'g'),
    oneMinusG: f(H, '1mg'),
    h: f(H, 'h'),
    x: f(H, 'x'),
    dx: f(H, 'dx'),
    dh: f(H, 'dh'),
    dehat: f(H, 'dehat'),
    diff: f(H, 'diff'),
    dg: f(H, 'dg'),
    gPrime: f(H, 'gPrime'),
    du: f(H, 'du'),
    dpi: f(V, 'dpi'),
    piDpi: f(V, 'piDpi'),
    dot: f(1, 'dot'),
    dotPi: f(V, 'dotPi'),
    noProbability: f(1, 'noProbability'),
    labelV: i32(Int32Array.of(V), 'labelV'),
    labels1: i32(new Int32Array(H).fill(1), 'labels1'),
    labels0: i32(new Int32Array(H), 'labels0'),
    ones: f(H, 'ones'),
    zeros: f(n, 'zeros'),
    losses: f(H, 'losses'),
    dwSink: f(1, 'dwSink'),
    all,
  };
  be.upload(b.noProbability, Float32Array.of(NO_PROBABILITY));
  be.upload(b.ones, new Float32Array(H).fill(1));
  return b;
}

/** out[i] += a[i] * b[i] for i < n (see the header: the RMSNorm backward with dim 1 and x = 0). */
function multiplyAdd(bf: Buffers, a: Tensor, b: Tensor, out: Tensor, n: number): void {
  bf.be.rmsNormBackward({ dy: b, x: bf.zeros, w: bf.ones, rstd: a, dx: out, dw: bf.dwSink, rows: n, dim: 1 });
}

/** out = a ⊙ b. */
function multiply(bf: Buffers, a: Tensor, b: Tensor, out: Tensor, n: number): void {
  bf.be.zero(out, 0, n);
  multiplyAdd(bf, a, b, out, n);
}

/**
 * Everything the forward computes from h (copied into bf.h): π (in bf.z), ê, g and 1 − g. The backward calls it
 * again on the same h rather than keeping per-latent activations: the kernels are deterministic, so the values are
 * the forward's own, and a latent costs no memory between the passes.
 */
function computeMix(bf: Buffers, hidden: Tensor, hiddenOff: number, ctx: FeedbackContext, tau: number): void {
  const { be, H, V } = bf;
  be.copy2d({ src: hidden, dst: bf.h, rows: 1, cols: H, srcOff: hiddenOff, srcStride: H, dstStride: H });
  // π = softmax(z / τ) with z the LM head's logits at this position
  be.matmul({ a: bf.h, b: ctx.param(ctx.lmHead), c: bf.z, M: 1, N: V, K: H, transB: true });
  if (tau !== 1) be.scale({ x: bf.z, s: 1 / tau, n: V });
  be.copy2d({ src: bf.noProbability, dst: bf.z, rows: 1, cols: 1, srcStride: 1, dstOff: V, dstStride: 1 });
  be.crossEntropy({ logits: bf.z, labels: bf.labelV, losses: bf.losses, rows: 1, V: V + 1, weights: bf.ones });
  // ê = πᵀ E
  be.matmul({ a: bf.z, b: ctx.param(TOKEN_EMBEDDINGS), c: bf.ehat, M: 1, N: H, K: V });
  // g = σ(W_g h + b_g) and 1 − g = σ(−u), each from its own softmax over [u, 0]
  be.matmul({ a: bf.h, b: ctx.param(GATE_WEIGHT), c: bf.u, M: 1, N: H, K: H, transB: true, bias: ctx.param(GATE_BIAS) });
  be.zero(bf.pairG);
  be.copy2d({ src: bf.u, dst: bf.pairG, rows: H, cols: 1, srcStride: 1, dstStride: 2 });
  be.copy2d({ src: bf.pairG, dst: bf.pairOneMinusG, rows: 1, cols: 2 * H, srcStride: 0, dstStride: 0 });
  be.crossEntropy({ logits: bf.pairG, labels: bf.labels1, losses: bf.losses, rows: H, V: 2, weights: bf.ones });
  be.crossEntropy({ logits: bf.pairOneMinusG, labels: bf.labels0, losses: bf.losses, rows: H, V: 2, weights: bf.ones });
  be.copy2d({ src: bf.pairG, dst: bf.g, rows: H, cols: 1, srcStride: 2, dstStride: 1 });
  be.copy2d({ src: bf.pairOneMinusG, dst: bf.oneMinusG, rows: H, cols: 1, srcOff: 1, srcStride: 2, dstStride: 1 });
}

/** Gated feedback (see the header). Its parameters must exist in the model: addGateParams(). */
export function gatedFeedback(opts: GatedFeedbackOptions = {}): LatentFeedback {
  const tau = opts.temperature ?? 1;
  if (!(tau > 0) || !Number.isFinite(tau)) throw new Error(`gated feedback: temperature must be a positive number, got ${tau}`);
  let bf: Buffers | null = null;
  const buffers = (be: Backend, H: number, V: number): Buffers => {
    if (bf && bf.be === be && bf.H === H && bf.V === V) return bf;
    release();
    return (bf = allocBuffers(be, H, V));
  };
  const release = () => {
    if (!bf) return;
    for (const t of bf.all) bf.be.free(t);
    bf = null;
  };
  return {
    name: tau === 1 ? 'gated' : `gated(τ=${tau})`,
    forward(be, hidden, hiddenOff, input, inputOff, H, ctx) {
      const b = buffers(be, H, ctx.V);
      computeMix(b, hidden, hiddenOff, ctx, tau);
      // x = g ⊙ ê + (1 − g) ⊙ h
      multiply(b, b.g, b.ehat, b.x, H);
      multiplyAdd(b, b.oneMinusG, b.h, b.x, H);
      be.copy2d({ src: b.x, dst: input, rows: 1, cols: H, srcStride: H, dstOff: inputOff, dstStride: H });
    },
    backward(be, dInput, dInputOff, dHidden, dHiddenOff, H, ctx, hidden, hiddenOff) {
      const b = buffers(be, H, ctx.V),
        V = ctx.V;
      computeMix(b, hidden, hiddenOff, ctx, tau);
      be.copy2d({ src: dInput, dst: b.dx, rows: 1, cols: H, srcOff: dInputOff, srcStride: H, dstStride: H });
      // x = g ⊙ ê + (1 − g) ⊙ h:  ∂h += dx ⊙ (1 − g),  dê = dx ⊙ g,  dg = dx ⊙ (ê − h)
      multiply(b, b.dx, b.oneMinusG, b.dh, H);
      multiply(b, b.dx, b.g, b.dehat, H);
      be.copy2d({ src: b.ehat, dst: b.diff, rows: 1, cols: H, srcStride: H, dstStride: H });
      be.axpy({ alpha: -1, x: b.h, y: b.diff, n: H });
      multiply(b, b.dx, b.diff, b.dg, H);
      // g = σ(u): du = dg ⊙ g ⊙ (1 − g);  u = W_g h + b_g
      multiply(b, b.g, b.oneMinusG, b.gPrime, H);
      multiply(b, b.dg, b.gPrime, b.du, H);
      const dWg = ctx.grad(GATE_WEIGHT),
        dbg = ctx.grad(GATE_BIAS);
      if (dWg) be.matmul({ a: b.du, b: b.h, c: dWg, M: H, N: H, K: 1, accumulate: true });
      if (dbg) be.axpy({ alpha: 1, x: b.du, y: dbg, n: H });
      be.matmul({ a: b.du, b: ctx.param(GATE_WEIGHT), c: b.dh, M: 1, N: H, K: H, accumulate: true });
      // ê = πᵀ E:  dE += π ⊗ dê,  dπ = E dê
      const dE = ctx.grad(TOKEN_EMBEDDINGS);
      if (dE) be.matmul({ a: b.z, b: b.dehat, c: dE, M: V, N: H, K: 1, accumulate: true });
      be.matmul({ a: b.dehat, b: ctx.param(TOKEN_EMBEDDINGS), c: b.dpi, M: 1, N: V, K: H, transB: true });
      // π = softmax(z / τ):  dz = π ⊙ (dπ − π·dπ) / τ  (built in piDpi)
      multiply(b, b.z, b.dpi, b.piDpi, V);
      be.matmul({ a: b.z, b: b.dpi, c: b.dot, M: 1, N: 1, K: V });
      be.matmul({ a: b.z, b: b.dot, c: b.dotPi, M: V, N: 1, K: 1 });
      be.axpy({ alpha: -1, x: b.dotPi, y: b.piDpi, n: V });
      if (tau !== 1) be.scale({ x: b.piDpi, s: 1 / tau, n: V });
      // z = W_head h:  dW_head += dz ⊗ h,  ∂h += W_headᵀ dz
      const dHead = ctx.grad(ctx.lmHead);
      if (dHead) be.matmul({ a: b.piDpi, b: b.h, c: dHead, M: V, N: H, K: 1, accumulate: true });
      be.matmul({ a: b.piDpi, b: ctx.param(ctx.lmHead), c: b.dh, M: 1, N: H, K: V, accumulate: true });
      be.axpy({ alpha: 1, x: b.dh, y: dHidden, n: H, yOff: dHiddenOff });
    },
    dispose: release,
  };
}

/** logit(p): the bias that makes σ(bias) = p. */
const logit = (p: number) => Math.log(p / (1 - p));

/**
 * Adds the gate's parameters (W_g = 0 [H, H], b_g = logit(gateInit) [H]) unless the model has them already (a
 * checkpoint being resumed brings its own, which are kept).
 */
export function addGateParams(model: Qwen2, gateInit = DEFAULT_GATE_INIT): void {
  if (!(gateInit > 0 && gateInit < 1))
    throw new Error(`gated feedback: the initial gate must lie strictly between 0 and 1, got ${gateInit}`);
  const H = model.H;
  const has = (name: string, n: number) => model.params.has(name) && model.param(name).size === n;
  if (!has(GATE_WEIGHT, H * H)) model.addParam(GATE_WEIGHT, [H, H], new Float32Array(H * H));
  if (!has(GATE_BIAS, H)) model.addParam(GATE_BIAS, [H], new Float32Array(H).fill(logit(gateInit)));
}

/**
 * The gate's values σ(W_g h + b_g) for final-norm hidden states [n, H] (computed on the host from the parameters:
 * a report, not part of training), and their mean.
 */
export async function gateValues(model: Qwen2, hidden: Float32Array): Promise<{ values: Float32Array; mean: number }> {
  const H = model.H,
    n = hidden.length / H;
  const W = (await model.be.read(model.param(GATE_WEIGHT))) as Float32Array,
    b = (await model.be.read(model.param(GATE_BIAS))) as Float32Array;
  const values = new Float32Array(n * H);
  let sum = 0;
  for (let r = 0; r < n; r++)
    for (let i = 0; i < H; i++) {
      let u = b[i];
      for (let j = 0; j < H; j++) u += W[i * H + j] * hidden[r * H + j];
      const g = 1 / (1 + Math.exp(-u));
      values[r * H + i] = g;
      sum += g;
    }
  return { values, mean: n ? sum / (n * H) : NaN };
}
