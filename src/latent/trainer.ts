// Phase 1: supervised training with latents at the calculator breakpoints.
// One harness for every condition (latent / pause / none) and both experiments (full fine-tune, two-trunk),
// so comparisons share data, order and budget. Each step: gradient accumulation over `batchSize` sequences
// (each its own forward: latent layouts differ per row), one AdamW update; every `evalEvery` steps the usage
// diagnostics; every `ckptEvery` steps an atomic checkpoint that `resume` continues bit-for-bit.
import { Kind, scaledFeedback, type Qwen2 } from '../model/qwen2.js';
import { addGateParams, DEFAULT_GATE_INIT, gatedFeedback, gateValues } from '../model/gated-feedback.js';
import { AdamW, type AdamWConfig } from '../train/adamw.js';
import { Rng } from '../data/rng.js';
import { LogisticHead, type HeadMetrics } from './heads.js';
import { buildSequence, extraRows, type Condition, type LatentSequence, type SplitRow, type TextEncoder_ } from './sequence.js';
import { batchGroups, forwardEach, packSequences, BATCH_ACTIVATION_BUDGET } from './batch.js';
import { latentUsage, LatentDecoder, collectLatents, type UsageReport, type DecodedLatent } from './diagnostics.js';
import { generateMany, type Decoder } from '../generation/generate.js';
import { CHECKPOINT_VERSION, loadCheckpoint, saveCheckpoint, type Phase1CheckpointState } from './checkpoint.js';
import { EvalInterrupted, interruptibleDecode, yieldToEventLoop } from '../train/signals.js';
import {
  buildCurriculumSequence,
  finalStage,
  mixedStage,
  scheduleStage,
  type CurriculumSequence,
  type SubstepRow,
  type SubstepSchedule,
} from './curriculum.js';
import { auxLabelWeights, distillationGrad, type DistillTarget } from './objectives.js';
import { breakpointStats } from './serial-eval.js';
import { DataCursor, due, fillMarkerEmbeddings, stopOnNonFiniteLoss, type MarkerInit } from '../train/skeleton.js';
import { LATENT_EMBEDDINGS, TOKEN_EMBEDDINGS } from '../model/latent-params.js';

/**
 * Held-out questions an evaluation decodes together (generateMany): a batch costs one forward per position instead of
 * one per question and position (24 measured ~15% faster than 8 on the default job's WASM evaluation, and GPUs want
 * rows); Ctrl-C is checked every few positions inside a batch (DecodeOptions.interrupt), so it still stops promptly.
 */
const GEN_BATCH = 32;

