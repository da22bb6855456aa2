// Phase 2: GRPO-style reinforcement learning with verifiable rewards.
//
// Per step: Q questions x G sampled completions (the policy writes text and decides itself when to enter and leave
// latent mode); only the text's final answer is graded (src/rl/rewards.ts); advantages are normalised within each
// group; the clipped policy-gradient objective is applied token-level over every policy action (text tokens AND
// start/end decisions), optionally with a k3 KL penalty to a frozen reference policy.
//
// The objective, per action i with advantage A (its completion's), ratio r = exp(logp_i - logp_old_i):
//   J_i = min(r A, clip(r, 1 - eps, 1 + epsHigh) A)          KL_i = exp(ref_i - logp_i) - (ref_i - logp_i) - 1 (k3)
//   L   = (1/N) sum_i [ -J_i + beta KL_i ]                   N = policy actions in the batch (token-level, as DAPO)
// Its derivative w.r.t. logp_i:
//   dL/dlogp_i = (1/N) [ -c_i + beta (1 - exp(ref_i - logp_i)) ],   c_i = r A if the unclipped branch is active, else 0
// The fused cross-entropy head computes d(weight * lossScale * CE_i) with CE_i = -logp_i, i.e. it contributes
// -weight * lossScale * dlogp_i. Matching the two with lossScale = 1/N gives the label weight
//   w_i = c_i + beta (exp(ref_i - logp_i) - 1)                                      (policyWeight below)
// On-policy with one update per batch (ppoEpochs = 1, beta = 0) r = 1 and w_i = A: no extra forward is needed.
// Otherwise a no-grad forward first gives logp_i (forward's lossAt = -logp), then the weights.
// The start/end heads are host-side logistic heads on detached hidden states: the same weights times
// dlogp/dz = (decision - p) give their gradient, applied with a host Adam step.
//
// "Old" log-probs are the policy's own (untempered) log-probs measured at the first replay of the batch, stored as
// numbers: no copy of the model. The reference model exists only when beta > 0.
//
// Latent feedback (options.feedback: identity, scaled or gated, src/rl/feedback.ts) is the phase-1 run's and stays
// fixed for the run: the policy and the reference both use it, checkpoints record it, a resume restores it. Gated
// feedback's parameters (latent.gate.*) are trained by the policy gradient in both modes, as latent.embeddings is:
// everything trains in full mode, every `latent.*` tensor in two-trunk mode.
import { Qwen2 } from '../model/qwen2.js';
import { AdamW, type AdamWConfig } from '../train/adamw.js';
import { HostAdam } from '../train/host-adam.js';
import { DataCursor, due, fillMarkerEmbeddings, stopOnNonFiniteLoss } from '../train/skeleton.js';
import { Rng } from '../data/rng.js';
import { LogisticHead } from '../latent/heads.js';
import { extraRows, type Condition } from '../latent/sequence.js';
import { CHECKPOINT_VERSION, loadCheckpoint, readCheckpointState, saveCheckpoint, type RlCheckpointState } from '../latent/checkpoint.js';
import type { HeadWeights, RlRunState } from '../train/checkpoint-schema.js';
import { canBatch, replay } from './policy.js';
import { markedText, sampleGroups, type Completion, type DecodeOptions } from '../generation/decode.js';
import { shapeReward, type Checker, type RewardShaping, type ShapedReward } from './rewards.js';
import { EvalInterrupted, interruptibleDecode } from '../train/signals.js';
import { LATENT_EMBEDDINGS, LATENT_PREFIX } from '../model/latent-params.js';
import type { TextCodec } from '../text/tokenizer-shape.js';
import {
  feedbackLabel,
  IDENTITY_FEEDBACK,
  installFeedback,
  requireFeedbackTensors,
  safetensorsSizes,
  type FeedbackSpec,
} from './feedback.js';

// ---------------------------------------------------------------------------------------------------------------
// The algorithm's pieces, as plain functions (tested by hand values)

export interface GroupAdvantages {
  adv: Float64Array;
  mean: Float64Array;
  std: Float64Array;
  /** Per group: every reward equal (no learning signal). */
  zeroVariance: boolean[];
}

/**
 * (r - mean) / (std + eps) within each group of G consecutive rewards. std is the sample (n - 1) standard deviation,
 * as torch.std in TRL's GRPO. scale = false gives r - mean (Dr. GRPO). A zero-variance group gets advantages 0.
 */
