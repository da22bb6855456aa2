// AdamW with decoupled weight decay, on one element (the generic `map` kernel of elementwise.wgsl loops).
// Params (host-computed in f64): lr, beta1, beta2, oneMinusBeta1, oneMinusBeta2, eps, wd, bc1 = 1 - beta1^step,
// bc2 = 1 - beta2^step, gradScale (global grad-norm clipping folded in).
// Returns (p, m, v) after the step.
fn adamw(p: f32, g0: f32, m0: f32, v0: f32) -> vec3<f32> {
  let g = g0 * P.gradScale;
  let m = P.beta1 * m0 + P.oneMinusBeta1 * g;
  let v = P.beta2 * v0 + P.oneMinusBeta2 * g * g;
  let mhat = m / P.bc1;
  let vhat = v / P.bc2;
  return vec3<f32>(p - P.lr * (mhat / (sqrt(vhat) + P.eps) + P.wd * p), m, v);
}