export interface Phase1Options {
  mode: 'full' | 'two-trunk';
  condition: Condition;
  /** Latents per breakpoint. */
  k: number;
  steps: number;
  batchSize: number;
  lr: number;
  warmupSteps?: number;
  adamw?: Partial<AdamWConfig>;
  /** Coconut curriculum: stage s (0-based) puts latents at the first s breakpoints; stages advance every stepsPerStage. */
  curriculumStepsPerStage?: number;
  maxLatents?: number;
  /**
   * How a latent's hidden state enters as the next input: 'identity' (Coconut), 'scaled' (multiplied by
   * typical-embedding-norm / typical-hidden-norm, measured once at the start) or 'gated' (HRPO-style: a learned gate
   * mixes the embedding of the model's own next-token distribution with the hidden state; src/model/gated-feedback.ts).
   */
  feedback?: 'identity' | 'scaled' | 'gated';
  /** Gated feedback: temperature of the next-token distribution whose embedding mixture is fed back (default 1). */
  feedbackTemperature?: number;
  /** Gated feedback: the gate's initial value (default 0.95: mostly the embedding mixture). */
  gateInit?: number;
  /** Weight of the latent-supervision loss (0 = off): each latent's output predicts the next result token. */
  latentSupervision?: number;
  /**
   * Sub-step curriculum inside each breakpoint (rows must be SubstepRow): scratch text, or its staged replacement by
   * `condition`'s slots (latent = internalize, pause = pause on the same schedule). See curriculum.ts.
   */
  substeps?: SubstepSchedule;
  /** How the marker (and pause) embeddings start: a copy of a token's embedding, or the mean embedding. */
  markerInit?: MarkerInit;
  /**
   * Run the sequences of a step in shared forwards (src/latent/batch.ts; exact up to float summation order) instead
   * of one forward each. Default: on where the backend takes per-sequence query starts (`queryStarts`: every
   * built-in backend), off elsewhere. With them the forwards use aligned segments (each sequence cut at its own
   * latents, the j-th segments of all sequences in one pass, no padding rows): on the default job ~7 passes of 8
   * sequences per step instead of ~68 one-sequence passes, measured faster per step on every backend (README,
   * "Batched phase-1 steps": WASM 2 threads 2.0x, 1 thread 1.6x, WebGPU 1.8x simple / 2.3x tiled kernels on a
   * software adapter, gpu.js 1.2x). Without them a shared forward cuts every sequence at the union of the latent
   * positions (~42 passes, ~24% padding rows), which measured slower than one forward each, hence off.
   */
  batchForward?: boolean;
  evalEvery: number;
  evalRows: number;
  /** Held-out rows generated with the reward checker at each eval (0 = only at the end). */
  genRows: number;
  genEvery?: number;
  /** Also answer the held-out problems with latents switched off (default true; doubles generation time). */
  genWithoutLatents?: boolean;
  maxNewTokens?: number;
  ckptEvery?: number;
  outDir?: string;
  resume?: boolean;
  seed: number;
  eosId?: number;
  maxLen?: number;
  /** Called with every JSON record (step and eval lines). */
  log?: (rec: Record<string, unknown>) => void;
  onStep?: (step: number, rec: StepRecord) => void;
  /** Checked between steps (and between generated answers in an eval): true stops after saving a checkpoint (Ctrl-C). */
  shouldStop?: () => boolean;
  /** Wraps every checkpoint write (e.g. so a second Ctrl-C waits for it: src/train/signals.ts). */
  guardSave?: <T>(save: () => Promise<T>) => Promise<T>;
  /** Extra entries (model, data, backend, ...) stored with the trajectory options in the checkpoint, for --resume checks. */
  runInfo?: Record<string, unknown>;
  reward?: (completion: string, gold: string) => { reward: number };
  tokenText?: (id: number) => string;
  /** Restrict latent decoding to these ids (e.g. the restricted vocabulary of a small model). */
  decodeIds?: ArrayLike<number>;
}

export interface StepRecord {
  type: 'step';
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  tokens: number;
  tokPerSec: number;
  stage: number;
  startLoss?: number;
  endLoss?: number;
  /** Hidden-state distillation loss (weighted, batch mean), when on. */
  distillLoss?: number;
}

export interface EvalRecord {
  type: 'eval';
  step: number;
  testLoss: number;
  postBreakLoss: number;
  usage: UsageReport;
  start?: HeadMetrics;
  end?: HeadMetrics;
  accuracy?: number;
  accuracyNoLatents?: number;
  /** Held-out problems graded for `accuracy` (the n of its binomial interval). */
  accuracyRows?: number;
  /** Mean input positions per generated answer with latents on (text tokens + latents + span markers): the answer's compute. */
  positionsPerAnswer?: number;
  /** Mean latents per generated answer with latents on. */
  latentsPerAnswer?: number;
  samples?: { question: string; text: string; gold: string; reward: number }[];
  decoded?: { example: number; span: number; latent: number; d: DecodedLatent }[];
  typicalEmbeddingNorm?: number;
  /** Teacher-forced accuracy on the result tokens after each breakpoint (digits of the calculator result). */
  resultTokenAccuracy?: number;
  /** Gated feedback: the mean gate value (share of the embedding mixture) over the held-out latents' inputs. */
  gateMean?: number;
  /** Share of breakpoints whose whole result is predicted right (teacher-forced, argmax). */
  resultExactAccuracy?: number;
  /** Mean positions between a breakpoint's text and its result (markers, slots, scratch text). */
  reasoningPositions?: number;
}