export function groupAdvantages(rewards: ArrayLike<number>, G: number, o: { eps?: number; scale?: boolean } = {}): GroupAdvantages {
  const n = rewards.length;
  if (G < 1 || n % G !== 0) throw new Error(`groupAdvantages: ${n} rewards do not split into groups of ${G}`);
  const eps = o.eps ?? 1e-4,
    scale = o.scale ?? true,
    groups = n / G;
  const adv = new Float64Array(n),
    mean = new Float64Array(groups),
    std = new Float64Array(groups),
    zeroVariance: boolean[] = [];
  for (let g = 0; g < groups; g++) {
    let m = 0;
    for (let i = 0; i < G; i++) m += rewards[g * G + i];
    m /= G;
    let ss = 0;
    for (let i = 0; i < G; i++) ss += (rewards[g * G + i] - m) ** 2;
    const s = G > 1 ? Math.sqrt(ss / (G - 1)) : 0;
    const zero =
      G < 2 || rewards.length === 0 || Array.from({ length: G }, (_, i) => rewards[g * G + i]).every((r) => r === rewards[g * G]);
    (mean[g] = m), (std[g] = s), zeroVariance.push(zero);
    for (let i = 0; i < G; i++) adv[g * G + i] = zero ? 0 : (rewards[g * G + i] - m) / (scale ? s + eps : 1);
  }
  return { adv, mean, std, zeroVariance };
}

export interface ClipTerm {
  ratio: number;
  /** J = min(r A, clip(r) A). */
  obj: number;
  /** dJ/dlogp: r A where the unclipped branch is active, else 0. */
  coef: number;
  clipped: boolean;
}

export function clippedTerm(logp: number, logpOld: number, A: number, eps: number, epsHigh = eps): ClipTerm {
  const ratio = Math.exp(logp - logpOld);
  const un = ratio * A,
    cl = Math.min(Math.max(ratio, 1 - eps), 1 + epsHigh) * A;
  const clipped = cl < un;
  return { ratio, obj: clipped ? cl : un, coef: clipped ? 0 : un, clipped };
}

/** k3 estimator of KL(policy || ref) at one sampled action, and its derivative w.r.t. logp. */
export function k3(logp: number, logpRef: number): { kl: number; dlogp: number } {
  const d = logpRef - logp;
  return { kl: Math.exp(d) - d - 1, dlogp: 1 - Math.exp(d) };
}

/** Label weight for the fused CE path (lossScale = 1/N): w = c + beta (exp(ref - logp) - 1). */
export function policyWeight(t: ClipTerm, beta: number, logp: number, logpRef?: number): number {
  return t.coef + (beta > 0 && logpRef !== undefined ? beta * (Math.exp(logpRef - logp) - 1) : 0);
}

/** The per-action loss -J + beta KL (summed and divided by N it is the objective). */
export function actionLoss(t: ClipTerm, beta: number, logp: number, logpRef?: number): number {
  return -t.obj + (beta > 0 && logpRef !== undefined ? beta * k3(logp, logpRef).kl : 0);
}

/** Held-out questions evaluate() decodes together (see sampleGroups); Ctrl-C is also checked inside a batch. */
const EVAL_BATCH = 32;
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const logit = (p: number) => Math.log(p / (1 - p));

// ---------------------------------------------------------------------------------------------------------------
// The trainer

export interface Task {
  question: string;
  /** The gold final answer (what follows `#### `). */
  gold: string;
}

/** What GRPO needs of a tokenizer (kept under this name for callers of the public API). */
export type TokenizerLike = TextCodec;

export interface GrpoOptions {
  steps: number;
  /** Completions per question (G). */
  group: number;
  /** Questions per step (Q); a step trains on Q x G completions. */
  questionsPerStep: number;
  lr: number;
  /** KL coefficient (0: no reference model at all). */
  beta: number;
  /** Lower clip epsilon (and the upper one unless epsHigh is set). */
  eps: number;
  epsHigh?: number;
  /** Policy updates per sampled batch (1 = on-policy). */
  ppoEpochs: number;
  advEps?: number;
  /** Divide advantages by the group std (default true). */
  scaleRewards?: boolean;
  /** Leave zero-variance groups out of the loss and its normaliser N (they are still reported). */
  filterZeroVariance?: boolean;
  condition: Condition;
  maxNewTokens: number;
  temperature: number;
  topP?: number;
  maxLatents: number;
  latentBudget: number;
  latentsPerSpan?: number;
  rewards: RewardShaping;
  /**
   * How latents are fed back (default identity): the --init checkpoint's. Installed in the policy and the reference
   * model; gated feedback needs the gate's parameters in the model (they come with the phase-1 checkpoint).
   */
  feedback?: FeedbackSpec;
  /** Train the start/end heads with the policy gradient (default true when condition != 'none'). */
  trainHeads?: boolean;
  headLr?: number;
  /** Initial probabilities of fresh (untrained) heads. */
  freshStartProb?: number;
  freshEndProb?: number;
  /** Completions per replay forward (default: the group size); two-trunk mode batches only identical routings. */
  microBatch?: number;
  adamw?: Partial<AdamWConfig>;
  seed: number;
  /** Log a sample of completions every N steps (0 = never). */
  sampleEvery?: number;
  samplesPerLog?: number;
  outDir?: string;
  ckptEvery?: number;
  resume?: boolean;
  eosId?: number;
  /** Prompt template (default: question + "\n", the phase-1 layout). */
  prompt?: (question: string) => string;
  /** Stop a completion once its `#### answer` line is complete (default true). */
  stopAtAnswer?: boolean;
  log?: (rec: Record<string, unknown>) => void;
  shouldStop?: () => boolean;
}

