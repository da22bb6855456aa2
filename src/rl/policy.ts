// Replay for RL: re-runs sampled completions' sequences through forward() (optionally with grad and per-label
// weights) to get the current policy's log-probs of the sampled tokens and the hidden states the heads decided on.
// The completions come from the one decoder, src/generation/decode.ts (sampleGroup), whose layout they share.
import { Kind, type Qwen2 } from '../model/qwen2.js';
import { trunkOfKind, type Completion } from '../generation/decode.js';

export interface ReplayOptions {
  grad?: boolean;
  lossScale?: number;
  /** Per completion, a weight per token action (same order as its token actions). */
  weights?: Float64Array[];
  wantHidden?: boolean;
}

export interface ReplayResult {
  /** Per completion: log p of each token action under the current model (untempered). */
  tokenLogp: Float64Array[];
  /** Per completion: the final-norm hidden state at each decision action's position. */
  decisionHidden: Float32Array[][];
}

/** True when these completions can share one forward (two-trunk routing must agree at every position). */
export function canBatch(model: Qwen2, comps: Completion[]): boolean {
  if (!model.twoTrunk || comps.length < 2) return true;
  const T = Math.max(...comps.map((c) => c.seq.ids.length));
  for (let t = 0; t < T; t++) {
    let tr = -1;
    for (const c of comps) {
      if (t >= c.seq.kind.length) continue;
      const x = trunkOfKind(c.seq.kind[t]);
      if (tr >= 0 && x !== tr) return false;
      tr = x;
    }
  }
  return true;
}

/**
 * Runs completions through forward() as one batch (right-padded: the model is causal, so padding after a sequence
 * never changes its positions). Labels are the sampled tokens at their positions, so lossAt = -log p(token).
 * With grad, call model.backward() afterwards; the label weights carry the policy-gradient coefficients.
 */
export async function replay(model: Qwen2, comps: Completion[], o: ReplayOptions = {}): Promise<ReplayResult> {
  const B = comps.length,
    T = Math.max(...comps.map((c) => c.seq.ids.length)),
    H = model.H;
  const ids = new Int32Array(B * T),
    kind = new Uint8Array(B * T),
    extra = new Int32Array(B * T).fill(-1);
  const labels = new Int32Array(B * T).fill(-100),
    labelWeights = o.weights ? new Float32Array(B * T) : undefined;
  const trunk = model.twoTrunk ? new Uint8Array(B * T) : undefined;
  comps.forEach((c, b) => {
    const n = c.seq.ids.length;
    for (let t = 0; t < n; t++) {
      ids[b * T + t] = c.seq.kind[t] === Kind.Token ? c.seq.ids[t] : 0;
      kind[b * T + t] = c.seq.kind[t];
      extra[b * T + t] = c.seq.extra[t];
      if (trunk) trunk[b * T + t] = trunkOfKind(c.seq.kind[t]);
    }
    let j = 0;
    for (const a of c.actions) {
      if (a.type !== 'token') continue;
      labels[b * T + a.pos] = a.id;
      if (labelWeights) labelWeights[b * T + a.pos] = o.weights![b][j];
      j++;
    }
  });
  if (trunk) {
    // padding takes the routing of the rows that are real at that position, so routing is uniform per position
    for (let t = 0; t < T; t++) {
      const real = comps.findIndex((c) => t < c.seq.ids.length);
      for (let b = 0; b < B; b++) {
        if (t >= comps[b].seq.ids.length) trunk[b * T + t] = trunk[real * T + t];
        else if (trunk[b * T + t] !== trunk[real * T + t])
          throw new Error('replay: two-trunk routing differs across the batch; replay these completions one at a time (see canBatch)');
      }
    }
  }
  const r = await model.forward(
    { B, T, ids, kind, extra, labels, labelWeights, trunk },
    { grad: o.grad, lossScale: o.lossScale, wantHidden: o.wantHidden, alignSegments: true },
  );
  const tokenLogp: Float64Array[] = [],
    decisionHidden: Float32Array[][] = [];
  comps.forEach((c, b) => {
    const lp: number[] = [],
      hs: Float32Array[] = [];
    for (const a of c.actions) {
      if (a.type === 'token') lp.push(-r.lossAt![b * T + a.pos]);
      else if (r.hidden) hs.push(r.hidden.slice((b * T + a.pos) * H, (b * T + a.pos + 1) * H));
    }
    tokenLogp.push(Float64Array.from(lp));
    decisionHidden.push(hs);
  });
  return { tokenLogp, decisionHidden };
}