export interface Phase1Result {
  steps: StepRecord[];
  evals: EvalRecord[];
  startHead: LogisticHead;
  endHead: LogisticHead;
  stoppedEarly: boolean;
}

export class Phase1Trainer {
  readonly opt: AdamW;
  readonly startHead: LogisticHead;
  readonly endHead: LogisticHead;
  step = 0;
  /** The epoch cursor over the training rows (its own random stream, seeded by `seed`). */
  private data: DataCursor;
  readonly steps: StepRecord[] = [];
  readonly evals: EvalRecord[] = [];
  /** Records passed to `log` so far, this run and the runs it resumed (a resume truncates metrics.jsonl to it). */
  logged = 0;
  /** The scale of 'scaled' feedback, measured once at the start of the run (restored on resume, never re-measured). */
  private feedbackScale?: number;
  /** An evaluation was due at `step` but interrupted by Ctrl-C: the resumed run does it first. */
  private pendingEval = false;
  /** The step of the last checkpoint written (or restored) in this run, for error messages. */
  private savedStep?: number;

  constructor(
    readonly model: Qwen2,
    readonly tok: TextEncoder_ & Decoder,
    readonly train: SplitRow[],
    readonly test: SplitRow[],
    readonly o: Phase1Options,
  ) {
    if (train.length === 0) throw new Error('phase 1: no training rows');
    const maxLatents = o.maxLatents ?? 8;
    if (o.k > maxLatents) throw new Error(`phase 1: k=${o.k} exceeds maxLatents=${maxLatents}`);
    this.ensureMarkers(maxLatents);
    if (o.feedback === 'gated') {
      if (o.condition !== 'latent')
        throw new Error(`phase 1: --feedback gated mixes fed-back latents, and condition '${o.condition}' has none (use latents, k >= 1)`);
      // before the trainable set and the optimizer are made (a resumed checkpoint's values are uploaded over these)
      addGateParams(model, o.gateInit ?? DEFAULT_GATE_INIT);
    }
    // full: every weight and the marker/pause embeddings train; two-trunk: only `latent.*` (trunk copy + markers)
    if (o.mode === 'two-trunk') model.enableTwoTrunk();
    else model.setTrainable(() => true);
    this.opt = new AdamW(model, { lr: o.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, clipNorm: 1, ...o.adamw });
    this.startHead = new LogisticHead(model.H, 'start', 3e-3);
    this.endHead = new LogisticHead(model.H, 'end', 3e-3);
    this.data = new DataCursor(train.length, new Rng(o.seed));
  }

  private ensureMarkers(maxLatents: number) {
    const m = this.model;
    const E = extraRows(maxLatents);
    if (m.params.has(LATENT_EMBEDDINGS) && m.param(LATENT_EMBEDDINGS).size === E * m.H) return;
    // initialised synchronously from host copies of the embedding table is not possible on GPU backends;
    // filled in init() before the first step
    m.addParam(LATENT_EMBEDDINGS, [E, m.H]);
    this.needsMarkerInit = true;
  }
  private needsMarkerInit = false;

  /** Fills marker/pause embeddings (a token's embedding, or the mean embedding), as Coconut initialises from `<<`. */
  async init(): Promise<void> {
    if (this.o.feedback === 'scaled' && this.model.feedback.name === 'identity')
      this.model.feedback = scaledFeedback((this.feedbackScale ??= await this.measureScale()));
    if (this.o.feedback === 'gated' && this.model.feedback.name === 'identity')
      this.model.feedback = gatedFeedback({ temperature: this.o.feedbackTemperature ?? 1 });
    if (!this.needsMarkerInit) return;
    await fillMarkerEmbeddings(this.model, this.o.markerInit ?? { kind: 'mean' });
    this.needsMarkerInit = false;
  }

  /** The sequences of a step grouped into forwards: shared ones (batchForward) or one each. */
  private forwardGroups(seqs: LatentSequence[]): number[][] {
    const m = this.model;
    if (!(this.o.batchForward ?? m.be.queryStarts === true)) return seqs.map((_, i) => [i]);
    return batchGroups(seqs, Math.floor(BATCH_ACTIVATION_BUDGET / (m.H * m.L)), m.twoTrunk);
  }