export interface GrpoStepRecord {
  type: 'step';
  step: number;
  reward: number;
  accuracy: number;
  formatRate: number;
  latentsPerAnswer: number;
  spansPerAnswer: number;
  /** Fraction of start decisions that opened a span; of end decisions that closed one. */
  startRate: number;
  endRate: number;
  completionTokens: number;
  /** Mean token-level k3 KL to the reference (0 when beta = 0). */
  kl: number;
  /** Fraction of (action, epoch) terms on the clipped branch. */
  clipFrac: number;
  zeroVarianceGroups: number;
  groups: number;
  /** The objective (1/N) sum(-J + beta KL) at the first update. */
  loss: number;
  /** Every epoch's loss (the values resume-equivalence compares). */
  losses: number[];
  gradNorm: number;
  policyActions: number;
  tokPerSec: number;
  genSec: number;
  trainSec: number;
  /** Mean |sampled logp - replayed logp| of text tokens (temperature 1, topP 1 only): KV-cache vs replay agreement. */
  samplerMismatch?: number;
}

interface Scored {
  task: Task;
  comp: Completion;
  score: ShapedReward;
}

/** What every epoch of one update shares: the batch, its advantages and normaliser, and the per-completion log-probs. */
interface UpdateBatch {
  comps: Completion[];
  adv: Float64Array;
  /** Policy actions in the loss (token-level normaliser). */
  N: number;
  /** Completions that get a replay (non-zero gradient). */
  active: number[];
  /** The heads being trained (null: not trained, or absent). */
  heads: { start: LogisticHead | null; end: LogisticHead | null };
  wantHidden: boolean;
  /** Reference (beta > 0) and old (first replay of the batch) log-probs, per completion index. */
  ref: { tok: Map<number, Float64Array>; dec: Map<number, number[]> };
  old: { tok: Map<number, Float64Array>; dec: Map<number, number[]> };
}

/** Head gradients of one epoch, [w..., b] per trained head. */
type HeadGrads = { start: Float64Array | null; end: Float64Array | null };

/** Running sums of one update: lossSum per epoch (reset by update), the rest over every epoch. */
interface UpdateTally {
  lossSum: number;
  clipped: number;
  terms: number;
  klSum: number;
  klN: number;
  mismatch: number;
  mismatchN: number;
}

export class GrpoTrainer {
  readonly opt: AdamW;
  readonly startHead: LogisticHead | null;
  readonly endHead: LogisticHead | null;
  /** Host Adam over each trained head's [w..., b]. */
  readonly startOpt: HostAdam | null;
  readonly endOpt: HostAdam | null;
  step = 0;
  readonly records: GrpoStepRecord[] = [];
  /** The epoch cursor over the tasks, on its own stream: the data order never depends on how many numbers sampling drew. */
  private data: DataCursor;
  private sampleRng: Rng;
  private reference: Qwen2 | null;
  private refHeads: { start: LogisticHead | null; end: LogisticHead | null } = { start: null, end: null };
  private initialised = false;
  /** The run's latent feedback (options.feedback, or the resumed checkpoint's). */
  private feedbackSpec: FeedbackSpec;

  constructor(
    readonly model: Qwen2,
    readonly tok: TokenizerLike,
    readonly tasks: Task[],
    readonly check: Checker,
    readonly o: GrpoOptions,
    heads: { start?: LogisticHead | null; end?: LogisticHead | null } = {},
    reference: Qwen2 | null = null,
  ) {
    if (tasks.length === 0) throw new Error('rl: no tasks');
    if (o.group < 2) throw new Error(`rl: group size must be >= 2 (advantages are relative within a group), got ${o.group}`);
    if (o.ppoEpochs < 1) throw new Error(`rl: ppoEpochs must be >= 1, got ${o.ppoEpochs}`);
    // a feedback set on the model by hand would be lost to the reference and the checkpoints: it must be named
    if (!o.feedback && model.feedback.name !== 'identity')
      throw new Error(
        `rl: the model feeds latents back with '${model.feedback.name}' feedback; pass it as options.feedback, so that the reference model and the checkpoints use it too`,
      );
    this.feedbackSpec = o.feedback ?? IDENTITY_FEEDBACK;
    installFeedback(model, this.feedbackSpec, 'rl: the policy model');
    if (reference) installFeedback(reference, this.feedbackSpec, 'rl: the reference model');
    // two-trunk: only the latent trunk and the markers learn; full: everything
    if (model.twoTrunk) model.setTrainable((n) => n.startsWith(LATENT_PREFIX));
    else model.setTrainable(() => true);
    if (o.condition !== 'none' && !model.params.has(LATENT_EMBEDDINGS)) {
      // a plain model: marker/pause rows start at the mean token embedding (filled in init())
      model.addParam(LATENT_EMBEDDINGS, [extraRows(o.maxLatents), model.H]);
      this.needsMarkers = true;
    }
    this.opt = new AdamW(model, { lr: o.lr, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, clipNorm: 1, ...o.adamw });
    const useHeads = o.condition !== 'none';
    const fresh = (name: string, p: number) => {
      const h = new LogisticHead(model.H, name);
      h.b = logit(p);
      return h;
    };
    this.startHead = useHeads ? (heads.start ?? fresh('start', o.freshStartProb ?? 0.02)) : null;
    this.endHead = useHeads && o.condition === 'latent' ? (heads.end ?? fresh('end', o.freshEndProb ?? 0.25)) : null;
    const trainHeads = o.trainHeads ?? useHeads;
    this.startOpt = trainHeads && this.startHead ? new HostAdam(model.H + 1, o.headLr ?? 1e-3) : null;
    this.endOpt = trainHeads && this.endHead ? new HostAdam(model.H + 1, o.headLr ?? 1e-3) : null;
    for (const h of [this.startHead, this.endHead])
      if (h && h.dim !== model.H) throw new Error(`rl: head '${h.name}' has dim ${h.dim}, the model's hidden size is ${model.H}`);
    this.reference = reference;
    this.data = new DataCursor(tasks.length, new Rng(o.seed).fork('rl-data'));
    this.sampleRng = new Rng(o.seed).fork('rl-sample');
  }
  private needsMarkers = false;

