// Several latent sequences in one forward: the phase-1 step's batching.
//
// Why this is exact: Qwen2.forward (src/model/qwen2.ts) already takes B sequences and cuts the positions into
// segments at the union of every sequence's latent positions, so each sequence still sees its own fed-back hidden
// states at its own positions; a sequence whose position t is not a latent just has an ordinary token there inside a
// shorter segment. Sequences of different lengths are padded at the END (token 0, label -100, weight 1): with causal
// attention a position never reads a later one, and a padded position has no label, so it adds no loss and no
// gradient. Every row is computed by the same kernels as alone (the WASM and CPU kernels do not mix rows), so the
// forward values match the one-sequence forwards; only sums ACROSS sequences (the loss total, the weight gradients)
// are added in another order, which moves them by float rounding.
//
// Why grouping: two-trunk routing must agree across the sequences of a forward at every position (the model refuses
// otherwise), and padded rows cost memory and work, so sequences join a group only while the padded size stays
// under an activation budget.
import type { ForwardInput, Qwen2 } from '../model/qwen2.js';
import type { LatentSequence } from './sequence.js';

/** Padded rows x hidden x layers a batched forward may hold (floats per activation kind; ~64 MiB each). */
export const BATCH_ACTIVATION_BUDGET = 1 << 24;

/**
 * Consecutive groups of `seqs` (indices, in order) that can share one forward: padded rows B * maxLen within
 * `maxRows` (a single sequence always forms a group), and, when `twoTrunk`, the same trunk at every position that
 * two members both have.
 */
export function batchGroups(seqs: readonly LatentSequence[], maxRows: number, twoTrunk: boolean): number[][] {
  const groups: number[][] = [];
  let cur: number[] = [],
    T = 0;
  for (let i = 0; i < seqs.length; i++) {
    const len = seqs[i].ids.length,
      newT = Math.max(T, len);
    const fits = cur.length > 0 && (cur.length + 1) * newT <= maxRows && (!twoTrunk || cur.every((j) => sameTrunk(seqs[j], seqs[i])));
    if (!fits && cur.length) {
      groups.push(cur);
      cur = [];
      T = 0;
    }
    cur.push(i);
    T = Math.max(T, len);
  }
  if (cur.length) groups.push(cur);
  return groups;
}

function sameTrunk(a: LatentSequence, b: LatentSequence): boolean {
  const n = Math.min(a.trunk.length, b.trunk.length);
  for (let t = 0; t < n; t++) if (a.trunk[t] !== b.trunk[t]) return false;
  return true;
}

/**
 * One ForwardInput for `seqs`, each padded to the longest (T). `labelWeights[b]` (optional per sequence) weights
 * sequence b's labels; the input carries weights only if some sequence has them (the others get 1). A single
 * sequence gives exactly its own input (no padding).
 */
export function packSequences(
  seqs: readonly LatentSequence[],
  twoTrunk: boolean,
  labelWeights: readonly (Float32Array | undefined)[] = [],
): { input: ForwardInput; T: number } {
  const B = seqs.length,
    T = Math.max(...seqs.map((s) => s.ids.length));
  const ids = new Int32Array(B * T),
    kind = new Uint8Array(B * T),
    extra = new Int32Array(B * T).fill(-1),
    labels = new Int32Array(B * T).fill(-100);
  const anyWeights = labelWeights.some((w) => w);
  const weights = anyWeights ? new Float32Array(B * T).fill(1) : undefined;
  const trunk = twoTrunk ? new Uint8Array(B * T) : undefined;
  seqs.forEach((s, b) => {
    const o = b * T;
    ids.set(s.ids, o);
    kind.set(s.kind, o);
    extra.set(s.extra, o);
    labels.set(s.labels, o);
    if (weights && labelWeights[b]) weights.set(labelWeights[b]!, o);
  });
  if (trunk) {
    // a padded position takes the routing of a member that has the position (members agree: batchGroups), so the
    // pads never split a segment or break the model's same-routing check
    for (let t = 0; t < T; t++) {
      const v = seqs.find((s) => t < s.trunk.length)!.trunk[t];
      for (let b = 0; b < B; b++) trunk[b * T + t] = t < seqs[b].trunk.length ? seqs[b].trunk[t] : v;
    }
  }
  return { input: { B, T, ids, kind, extra, labels, labelWeights: weights, trunk }, T };
}

/** Logit values a shared probe forward may keep (64 MiB of f32); a single sequence always forms a group. */
const LOGITS_BUDGET = 1 << 24;

/** What a forward-only pass gives for one sequence (as forward() on that sequence alone would). */
export interface SequenceResult {
  lossAt: Float32Array;
  lossSum: number;
  labelCount: number;
  hidden?: Float32Array;
  logits?: Float32Array;
}

/**
 * Forward-only passes over many sequences (the usage probes: each with optional `embeds` for its Embed positions),
 * as shared forwards with aligned segments where the model can run them (one trunk; the backend takes per-sequence
 * query starts), else one forward each. Results per sequence, the same as alone: every row is computed by the same
 * kernels either way, and each sequence's loss is summed over its own labels in position order.
 */
export async function forwardEach(
  model: Qwen2,
  items: readonly { seq: LatentSequence; embeds?: Float32Array }[],
  opts: { wantHidden?: boolean; wantLogits?: boolean; withLabels?: boolean } = {},
): Promise<SequenceResult[]> {
  const withLabels = opts.withLabels ?? true;
  const { H, V } = model;
  const shared = model.alignsSegments;
  // kept logits are [rows, V] per forward: with a large vocabulary (Qwen2's 151,936) they bound the group, not H x L
  const maxRows = Math.floor(
    Math.min(BATCH_ACTIVATION_BUDGET / (H * model.L), opts.wantLogits ? LOGITS_BUDGET / model.V : Number.POSITIVE_INFINITY),
  );
  const groups = shared
    ? batchGroups(
        items.map((it) => it.seq),
        maxRows,
        false,
      )
    : items.map((_, i) => [i]);
  const out: SequenceResult[] = [];
  for (const g of groups) {
    const seqs = g.map((i) => items[i].seq);
    const { input, T } = packSequences(seqs, model.twoTrunk);
    let embeds: Float32Array | undefined;
    g.forEach((i, b) => {
      const e = items[i].embeds;
      if (!e) return;
      embeds ??= new Float32Array(g.length * T * H);
      embeds.set(e, b * T * H);
    });
    const r = await model.forward(
      { ...input, labels: withLabels ? input.labels : undefined, embeds },
      { wantHidden: opts.wantHidden, wantLogits: opts.wantLogits, alignSegments: true },
    );
    seqs.forEach((s, b) => {
      const n = s.ids.length;
      const lossAt = r.lossAt ? r.lossAt.slice(b * T, b * T + n) : new Float32Array(n);
      let lossSum = 0,
        labelCount = 0;
      if (withLabels)
        for (let t = 1; t < n; t++)
          if (s.labels[t] !== -100) {
            lossSum += lossAt[t];
            labelCount++;
          }
      out.push({
        lossAt,
        lossSum,
        labelCount,
        hidden: r.hidden?.slice(b * T * H, (b * T + n) * H),
        logits: r.logits?.slice(b * T * V, (b * T + n) * V),
      });
    });
  }
  return out;
}