  /** Typical token-embedding norm / typical final-hidden norm, over a few training rows. */
  private async measureScale(): Promise<number> {
    const m = this.model,
      H = m.H;
    const emb = (await m.be.read(m.param(TOKEN_EMBEDDINGS))) as Float32Array;
    let en = 0;
    const V = emb.length / H;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < H; i++) s += emb[v * H + i] ** 2;
      en += Math.sqrt(s) / V;
    }
    let hn = 0,
      n = 0;
    for (const row of this.train.slice(0, 4)) {
      const seq = buildSequence(row, this.tok, { condition: 'none', k: 0 });
      const r = await m.forward({ B: 1, T: seq.ids.length, ids: seq.ids }, { wantHidden: true });
      for (let t = 0; t < seq.ids.length; t++) {
        let s = 0;
        for (let i = 0; i < H; i++) s += r.hidden![t * H + i] ** 2;
        hn += Math.sqrt(s);
        n++;
      }
    }
    return en / (hn / n);
  }

  stage(step = this.step): number {
    if (this.o.substeps) return scheduleStage(this.o.substeps, step);
    const sps = this.o.curriculumStepsPerStage;
    return sps ? Math.floor(step / sps) : Infinity;
  }

  /** A training sequence; `forTraining` adds the latent-supervision targets (evaluation never has them). */
  sequence(row: SplitRow, stage = this.stage(), forTraining = false): LatentSequence {
    const supervise = forTraining && (this.o.latentSupervision ?? 0) > 0 && this.o.condition === 'latent';
    const sub = this.o.substeps;
    if (sub)
      return buildCurriculumSequence(row as SubstepRow, this.tok, {
        fill: this.o.condition === 'pause' ? 'pause' : 'latent',
        c: sub.c,
        stage,
        maxPause: this.o.maxLatents ?? 8,
        eosId: this.o.eosId,
        maxLen: this.o.maxLen,
        stepDecode: forTraining && (sub.stepDecode ?? 0) > 0,
      });
    return buildSequence(row, this.tok, {
      condition: this.o.condition,
      k: this.o.k,
      stage,
      eosId: this.o.eosId,
      maxLen: this.o.maxLen,
      superviseLatents: supervise,
    });
  }

  lrAt(step: number): number {
    const w = this.o.warmupSteps ?? 0;
    if (w && step <= w) return (this.o.lr * step) / w;
    // cosine to 10% of the peak
    const p = Math.min(1, (step - w) / Math.max(1, this.o.steps - w));
    return this.o.lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p)));
  }

  private nextBatch(): SplitRow[] {
    return this.data.take(this.o.batchSize).map((i) => this.train[i]);
  }

  /** Classifier examples from one forward's hidden states. */
  private headExamples(seq: LatentSequence, hidden: Float32Array) {
    const H = this.model.H;
    const sx: Float32Array[] = [],
      sy: number[] = [],
      ex: Float32Array[] = [],
      ey: number[] = [];
    const before = new Set(seq.beforeBreak);
    for (let t = 0; t < seq.ids.length; t++) {
      // start head: text positions inside the answer (labels present at t+1) — positive right before a breakpoint
      if (seq.kind[t] === Kind.Token && t + 1 < seq.ids.length && (seq.labels[t + 1] !== -100 || before.has(t))) {
        sx.push(hidden.slice(t * H, (t + 1) * H));
        sy.push(before.has(t) ? 1 : 0);
      }
    }
    for (const sp of seq.spans)
      sp.latents.forEach((p, j) => {
        ex.push(hidden.slice(p * H, (p + 1) * H));
        ey.push(j === sp.latents.length - 1 ? 1 : 0);
      });
    return { sx, sy, ex, ey };
  }

  async trainStep(): Promise<StepRecord> {
    await this.init();
    const t0 = performance.now();
    const rows = this.nextBatch();
    const stage = this.stage();
    const sub = this.o.substeps;
    if (sub?.resetOptimizer && this.step > 0 && stage !== this.stage(this.step - 1)) this.resetOptimizer();
    const finite = sub ? Math.max(1, sub.stages - 1) : 1;
    const seqs = rows.map((r, i) =>
      this.sequence(r, sub ? mixedStage(stage, sub.mix ?? 0, this.o.seed, this.step, i, finite) : stage, true),
    );
    const auxWeight = sub ? (sub.stepDecode ?? 0) : this.o.latentSupervision!;
    // the auxiliary latent targets are weighted separately and left out of the reported text loss
    const N = seqs.reduce((a, s) => a + s.labelCount - (s.auxLabels?.length ?? 0), 0);
    const teachers = sub?.distill ? await this.teacherTargets(rows, seqs) : undefined;
    const distillCount = teachers?.reduce((a, t) => a + t.length, 0) ?? 0;
    let distillLoss = 0;
    this.model.zeroGrads();
    let lossSum = 0,
      tokens = 0,
      sLoss = 0,
      eLoss = 0;
    const wantHidden = this.o.condition !== 'none';
    for (const group of this.forwardGroups(seqs)) {
      await yieldToEventLoop(); // lets a Ctrl-C be seen (and reported to wrappers like tsx's) within one forward
      const members = group.map((i) => seqs[i]);
      const weights = members.map((s) => (s.auxLabels ? auxLabelWeights(s.ids.length, s.auxLabels, auxWeight) : undefined));
      const { input, T } = packSequences(members, this.model.twoTrunk, weights);
      const targets = group.map((i) => teachers?.[i] ?? []);
      const r = await this.model.forward(input, {
        grad: true,
        lossScale: 1 / Math.max(1, N),
        wantHidden: wantHidden || targets.some((t) => t.length > 0),
        alignSegments: true,
      });
      const H = this.model.H;
      const hiddenOf = (b: number) => r.hidden!.subarray(b * T * H, (b * T + members[b].ids.length) * H);
      if (targets.some((t) => t.length > 0)) {
        const grad = new Float32Array(members.length * T * H);
        members.forEach((s, b) => {
          if (!targets[b].length) return;
          const d = distillationGrad(hiddenOf(b), H, s.ids.length, targets[b], sub!.distill!, distillCount);
          grad.set(d.grad, b * T * H);
          distillLoss += d.loss;
        });
        this.model.addHiddenGrad(grad);
      }
      this.model.backward();
      let aux = 0;
      members.forEach((s, b) => {
        for (const p of s.auxLabels ?? []) aux += r.lossAt![b * T + p];
      });
      lossSum += r.lossSum - aux;
      members.forEach((s, b) => {
        tokens += s.ids.length;
        if (!wantHidden && !targets[b].length) return; // as a one-sequence forward: heads train where it had hidden states
        const e = this.headExamples(s, hiddenOf(b));
        sLoss += this.startHead.step(e.sx, e.sy, 8);
        eLoss += this.endHead.step(e.ex, e.ey, 1);
      });
    }
    const loss = lossSum / Math.max(1, N);
    const stepNo = this.step + 1;
    stopOnNonFiniteLoss(
      loss,
      (l) =>
        `phase 1 step ${stepNo}: loss is ${l} (NaN/Inf); stopping, ${this.savedStep !== undefined ? `the checkpoint of step ${this.savedStep} is kept` : 'no checkpoint was written'}`,
    );
    const lr = this.lrAt(stepNo);
    const gradNorm = await this.opt.update(lr);
    this.step = stepNo;
    const dt = (performance.now() - t0) / 1000;
    const rec: StepRecord = {
      type: 'step',
      step: stepNo,
      loss,
      gradNorm,
      lr,
      tokens,
      tokPerSec: tokens / dt,
      stage: Number.isFinite(stage) ? stage : -1,
    };
    if (this.o.condition !== 'none') Object.assign(rec, { startLoss: sLoss / seqs.length, endLoss: eLoss / seqs.length });
    if (teachers) rec.distillLoss = distillLoss;
    this.steps.push(rec);
    this.emit(rec);
    return rec;
  }

  /** Diagnostics on held-out rows (always with every latent in place: the final stage). */
  async evaluate(withGeneration = true): Promise<EvalRecord> {
    await this.init();
    const rows = this.test.slice(0, this.o.evalRows);
    const seqs = rows.map((r) => this.sequence(r, this.o.substeps ? finalStage(this.o.substeps) : Infinity));
    const usage = await latentUsage(this.model, seqs);
    const rec: EvalRecord = {
      type: 'eval',
      step: this.step,
      testLoss: usage.normal.loss,
      postBreakLoss: usage.normal.postBreakLoss,
      usage,
      ...(await breakpointStats(this.model, this.tok, seqs)),
    };
    if (this.o.condition !== 'none') {
      const sx: Float32Array[] = [],
        sy: number[] = [],
        ex: Float32Array[] = [],
        ey: number[] = [];
      const hidden = await forwardEach(
        this.model,
        seqs.map((seq) => ({ seq })),
        { wantHidden: true, withLabels: false },
      );
      seqs.forEach((seq, i) => {
        const e = this.headExamples(seq, hidden[i].hidden!);
        sx.push(...e.sx), sy.push(...e.sy), ex.push(...e.ex), ey.push(...e.ey);
      });
      rec.start = this.startHead.evaluate(sx, sy);
      if (ex.length) rec.end = this.endHead.evaluate(ex, ey);
      // decode the latents of the first few held-out examples
      if (this.o.feedback === 'gated') {
        const lat = (await collectLatents(this.model, seqs)).flat();
        const hidden = new Float32Array(lat.length * this.model.H);
        lat.forEach((v, i) => hidden.set(v, i * this.model.H));
        if (lat.length) rec.gateMean = (await gateValues(this.model, hidden)).mean;
      }
      if (this.o.condition === 'latent' && this.o.tokenText) {
        const dec = await LatentDecoder.create(this.model);
        rec.typicalEmbeddingNorm = dec.typicalNorm;
        const lat = await collectLatents(this.model, seqs.slice(0, 2));
        rec.decoded = [];
        lat.forEach((vs, ex) =>
          vs.slice(0, 2 * this.o.k).forEach((v, j) =>
            rec.decoded!.push({
              example: ex,
              span: Math.floor(j / this.o.k),
              latent: j % this.o.k,
              d: dec.decode(v, this.o.tokenText!, 5, this.o.decodeIds),
            }),
          ),
        );
      }
    }
    const genRows = this.o.genRows;
    if (withGeneration && genRows > 0 && this.o.reward) {
      const gr = this.test.slice(0, genRows);
      const run = async (useLatents: boolean) => {
        let ok = 0,
          positions = 0,
          latents = 0;
        const samples: NonNullable<EvalRecord['samples']> = [];
        // GEN_BATCH questions decoded together (one forward per position for all of them; the answers are those of
        // one question at a time: greedy text, thresholded decisions); Ctrl-C is checked between and inside batches
        for (let i = 0; i < gr.length; i += GEN_BATCH) {
          await yieldToEventLoop();
          if (this.o.shouldStop?.()) throw new EvalInterrupted();
          const batch = gr.slice(i, i + GEN_BATCH);
          const gens = await interruptibleDecode(this.o.shouldStop, (interrupt) =>
            generateMany(
              this.model,
              this.tok,
              batch.map((row) => row.question + '\n'),
              {
                maxNewTokens: this.o.maxNewTokens ?? 96,
                condition: useLatents ? this.o.condition : 'none',
                startHead: useLatents ? this.startHead : null,
                endHead: this.o.condition === 'latent' ? this.endHead : null,
                latentsPerSpan: this.o.k,
                maxLatents: this.o.maxLatents ?? 8,
                eosId: this.o.eosId,
                interrupt,
              },
            ),
          );
          for (const [j, g] of gens.entries()) {
            const row = batch[j];
            const r = this.o.reward!(g.plain, row.final).reward;
            ok += r;
            positions += g.seq.ids.length - g.promptLength;
            latents += g.spans.reduce((a, sp) => a + sp.count, 0);
            samples.push({ question: row.question, text: g.text, gold: row.final, reward: r });
          }
        }
        return { acc: ok / gr.length, samples, positions: positions / gr.length, latents: latents / gr.length };
      };
      const a = await run(true);
      rec.accuracy = a.acc;
      rec.accuracyRows = gr.length;
      rec.positionsPerAnswer = a.positions;
      rec.latentsPerAnswer = a.latents;
      rec.samples = a.samples.slice(0, 4);
      if (this.o.condition !== 'none' && this.o.genWithoutLatents !== false) rec.accuracyNoLatents = (await run(false)).acc;
    }
    this.evals.push(rec);
    this.emit(rec);
    return rec;
  }

  private emit(rec: StepRecord | EvalRecord) {
    this.logged++;
    this.o.log?.(rec as unknown as Record<string, unknown>);
  }

  /**
   * Distillation targets for a batch: the same model reading each row's scratch text (stage 0, no gradient) gives its
   * hidden state at the token before each result; a student sequence with slots at a breakpoint is pulled toward it
   * at its own token before that result.
   */
  private async teacherTargets(rows: SplitRow[], seqs: LatentSequence[]): Promise<DistillTarget[][]> {
    const H = this.model.H;
    // the teachers (scratch text, no latents) of the rows whose student has slots, in shared forwards
    const need = rows.flatMap((_, i) => (seqs[i].spans.length ? [i] : []));
    const teachers = need.map((i) => this.sequence(rows[i], 0) as CurriculumSequence);
    const hidden = await forwardEach(
      this.model,
      teachers.map((seq) => ({ seq })),
      { wantHidden: true, withLabels: false },
    );
    const out: DistillTarget[][] = rows.map(() => []);
    need.forEach((i, k) => {
      const student = seqs[i] as CurriculumSequence,
        teacher = teachers[k],
        h = hidden[k].hidden!;
      const withSlots = new Set(student.spans.map((sp) => sp.breakpoint));
      out[i] = student.beforeResult.flatMap((pos, b) =>
        withSlots.has(b) && teacher.beforeResult[b] !== undefined
          ? [{ pos, target: h.slice(teacher.beforeResult[b] * H, (teacher.beforeResult[b] + 1) * H) }]
          : [],
      );
    });
    return out;
  }

  /** Zeroes AdamW's moments and step count (a fresh optimizer for a new curriculum stage, as Coconut does). */
  private resetOptimizer(): void {
    for (const t of [...this.opt.m.values(), ...this.opt.v.values()]) this.model.be.zero(t);
    this.opt.step = 0;
  }

  checkpointState(): Phase1CheckpointState {
    return {
      version: CHECKPOINT_VERSION,
      kind: 'phase1',
      step: this.step,
      rng: this.data.rng.state(),
      order: this.data.order,
      cursor: this.data.cursor,
      epoch: this.data.epoch,
      heads: { start: this.startHead.toJSON(), end: this.endHead.toJSON() },
      options: this.trajectoryOptions(),
      headAdam: { start: this.startHead.adamState(), end: this.endHead.adamState() },
      records: this.logged,
      pendingEval: this.pendingEval,
      feedbackScale: this.feedbackScale,
    };
  }

  /** Everything that shapes the run's numbers: a resume with any of these changed is not the same run. */
  trajectoryOptions(): Record<string, unknown> {
    const o = this.o;
    return {
      mode: o.mode,
      condition: o.condition,
      k: o.k,
      seed: o.seed,
      steps: o.steps,
      batchSize: o.batchSize,
      lr: o.lr,
      warmupSteps: o.warmupSteps ?? 0,
      adamw: o.adamw ?? {},
      curriculumStepsPerStage: o.curriculumStepsPerStage ?? 0,
      maxLatents: o.maxLatents ?? 8,
      feedback: o.feedback ?? 'identity',
      // only for gated runs, so the trajectory of every other run (and its resume check) is unchanged
      ...(o.feedback === 'gated' ? { feedbackTemperature: o.feedbackTemperature ?? 1, gateInit: o.gateInit ?? DEFAULT_GATE_INIT } : {}),
      latentSupervision: o.latentSupervision ?? 0,
      markerInit: o.markerInit ?? { kind: 'mean' },
      maxLen: o.maxLen ?? null,
      evalEvery: o.evalEvery,
      evalRows: o.evalRows,
      genRows: o.genRows,
      genEvery: o.genEvery ?? 0,
      maxNewTokens: o.maxNewTokens ?? 96,
      ...o.runInfo,
      ...(o.substeps ? { substeps: o.substeps } : {}),
      ...(o.batchForward !== undefined ? { batchForward: o.batchForward } : {}),
      ...(o.genWithoutLatents === false ? { genWithoutLatents: false } : {}),
    };
  }

  async save(dir: string): Promise<void> {
    const save = () => saveCheckpoint(dir, this.model, this.opt, this.checkpointState());
    await (this.o.guardSave ? this.o.guardSave(save) : save());
    this.savedStep = this.step;
  }

  async restore(dir: string): Promise<boolean> {
    const st = await loadCheckpoint(dir, this.model, this.opt);
    if (!st) return false;
    if (st.kind !== 'phase1') throw new Error(`${dir}: an RL checkpoint, not a phase-1 one (continue it with \`latentlm rl --resume\`)`);
    this.step = st.step;
    this.data.restore({ rng: Rng.fromState(st.rng), order: st.order, cursor: st.cursor, epoch: st.epoch });
    const s = LogisticHead.fromJSON(st.heads.start),
      e = LogisticHead.fromJSON(st.heads.end);
    this.startHead.w.set(s.w), (this.startHead.b = s.b);
    this.endHead.w.set(e.w), (this.endHead.b = e.b);
    const ha = st.headAdam;
    if (ha) this.startHead.loadAdamState(ha.start), this.endHead.loadAdamState(ha.end);
    this.logged = typeof st.records === 'number' ? st.records : 0;
    this.pendingEval = st.pendingEval === true;
    this.savedStep = st.step;
    if (typeof st.feedbackScale === 'number') this.feedbackScale = st.feedbackScale;
    this.needsMarkerInit = false;
    return true;
  }

  /** The whole run: resume if asked, train with periodic evals and checkpoints, final eval. */
  async run(): Promise<Phase1Result> {
    const o = this.o;
    const ckptDir = o.outDir ? `${o.outDir}/checkpoint` : undefined;
    if (o.resume && ckptDir) await this.restore(ckptDir);
    await this.init();
    let stoppedEarly = false;
    // a periodic eval that Ctrl-C interrupted (or that never started) is done before training goes on
    const periodicEval = async () => {
      this.pendingEval = true;
      if (o.shouldStop?.()) return;
      try {
        await this.evaluate(!!o.genEvery && this.step % o.genEvery === 0);
        this.pendingEval = false;
      } catch (e) {
        if (!(e instanceof EvalInterrupted)) throw e;
      }
    };
    if (this.pendingEval) await periodicEval();
    else if (this.step === 0 && o.evalEvery > 0) await this.evaluate(false);
    while (this.step < o.steps) {
      await yieldToEventLoop(); // a Ctrl-C during the last sequence of a step is seen before the next step starts
      if (o.shouldStop?.()) break;
      const rec = await this.trainStep();
      o.onStep?.(this.step, rec);
      if (due(this.step, o.evalEvery) && this.step < o.steps) await periodicEval();
      if (ckptDir && due(this.step, o.ckptEvery) && !o.shouldStop?.()) await this.save(ckptDir);
    }
    stoppedEarly = this.step < o.steps || this.pendingEval;
    if (ckptDir) await this.save(ckptDir);
    if (!stoppedEarly) {
      try {
        await this.evaluate(true);
      } catch (e) {
        if (!(e instanceof EvalInterrupted)) throw e;
        stoppedEarly = true;
      }
    }
    return { steps: this.steps, evals: this.evals, startHead: this.startHead, endHead: this.endHead, stoppedEarly };
  }
}