  private get policy(): DecodeOptions {
    const { condition, maxNewTokens, temperature, topP, maxLatents, latentBudget, latentsPerSpan, eosId, stopAtAnswer } = this.o;
    return {
      condition,
      startHead: this.startHead,
      endHead: this.endHead,
      maxNewTokens,
      temperature,
      topP: topP ?? 1,
      maxLatents,
      latentBudget,
      latentsPerSpan,
      eosId,
      stop: stopAtAnswer === false ? undefined : (t) => /(^|\n)#### [^\n]*\n$/.test(this.tok.decode(t.slice(-24))),
    };
  }

  /** Marker init, reference snapshot (beta > 0 only). Idempotent. */
  async init(): Promise<void> {
    if (this.initialised) return;
    const m = this.model;
    if (this.needsMarkers) {
      await fillMarkerEmbeddings(m, { kind: 'mean' });
      this.needsMarkers = false;
    }
    if (this.o.beta > 0) {
      if (!this.reference) {
        if (this.step > 0) throw new Error('rl: resuming with beta > 0 needs the reference (initial) model: pass it to GrpoTrainer');
        const t = await m.exportTensors();
        this.reference = Qwen2.fromTensors(m.be, m.config, new Map([...t].map(([k, v]) => [k, v.data])), 'reference');
        this.reference.twoTrunk = m.twoTrunk;
        this.reference.setTrainable(() => false);
        installFeedback(this.reference, this.feedbackSpec, 'rl: the reference model');
      }
      if (!this.refHeads.start && this.startHead) this.refHeads.start = LogisticHead.fromJSON(this.startHead.toJSON());
      if (!this.refHeads.end && this.endHead) this.refHeads.end = LogisticHead.fromJSON(this.endHead.toJSON());
    }
    this.initialised = true;
  }

  private nextTasks(): Task[] {
    return this.data.take(this.o.questionsPerStep).map((i) => this.tasks[i]);
  }

  /** Samples and grades Q groups (exposed for evaluation and tests). */
  async sample(tasks: Task[], G = this.o.group): Promise<Scored[]> {
    await this.init();
    const out: Scored[] = [];
    const prompt = this.o.prompt ?? ((q: string) => q + '\n');
    // every question's group in one decode (B = Q x G, each question at its own position: sampleGroups); the
    // draws run over the rows in order at each position, so a step's samples are a fixed function of the stream
    const groups = await sampleGroups(
      this.model,
      tasks.map((task) => Array.from(this.tok.encode(prompt(task.question)), Number)),
      G,
      this.policy,
      this.sampleRng,
    );
    for (const [i, task] of tasks.entries())
      for (const comp of groups[i])
        out.push({ task, comp, score: shapeReward(this.check, this.tok.decode(comp.tokens), task.gold, comp.latents, this.o.rewards) });
    return out;
  }

