// Diagnostics for "is the model using its latents?" — the failure this project starts from is a model that learns
// to ignore them (flat losses, latents decoding to junk). Every eval reports:
//   - test loss, and the loss of the first tokens after each breakpoint (the step latents should help);
//   - the same losses with the latents (a) zeroed, (b) swapped for another example's latents, (c) removed:
//     if these equal the normal loss, the latents carry no information the model uses;
//   - for a few latents: nearest vocabulary tokens by cosine against the embedding matrix, the LM head's top tokens,
//     and the latent's norm against the typical token-embedding norm.
import { Kind, type Qwen2 } from '../model/qwen2.js';
import { removeLatents, type LatentSequence } from './sequence.js';
import { LM_HEAD, TOKEN_EMBEDDINGS } from '../model/latent-params.js';
import { forwardEach } from './batch.js';

export interface LossReport {
  loss: number;
  /** Mean loss over the first `afterTokens` answer tokens after each breakpoint. */
  postBreakLoss: number;
  labels: number;
}

export interface UsageReport {
  normal: LossReport;
  zeroed?: LossReport;
  swapped?: LossReport;
  removed?: LossReport;
  /** zeroed.postBreakLoss - normal.postBreakLoss etc.: > 0 means the latents help. */
  gapZeroed?: number;
  gapSwapped?: number;
  gapRemoved?: number;
}

export function inputOf(seq: LatentSequence, twoTrunk: boolean) {
  return {
    B: 1,
    T: seq.ids.length,
    ids: seq.ids,
    kind: seq.kind,
    extra: seq.extra,
    labels: seq.labels,
    trunk: twoTrunk ? seq.trunk : undefined,
  };
}

function postBreakMask(seq: LatentSequence, afterTokens: number): Set<number> {
  const s = new Set<number>();
  for (const p of seq.afterBreak)
    for (let j = 0; j < afterTokens && p + j < seq.ids.length; j++)
      if (seq.labels[p + j] !== -100 && seq.kind[p + j] === Kind.Token) s.add(p + j);
  return s;
}

/** Loss over sequences; `transform` may swap in supplied vectors for latent positions. */
async function lossOver(
  model: Qwen2,
  seqs: LatentSequence[],
  afterTokens: number,
  prep?: (s: LatentSequence, i: number) => { seq: LatentSequence; embeds?: Float32Array },
): Promise<LossReport> {
  let sum = 0,
    n = 0,
    psum = 0,
    pn = 0;
  const items = seqs.map((s, i) => (prep ? prep(s, i) : { seq: s }));
  const results = await forwardEach(model, items);
  items.forEach(({ seq }, i) => {
    const r = results[i];
    sum += r.lossSum;
    n += r.labelCount;
    for (const p of postBreakMask(seq, afterTokens)) {
      psum += r.lossAt[p];
      pn++;
    }
  });
  return { loss: n ? sum / n : NaN, postBreakLoss: pn ? psum / pn : NaN, labels: n };
}

/**
 * The state behind each latent position, per sequence: the final-norm hidden state of the position before it, or with
 * `fed` what the model's feedback makes of it, i.e. the latent's actual input (the same vector for identity feedback;
 * a scaled or gated one for the others).
 */
export async function collectLatents(model: Qwen2, seqs: LatentSequence[], opts: { fed?: boolean } = {}): Promise<Float32Array[][]> {
  const H = model.H,
    out: Float32Array[][] = [];
  const withLatents = seqs.filter((s) => s.kind.includes(Kind.Latent));
  const results = await forwardEach(
    model,
    withLatents.map((seq) => ({ seq })),
    { wantHidden: true, withLabels: false },
  );
  let k = 0; // results are in the order of withLatents: seqs' order, those without latents left out
  for (const seq of seqs) {
    let lat: Float32Array[] = [];
    if (seq.kind.includes(Kind.Latent)) {
      const hidden = results[k++].hidden!;
      for (let t = 0; t < seq.ids.length; t++) if (seq.kind[t] === Kind.Latent) lat.push(hidden.slice((t - 1) * H, t * H));
      if (opts.fed && lat.length) {
        const rows = new Float32Array(lat.length * H);
        lat.forEach((v, i) => rows.set(v, i * H));
        const fed = await model.applyFeedback(rows);
        lat = lat.map((_, i) => fed.slice(i * H, (i + 1) * H));
      }
    }
    out.push(lat);
  }
  return out;
}

