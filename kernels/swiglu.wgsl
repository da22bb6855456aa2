// SiLU-gated MLP activation. The element loop is the generic `map` kernel of elementwise.wgsl; these functions
// are the math it calls (the backend's op table wires tensors to arguments).

// out = silu(g) * u. For very negative g, exp(-g) overflows to +inf and g / inf = -0, the right limit.
fn swiglu(g: f32, u: f32) -> f32 {
  return g / (1.0 + exp(-g)) * u;
}

// Increments for (dGate, dUp) given the upstream gradient d.
fn swiglu_backward(d: f32, g: f32, u: f32) -> vec2<f32> {
  let sig = 1.0 / (1.0 + exp(-g));
  return vec2<f32>(d * u * sig * (1.0 + g * (1.0 - sig)), d * g * sig);
}