  /**
   * Held-out accuracy: one completion per task, on its own random stream (so evaluating never changes the training
   * trajectory). temperature 0 = greedy text; the start/end decisions are still sampled from the heads.
   */
  async evaluate(tasks: Task[], o: { temperature?: number; seed?: number } = {}) {
    await this.init();
    const rng = new Rng(this.o.seed).fork(`rl-eval/${o.seed ?? this.step}`);
    const prompt = this.o.prompt ?? ((q: string) => q + '\n');
    const policy = { ...this.policy, temperature: o.temperature ?? 0 };
    let correct = 0,
      format = 0,
      latents = 0,
      reward = 0;
    const samples: { question: string; gold: string; text: string; correct: number; latents: number }[] = [];
    // EVAL_BATCH questions decoded together; Ctrl-C is checked between and inside batches
    const answers: Completion[] = [];
    for (let i = 0; i < tasks.length; i += EVAL_BATCH) {
      if (this.o.shouldStop?.()) throw new EvalInterrupted();
      const batch = tasks.slice(i, i + EVAL_BATCH);
      const groups = await interruptibleDecode(this.o.shouldStop, (interrupt) =>
        sampleGroups(
          this.model,
          batch.map((task) => Array.from(this.tok.encode(prompt(task.question)), Number)),
          1,
          { ...policy, interrupt },
          rng,
        ),
      );
      answers.push(...groups.map(([c]) => c));
    }
    for (const [i, task] of tasks.entries()) {
      const c = answers[i];
      const s = shapeReward(this.check, this.tok.decode(c.tokens), task.gold, c.latents, this.o.rewards);
      (correct += s.correct), (format += s.format), (latents += c.latents), (reward += s.reward);
      if (samples.length < 4)
        samples.push({
          question: task.question,
          gold: task.gold,
          text: markedText(c, (t) => this.tok.decode(t)),
          correct: s.correct,
          latents: c.latents,
        });
    }
    const n = Math.max(1, tasks.length);
    return {
      type: 'eval' as const,
      step: this.step,
      accuracy: correct / n,
      formatRate: format / n,
      latentsPerAnswer: latents / n,
      reward: reward / n,
      n: tasks.length,
      samples,
    };
  }

  /**
   * Chunks of completions that share one replay forward. Text-only completions batch perfectly (one segment).
   * Completions with latent spans share forwards with aligned segments where the model has them
   * (Qwen2.alignsSegments: each completion cut at its own latents); elsewhere such a completion replays alone, because in a batch every
   * row's latent positions would cut the segments of every other row, which costs more than it saves (measured on
   * the WASM backend before aligned segments: ~2x slower at G = 8).
   */
  private chunks(idx: number[], comps: Completion[]): number[][] {
    const mb = Math.max(1, this.o.microBatch ?? this.o.group);
    const out: number[][] = [];
    const together = this.model.alignsSegments;
    const plain = idx.filter((j) => together || comps[j].spans.length === 0),
      spans = idx.filter((j) => !together && comps[j].spans.length > 0);
    for (let i = 0; i < plain.length; i += mb) {
      const c = plain.slice(i, i + mb);
      if (
        canBatch(
          this.model,
          c.map((j) => comps[j]),
        )
      )
        out.push(c);
      else for (const j of c) out.push([j]);
    }
    for (const j of spans) out.push([j]);
    return out;
  }

  /**
   * One GRPO update on already-sampled, graded completions (the part tests check against finite differences).
   * Returns per-epoch losses and statistics.
   */
  async update(scored: Scored[], G = this.o.group) {
    await this.init();
    const o = this.o;
    const comps = scored.map((s) => s.comp);
    const ga = groupAdvantages(
      scored.map((s) => s.score.reward),
      G,
      { eps: o.advEps, scale: o.scaleRewards },
    );
    const included = comps.map((_, i) => !(o.filterZeroVariance && ga.zeroVariance[Math.floor(i / G)]));
    const heads = { start: this.startOpt ? this.startHead : null, end: this.endOpt ? this.endHead : null };
    const isTrained = (a: Completion['actions'][number]) => a.type === 'token' || (a.type === 'start' ? !!heads.start : !!heads.end);
    let N = 0;
    comps.forEach((c, i) => {
      if (included[i]) for (const a of c.actions) if (isTrained(a)) N++;
    });
    // completions whose every action has zero gradient (A = 0 and no KL) need no replay
    const active = comps.map((_, i) => i).filter((i) => included[i] && (ga.adv[i] !== 0 || o.beta > 0));
    const b: UpdateBatch = {
      comps,
      adv: ga.adv,
      N,
      active,
      heads,
      wantHidden: !!(heads.start || heads.end),
      ref: { tok: new Map(), dec: new Map() },
      old: { tok: new Map(), dec: new Map() },
    };
    await this.referenceLogps(b);
    const tally: UpdateTally = { lossSum: 0, clipped: 0, terms: 0, klSum: 0, klN: 0, mismatch: 0, mismatchN: 0 };
    const losses: number[] = [];
    let gradNorm = 0;
    for (let epoch = 0; epoch < o.ppoEpochs; epoch++) {
      this.model.zeroGrads();
      const grads = {
        start: heads.start ? new Float64Array(this.model.H + 1) : null,
        end: heads.end ? new Float64Array(this.model.H + 1) : null,
      };
      tally.lossSum = 0;
      for (const ch of this.chunks(active, comps)) await this.chunkGradients(b, ch, epoch, grads, tally);
      losses.push(tally.lossSum / Math.max(1, N));
      // nothing to learn from (every group zero-variance, no KL): no step, so Adam momentum does not move the weights
      if (active.length === 0) break;
      const norm = await this.opt.update(o.lr);
      if (epoch === 0) gradNorm = norm;
      if (heads.start && grads.start) stepHead(this.startOpt!, heads.start, grads.start);
      if (heads.end && grads.end) stepHead(this.endOpt!, heads.end, grads.end);
    }
    const t = tally;
    return {
      losses,
      gradNorm,
      N,
      advantages: ga,
      clipFrac: t.terms ? t.clipped / t.terms : 0,
      kl: t.klN ? t.klSum / t.klN : 0,
      samplerMismatch: t.mismatchN ? t.mismatch / t.mismatchN : undefined,
      replayed: active.length,
    };
  }

