// Training objectives that give latents content (used by Phase1Trainer with a sub-step schedule):
//   step decoding (SIM-CoT-style, through the LM head): auxiliary labels at slot positions, weighted separately
//     from the text (the sequence builder places them, see curriculum.ts);
//   hidden-state distillation (CODI-style): the same model reading the scratch text is the teacher (no gradient);
//     the student's final-norm hidden state at the token before each result is pulled toward the teacher's there,
//     loss = w * sum_p ||h_p - t_p||^2 / (H * count), with mean squared error rather than CODI's L1 (a smooth gradient).
// Both are checked against the PyTorch reference in test/objectives.test.ts.

/** Per-label weights: 1 for text labels, `weight` at the auxiliary (step-decode) label positions. */
export function auxLabelWeights(T: number, aux: readonly number[], weight: number): Float32Array {
  const w = new Float32Array(T).fill(1);
  for (const p of aux) w[p] = weight;
  return w;
}

export interface DistillTarget {
  /** Student position whose hidden state is pulled. */
  pos: number;
  /** The teacher's hidden state there (H values). */
  target: Float32Array;
}

/**
 * Loss and d(loss)/d(hidden) ([T*H], for Qwen2.addHiddenGrad) of the distillation term for one sequence, normalised by
 * `count` (the number of distilled positions in the whole batch, so the batch loss is their mean).
 */
export function distillationGrad(
  hidden: Float32Array,
  H: number,
  T: number,
  targets: readonly DistillTarget[],
  weight: number,
  count: number,
): { loss: number; grad: Float32Array } {
  const grad = new Float32Array(T * H);
  let loss = 0;
  const scale = weight / (H * Math.max(1, count));
  for (const { pos, target } of targets) {
    if (pos < 0 || pos >= T) throw new Error(`distillation: position ${pos} is outside the sequence (T=${T})`);
    for (let i = 0; i < H; i++) {
      const d = hidden[pos * H + i] - target[i];
      loss += scale * d * d;
      grad[pos * H + i] += 2 * scale * d;
    }
  }
  return { loss, grad };
}