export async function latentUsage(model: Qwen2, seqs: LatentSequence[], afterTokens = 3): Promise<UsageReport> {
  const H = model.H;
  const normal = await lossOver(model, seqs, afterTokens);
  const hasSpans = seqs.some((s) => s.spans.length > 0);
  if (!hasSpans) return { normal };
  const isLatent = (s: LatentSequence, t: number) =>
    s.kind[t] === Kind.Latent || (s.kind[t] === Kind.Extra && s.spans.some((sp) => sp.latents.includes(t)));
  const withEmbeds = (s: LatentSequence, vec: (t: number, j: number) => Float32Array | null) => {
    const kind = s.kind.slice(),
      embeds = new Float32Array(s.ids.length * H);
    let j = 0;
    for (let t = 0; t < s.ids.length; t++)
      if (isLatent(s, t)) {
        const v = vec(t, j++);
        kind[t] = Kind.Embed;
        if (v) embeds.set(v, t * H);
      }
    return { seq: { ...s, kind }, embeds };
  };
  const zeroed = await lossOver(model, seqs, afterTokens, (s) => withEmbeds(s, () => null));
  // another example's latent inputs (the next sequence that has any, cyclically), as its feedback made them: a swap
  // then changes only which example the state came from; pause tokens have none to swap
  const lat = await collectLatents(model, seqs, { fed: true });
  let swapped: LossReport | undefined;
  if (lat.some((l) => l.length)) {
    swapped = await lossOver(model, seqs, afterTokens, (s, i) => {
      let o = (i + 1) % seqs.length;
      while (lat[o].length === 0 && o !== i) o = (o + 1) % seqs.length;
      const src = lat[o];
      return withEmbeds(s, (_t, j) => (src.length ? src[j % src.length] : null));
    });
  }
  const removed = await lossOver(model, seqs.map(removeLatents), afterTokens);
  return {
    normal,
    zeroed,
    swapped,
    removed,
    gapZeroed: zeroed.postBreakLoss - normal.postBreakLoss,
    gapSwapped: swapped ? swapped.postBreakLoss - normal.postBreakLoss : undefined,
    gapRemoved: removed.postBreakLoss - normal.postBreakLoss,
  };
}

/**
 * One line reading the probes: information use needs the *swapped* gap (another example's latents hurt);
 * zeroed/removed gaps alone only show the slots matter (extra positions, or a distribution shift), as pause tokens do.
 */
export function usageVerdict(u: UsageReport, margin = 0.05): string {
  if (!u.zeroed) return 'no latent spans';
  if ((u.gapSwapped ?? 0) > margin)
    return `latents carry example-specific information the model uses (swapped +${u.gapSwapped!.toFixed(3)} nats)`;
  if ((u.gapRemoved ?? 0) > margin || (u.gapZeroed ?? 0) > margin)
    return `the latent slots matter but their content is interchangeable between examples (swapped ${(u.gapSwapped ?? 0).toFixed(3)}, removed +${(u.gapRemoved ?? 0).toFixed(3)}): pause-like use, not reasoning in latents`;
  return 'latents are ignored (all probe gaps below the margin)';
}

export interface DecodedLatent {
  norm: number;
  /** Nearest vocabulary tokens by cosine similarity with the input-embedding matrix. */
  nearest: { token: string; id: number; cos: number }[];
  /** Top tokens of the LM head applied to the latent. */
  lmTop: { token: string; id: number; logit: number }[];
}

/** Reads the embedding table once and decodes latent vectors; `typicalNorm` is the mean token-embedding norm. */
export class LatentDecoder {
  private constructor(
    readonly emb: Float32Array,
    readonly lm: Float32Array,
    readonly norms: Float32Array,
    readonly typicalNorm: number,
    readonly H: number,
  ) {}

  static async create(model: Qwen2): Promise<LatentDecoder> {
    const emb = (await model.be.read(model.param(TOKEN_EMBEDDINGS))) as Float32Array;
    const lm = model.config.tie_word_embeddings ? emb : ((await model.be.read(model.param(LM_HEAD))) as Float32Array);
    const H = model.H,
      V = emb.length / H,
      norms = new Float32Array(V);
    let total = 0;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < H; i++) s += emb[v * H + i] ** 2;
      norms[v] = Math.sqrt(s);
      total += norms[v];
    }
    return new LatentDecoder(emb, lm, norms, total / V, H);
  }

  decode(vec: Float32Array, tokenText: (id: number) => string, top = 5, validIds?: ArrayLike<number>): DecodedLatent {
    const H = this.H,
      V = this.norms.length;
    let nn = 0;
    for (let i = 0; i < H; i++) nn += vec[i] * vec[i];
    const norm = Math.sqrt(nn);
    const cos: { id: number; v: number }[] = [],
      lg: { id: number; v: number }[] = [];
    const ids = validIds ?? { length: V };
    for (let k = 0; k < ids.length; k++) {
      const v = validIds ? validIds[k] : k;
      let d = 0,
        l = 0;
      for (let i = 0; i < H; i++) {
        d += vec[i] * this.emb[v * H + i];
        l += vec[i] * this.lm[v * H + i];
      }
      cos.push({ id: v, v: d / (norm * this.norms[v] + 1e-12) });
      lg.push({ id: v, v: l });
    }
    cos.sort((a, b) => b.v - a.v);
    lg.sort((a, b) => b.v - a.v);
    return {
      norm,
      nearest: cos.slice(0, top).map((c) => ({ id: c.id, token: tokenText(c.id), cos: c.v })),
      lmTop: lg.slice(0, top).map((c) => ({ id: c.id, token: tokenText(c.id), logit: c.v })),
    };
  }
}