  /** The reference policy's log-probs of every action (beta > 0 only): once per batch, before any update. */
  private async referenceLogps(b: UpdateBatch): Promise<void> {
    if (!(this.o.beta > 0 && this.reference)) return;
    for (const ch of this.chunks(b.active, b.comps)) {
      const r = await replay(
        this.reference,
        ch.map((j) => b.comps[j]),
        { wantHidden: b.wantHidden },
      );
      ch.forEach((j, k) => {
        b.ref.tok.set(j, r.tokenLogp[k]);
        b.ref.dec.set(j, decisionLogps(b.comps[j], r.decisionHidden[k], this.refHeads));
      });
    }
  }

  /**
   * One chunk of one epoch: the label weights (from a no-grad replay when r != 1 or there is a KL term), the
   * weighted replay with its backward (model gradients accumulate), then the loss terms and head gradients.
   */
  private async chunkGradients(b: UpdateBatch, ch: number[], epoch: number, grads: HeadGrads, tally: UpdateTally): Promise<void> {
    const o = this.o,
      beta = o.beta,
      eps = o.eps,
      epsHigh = o.epsHigh ?? o.eps;
    const cs = ch.map((j) => b.comps[j]);
    // current log-probs before the update: needed for the weights unless r = 1 and there is no KL
    const pre = beta > 0 || epoch > 0 ? await replay(this.model, cs) : null;
    const weights = ch.map((j, k) => {
      const A = b.adv[j];
      const cur = pre ? pre.tokenLogp[k] : null;
      const old = b.old.tok.get(j) ?? cur;
      const ref = b.ref.tok.get(j);
      const n = b.comps[j].actions.filter((a) => a.type === 'token').length;
      return Float64Array.from({ length: n }, (_, t) => {
        if (!cur) return A; // r = 1, no KL
        return policyWeight(clippedTerm(cur[t], old![t], A, eps, epsHigh), beta, cur[t], ref?.[t]);
      });
    });
    const r = await replay(this.model, cs, { grad: true, lossScale: 1 / Math.max(1, b.N), weights, wantHidden: b.wantHidden });
    this.model.backward();
    ch.forEach((j, k) => {
      if (epoch === 0) b.old.tok.set(j, pre ? pre.tokenLogp[k] : r.tokenLogp[k]);
      this.tokenTerms(b, j, r.tokenLogp[k], epoch, tally);
      this.headGradients(b, j, r.decisionHidden[k], epoch, grads, tally);
    });
  }

  /** Loss, clipping and KL tallies of one completion's token actions; at epoch 0 also the sampler-vs-replay gap. */
  private tokenTerms(b: UpdateBatch, j: number, cur: Float64Array, epoch: number, tally: UpdateTally): void {
    const o = this.o,
      beta = o.beta,
      eps = o.eps,
      epsHigh = o.epsHigh ?? o.eps;
    const A = b.adv[j],
      old = b.old.tok.get(j)!,
      ref = b.ref.tok.get(j);
    for (let t = 0; t < cur.length; t++) {
      const term = clippedTerm(cur[t], old[t], A, eps, epsHigh);
      tally.lossSum += actionLoss(term, beta, cur[t], ref?.[t]);
      tally.clipped += term.clipped ? 1 : 0;
      tally.terms++;
      if (ref && epoch === 0) (tally.klSum += k3(cur[t], ref[t]).kl), tally.klN++;
    }
    if (epoch === 0 && o.temperature === 1 && (o.topP ?? 1) >= 1) {
      let t = 0;
      for (const a of b.comps[j].actions) if (a.type === 'token') (tally.mismatch += Math.abs(a.logp - cur[t++])), tally.mismatchN++;
    }
  }

  /** The heads: same objective on log p(decision), gradient through the logit only (hidden states are detached). */
  private headGradients(b: UpdateBatch, j: number, hs: Float32Array[], epoch: number, grads: HeadGrads, tally: UpdateTally): void {
    const o = this.o,
      beta = o.beta,
      eps = o.eps,
      epsHigh = o.epsHigh ?? o.eps;
    const A = b.adv[j];
    const dec = b.comps[j].actions.filter((a) => a.type !== 'token');
    const curDec = decisionLogps(b.comps[j], hs, this.heads);
    if (epoch === 0) b.old.dec.set(j, curDec);
    const oldD = b.old.dec.get(j)!,
      refD = b.ref.dec.get(j);
    dec.forEach((a, d) => {
      const head = a.type === 'start' ? b.heads.start : b.heads.end;
      const g = a.type === 'start' ? grads.start : grads.end;
      if (!head || !g) return;
      const term = clippedTerm(curDec[d], oldD[d], A, eps, epsHigh);
      const w = policyWeight(term, beta, curDec[d], refD?.[d]);
      tally.lossSum += actionLoss(term, beta, curDec[d], refD?.[d]);
      tally.clipped += term.clipped ? 1 : 0;
      tally.terms++;
      const yes = a.type === 'start' ? a.take : a.stop;
      // dL/dz = -(1/N) w (y - p)
      const dz = (-w * ((yes ? 1 : 0) - sigmoid(head.logit(hs[d])))) / Math.max(1, b.N);
      for (let i = 0; i < head.dim; i++) g[i] += dz * hs[d][i];
      g[head.dim] += dz;
    });
  }

  private get heads() {
    return { start: this.startHead, end: this.endHead };
  }

  async trainStep(): Promise<GrpoStepRecord> {
    await this.init();
    const t0 = performance.now();
    const tasks = this.nextTasks();
    const scored = await this.sample(tasks);
    const t1 = performance.now();
    const u = await this.update(scored);
    const t2 = performance.now();
    this.step++;
    const n = scored.length,
      mean = (f: (s: Scored) => number) => scored.reduce((a, s) => a + f(s), 0) / Math.max(1, n);
    let starts = 0,
      takes = 0,
      ends = 0,
      stops = 0;
    for (const s of scored)
      for (const a of s.comp.actions) {
        if (a.type === 'start') starts++, (takes += a.take ? 1 : 0);
        if (a.type === 'end') ends++, (stops += a.stop ? 1 : 0);
      }
    const tokens = scored.reduce((a, s) => a + s.comp.tokens.length, 0);
    const rec: GrpoStepRecord = {
      type: 'step',
      step: this.step,
      reward: mean((s) => s.score.reward),
      accuracy: mean((s) => s.score.correct),
      formatRate: mean((s) => s.score.format),
      latentsPerAnswer: mean((s) => s.comp.latents),
      spansPerAnswer: mean((s) => s.comp.spans.length),
      startRate: starts ? takes / starts : 0,
      endRate: ends ? stops / ends : 0,
      completionTokens: tokens / Math.max(1, n),
      kl: u.kl,
      clipFrac: u.clipFrac,
      zeroVarianceGroups: u.advantages.zeroVariance.filter(Boolean).length,
      groups: tasks.length,
      loss: u.losses[0],
      losses: u.losses,
      gradNorm: u.gradNorm,
      policyActions: u.N,
      tokPerSec: tokens / ((t2 - t0) / 1000),
      genSec: (t1 - t0) / 1000,
      trainSec: (t2 - t1) / 1000,
    };
    if (u.samplerMismatch !== undefined) rec.samplerMismatch = u.samplerMismatch;
    stopOnNonFiniteLoss(rec.loss, (l) => `rl step ${this.step}: loss is ${l}; stopping (the last checkpoint is kept)`);
    this.records.push(rec);
    this.o.log?.(rec as unknown as Record<string, unknown>);
    const se = this.o.sampleEvery ?? 0;
    if (se > 0 && (due(this.step, se) || this.step === 1)) {
      const k = this.o.samplesPerLog ?? 4;
      this.o.log?.({
        type: 'samples',
        step: this.step,
        samples: scored.slice(0, k).map((s) => ({
          question: s.task.question,
          gold: s.task.gold,
          text: markedText(s.comp, (t) => this.tok.decode(t)),
          reward: s.score.reward,
          correct: s.score.correct,
          extracted: s.score.extracted,
          latents: s.comp.latents,
          finish: s.comp.finish,
        })),
      });
    }
    return rec;
  }

  /** Entries the caller adds to every checkpoint's state.json (the CLI: record count, options for --resume checks). */
  extraState?: () => RlRunState;

  checkpointState(): RlCheckpointState {
    return {
      version: CHECKPOINT_VERSION,
      kind: 'rl',
      step: this.step,
      rng: { data: this.data.rng.state(), sample: this.sampleRng.state() },
      order: this.data.order,
      cursor: this.data.cursor,
      epoch: this.data.epoch,
      heads: { start: this.startHead?.toJSON() ?? null, end: this.endHead?.toJSON() ?? null },
      headOpt: { start: this.startOpt?.toJSON() ?? null, end: this.endOpt?.toJSON() ?? null },
      refHeads: { start: this.refHeads.start?.toJSON() ?? null, end: this.refHeads.end?.toJSON() ?? null },
      options: {
        condition: this.o.condition,
        group: this.o.group,
        seed: this.o.seed,
        beta: this.o.beta,
        mode: this.model.twoTrunk ? 'two-trunk' : 'full',
      },
      feedback: this.feedbackSpec,
      ...this.extraState?.(),
    };
  }

  async save(dir: string): Promise<void> {
    await saveCheckpoint(dir, this.model, this.opt, this.checkpointState());
  }

  /** The run's latent feedback (options.feedback, or the restored checkpoint's). */
  get feedback(): FeedbackSpec {
    return this.feedbackSpec;
  }

  /**
   * Restores an RL checkpoint written by save(); false if there is none. The checkpoint's feedback is the run's and
   * is installed in the policy and the reference (an RL checkpoint without the field ran identity); one whose
   * feedback cannot be restored is refused before any weight is loaded.
   */
  async restore(dir: string): Promise<boolean> {
    const saved = await readCheckpointState(dir);
    if (!saved) return false;
    if (saved.state.kind !== 'rl')
      throw new Error(
        `${dir}: not an RL checkpoint (state.json has no "kind": "rl"); to start RL from a phase-1 checkpoint pass it as the initial model`,
      );
    const feedback = saved.state.feedback ?? IDENTITY_FEEDBACK,
      weights = `${saved.dir}/model.safetensors`;
    requireFeedbackTensors(feedback, await safetensorsSizes(weights), this.model.H, weights);
    // the gate must already be a trained parameter of this model: the optimizer was made with the model's tensors
    const recorded = `${saved.dir}/state.json records ${feedbackLabel(feedback)} feedback`;
    installFeedback(this.model, feedback, `${recorded}; the policy model`);
    if (this.reference) installFeedback(this.reference, feedback, `${recorded}; the reference model`);
    this.feedbackSpec = feedback;
    const st = await loadCheckpoint(saved.dir, this.model, this.opt);
    if (st?.kind !== 'rl') throw new Error(`${saved.dir}: the checkpoint changed while it was being read`);
    this.step = st.step;
    this.data.restore({ rng: Rng.fromState(st.rng.data), order: st.order, cursor: st.cursor, epoch: st.epoch });
    this.sampleRng = Rng.fromState(st.rng.sample);
    const setHead = (h: LogisticHead | null, j: HeadWeights | null) => {
      if (!h || !j) return;
      const x = LogisticHead.fromJSON(j);
      h.w.set(x.w), (h.b = x.b);
    };
    setHead(this.startHead, st.heads.start), setHead(this.endHead, st.heads.end);
    const ho = st.headOpt;
    if (ho?.start && this.startOpt) this.startOpt.load(ho.start);
    if (ho?.end && this.endOpt) this.endOpt.load(ho.end);
    const rh = st.refHeads;
    if (rh?.start) this.refHeads.start = LogisticHead.fromJSON(rh.start);
    if (rh?.end) this.refHeads.end = LogisticHead.fromJSON(rh.end);
    this.needsMarkers = false;
    return true;
  }

  /** The whole run: resume if asked, train with periodic checkpoints. */
  async run(): Promise<{ records: GrpoStepRecord[]; stoppedEarly: boolean }> {
    const o = this.o;
    const ckptDir = o.outDir ? `${o.outDir}/checkpoint` : undefined;
    if (o.resume && ckptDir) await this.restore(ckptDir);
    await this.init();
    let stoppedEarly = false;
    while (this.step < o.steps) {
      await this.trainStep();
      if (ckptDir && due(this.step, o.ckptEvery)) await this.save(ckptDir);
      if (o.shouldStop?.()) {
        stoppedEarly = true;
        break;
      }
    }
    if (ckptDir) await this.save(ckptDir);
    return { records: this.records, stoppedEarly };
  }

  destroy(): void {
    this.reference?.destroy();
    this.opt.destroy();
  }
}

/** log p of each decision action of a completion under the given heads, on the given hidden states. */
function decisionLogps(c: Completion, hs: Float32Array[], heads: { start: LogisticHead | null; end: LogisticHead | null }): number[] {
  const out: number[] = [];
  let d = 0;
  for (const a of c.actions) {
    if (a.type === 'token') continue;
    const head = a.type === 'start' ? heads.start : heads.end;
    const h = hs[d++];
    if (!head || !h) {
      out.push(a.logp);
      continue;
    }
    const z = head.logit(h),
      yes = a.type === 'start' ? a.take : a.stop;
    // log sigmoid(z) / log(1 - sigmoid(z)) without overflow
    out.push(yes ? -Math.log1p(Math.exp(-z)) : -Math.log1p(Math.exp(z)));
  }
  return out;
}

/** One host Adam step on a head's [w..., b] from its gradient in the same layout. */
function stepHead(opt: HostAdam, head: LogisticHead, grad: Float64Array): void {
  opt.step(grad, (i, d) => {
    if (i < head.dim) head.w[i] -= d;
    else head.b -= d;
  });
}
