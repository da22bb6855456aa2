// Qwen2 (HF `modeling_qwen2`) forward and backward on any Backend, readable top to bottom.
//
// The one idea beyond a plain transformer: a forward runs as a sequence of *segments* of positions sharing
// one KV cache per layer. A latent position p takes as input the final-norm hidden state of position p-1
// (Coconut), which only exists once p-1 has been computed, so every latent position starts a new segment.
// The backward walks the segments in reverse: attention adds dK/dV into per-layer gradient caches that
// earlier segments read when their turn comes, and a latent input's gradient is added into the previous
// segment's final-hidden gradient, so gradients flow through the whole latent chain exactly.
// k latents after a prefix therefore cost k single-position passes, not k full passes.
// With B sequences whose latents sit at different positions, cutting all of them at the union of their latent
// positions multiplies the passes; aligned segments (ForwardOptions.alignSegments) cut each sequence at its own
// latents and run the j-th segment of every sequence in one pass, rows packed one sequence after another, with
// attention told each sequence's start and rows (qStarts, qRows).
//
// Two-trunk mode: a frozen *language* trunk (the original layers + final norm) and a trainable *latent* trunk
// (a copy, named `latent.model.*`). Each segment is routed to one trunk; attention reads the K/V of every
// earlier position whichever trunk produced them.
import type { Backend, Tensor } from '../backend/types.js';
import { Arena } from './arena.js';
import { hasLatentTrunk, LATENT_EMBEDDINGS, LATENT_PREFIX, LM_HEAD, TOKEN_EMBEDDINGS } from './latent-params.js';
import { expectedQwen2Tensors, loadHfCheckpoint, saveHfCheckpoint, type LoadOptions, type Qwen2Config as HfQwen2Config } from './hf.js';
import type { Source } from '../io/source.js';
import type { Rng } from '../data/rng.js';

/** The HF config.json of a Qwen2 model (validated by parseQwen2Config in hf.ts). */
export type Qwen2Config = HfQwen2Config;

export type Trunk = 'language' | 'latent';

/** Input kind of a position. */
export enum Kind {
  /** Embedding of ids[p]. */
  Token = 0,
  /** A latent: the (fed-back) final-norm hidden state of position p-1. */
  Latent = 1,
  /** Row extra[p] of the learned extra-embedding table `latent.embeddings` (begin/end markers, pause tokens). */
  Extra = 2,
  /** A caller-supplied vector embeds[p] (diagnostics: zeroed or swapped latents). No gradient. */
  Embed = 3,
}

export interface ForwardInput {
  /** Sequences and positions in this call; arrays are [B*T], row-major by sequence. */
  B: number;
  T: number;
  ids: Int32Array;
  kind?: Uint8Array;
  extra?: Int32Array;
  /** [B*T*H] vectors used where kind == Embed. */
  embeds?: Float32Array;
  /** HF convention: same length as ids, shifted inside (position t predicts labels[t+1]); -100 = ignore. */
  labels?: Int32Array;
  /** Per-label loss weight (aligned with labels); default 1. The loss gradient is weight * lossScale * dCE. */
  labelWeights?: Float32Array;
  /** Routing per position in two-trunk mode (0 language, 1 latent). */
  trunk?: Uint8Array;
}

export interface ForwardOptions {
  /** Keep activations for backward(). */
  grad?: boolean;
  /** Multiplies every label's loss gradient (e.g. 1 / number of labels in the whole batch). */
  lossScale?: number;
  /** Return logits [B*T, V] (small models only: the fused loss head never keeps them otherwise). */
  wantLogits?: boolean;
  /** Return final-norm hidden states [B*T, H]. */
  wantHidden?: boolean;
  /** Return logits of each sequence's last position [B, V] (sampling). */
  wantLastLogits?: boolean;
  /** Incremental decoding: positions continue the cache (no grad). */
  cache?: KVCache;
  /**
   * Cut each sequence at its OWN latent positions and run the j-th segment of every sequence in one segment pass
   * (aligned segments), instead of cutting all of them at the union of their latent positions. Exact either way
   * (rows are computed alone; only sums across sequences change order); with sequences whose latents sit at
   * different positions it runs far fewer, taller passes. A hint: used where the backend takes per-sequence query
   * starts (Backend.queryStarts) and the call has no cache, trunk routing or wantLastLogits; else ignored.
   */
  alignSegments?: boolean;
}

export interface ForwardResult {
  /** Per-label losses aligned with labels: lossAt[b*T+t] = -log p(labels[t] | ..t-1); 0 where ignored. */
  lossAt?: Float32Array;
  lossSum: number;
  labelCount: number;
  logits?: Float32Array;
  hidden?: Float32Array;
  lastLogits?: Float32Array;
  lastHidden?: Float32Array;
}

/**
 * Per-layer KV cache for incremental decoding of B sequences. Sequences of different lengths (prompts of several
 * questions decoded together) set `lens`: sequence b then holds lens[b] positions and continues from there; `len` is
 * the longest (capacity checks). Without `lens` every sequence holds `len`.
 */
export interface KVCache {
  B: number;
  cap: number;
  len: number;
  /** Per-sequence lengths (see above); a decode step advances each by T. Needs the backend's `queryStarts`. */
  lens?: Int32Array;
  k: Tensor[];
  v: Tensor[];
  /** Final-norm hidden state of each sequence's last position: the input of a latent at position len. */
  lastHidden: Tensor;
}

const LAYER_PARAMS = [
  ['self_attn.q_proj.weight', 'q'],
  ['self_attn.q_proj.bias', 'qb'],
  ['self_attn.k_proj.weight', 'k'],
  ['self_attn.k_proj.bias', 'kb'],
  ['self_attn.v_proj.weight', 'v'],
  ['self_attn.v_proj.bias', 'vb'],
  ['self_attn.o_proj.weight', 'o'],
  ['mlp.gate_proj.weight', 'gate'],
  ['mlp.up_proj.weight', 'up'],
  ['mlp.down_proj.weight', 'down'],
  ['input_layernorm.weight', 'ln1'],
  ['post_attention_layernorm.weight', 'ln2'],
] as const;
type LayerKey = (typeof LAYER_PARAMS)[number][1];
type LayerTensors = Record<LayerKey, Tensor>;

/** Every HF tensor name and shape of a Qwen2 model with this config (one definition, in hf.ts). */
export const qwen2ParamShapes = (c: Qwen2Config): Map<string, number[]> => expectedQwen2Tensors(c as HfQwen2Config);

/** HF-style initial weights for a model trained from scratch: normal(0, std) matrices, zero biases, unit norms. */
export function initQwen2Tensors(c: Qwen2Config, rng: Pick<Rng, 'normal'>, std = 0.02): Map<string, Float32Array> {
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of qwen2ParamShapes(c)) {
    const t = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) t.fill(1);
    else if (!name.endsWith('.bias')) for (let i = 0; i < t.length; i++) t[i] = std * rng.normal();
    tensors.set(name, t);
  }
  return tensors;
}

/**
 * What a feedback with parameters of its own reads from the model (gated feedback: the gate, the token embeddings and
 * the output head). Identity and scaled feedback ignore it.
 */
export interface FeedbackContext {
  readonly V: number;
  /** The name of the output head's weight [V, H]: the token-embedding table when tied. */
  readonly lmHead: string;
  param(name: string): Tensor;
  /** The gradient buffer of a trainable parameter; undefined when the parameter is frozen. */
  grad(name: string): Tensor | undefined;
}

/** How a latent's fed-back hidden state becomes the next input embedding. Identity by default (Coconut). */
export interface LatentFeedback {
  readonly name: string;
  forward(be: Backend, hidden: Tensor, hiddenOff: number, input: Tensor, inputOff: number, H: number, ctx: FeedbackContext): void;
  /**
   * Adds d(hidden) given d(input), and the gradients of any parameters the feedback reads (through ctx.grad). Called
   * while the forward's hidden state is still in place (`hidden` at `hiddenOff`), so a feedback may recompute from it.
   */
  backward(
    be: Backend,
    dInput: Tensor,
    dInputOff: number,
    dHidden: Tensor,
    dHiddenOff: number,
    H: number,
    ctx: FeedbackContext,
    hidden: Tensor,
    hiddenOff: number,
  ): void;
  /** Frees tensors the feedback allocated on a backend (scratch buffers); called by Qwen2.destroy(). */
  dispose?(): void;
}

export const identityFeedback: LatentFeedback = {
  name: 'identity',
  forward: (be, h, ho, x, xo, H) => be.copy2d({ src: h, dst: x, rows: 1, cols: H, srcOff: ho, srcStride: H, dstOff: xo, dstStride: H }),
  backward: (be, dx, xo, dh, ho, H) =>
    be.copy2d({ src: dx, dst: dh, rows: 1, cols: H, srcOff: xo, srcStride: H, dstOff: ho, dstStride: H, accumulate: true }),
};

/**
 * Feeds back `scale * h`. Final-norm hidden states have norm ~ sqrt(H) * |w| while trained token embeddings are often
 * an order of magnitude smaller (Coconut users report latents with much larger norms than embeddings); scaling the
 * fed-back state to the typical embedding norm keeps latents on the scale the network expects at its input.
 */
export function scaledFeedback(scale: number): LatentFeedback {
  return {
    name: `scaled(${scale.toPrecision(3)})`,
    forward: (be, h, ho, x, xo, H) => {
      be.zero(x, xo, H);
      be.axpy({ alpha: scale, x: h, y: x, n: H, xOff: ho, yOff: xo });
    },
    backward: (be, dx, xo, dh, ho, H) => be.axpy({ alpha: scale, x: dx, y: dh, n: H, xOff: xo, yOff: ho }),
  };
}

/**
 * One segment pass: rows first[b] .. first[b] + lens[b] - 1 hold positions starts[b] .. starts[b] + lens[b] - 1 of
 * sequence b (relative to the call's first position), sequences one after another (first[B] = all rows; a sequence
 * may have none). Position-aligned passes have the same start and the same number of rows for every sequence.
 */
interface SegmentPlan {
  starts: Int32Array;
  lens: Int32Array;
  first: Int32Array;
  trunk: Trunk;
}

/** first[b] = rows of the sequences before b. */
const firstRows = (lens: Int32Array) => {
  const f = new Int32Array(lens.length + 1);
  for (let b = 0; b < lens.length; b++) f[b + 1] = f[b] + lens[b];
  return f;
};

interface Segment extends SegmentPlan {
  rows: number;
  /** Rows per sequence when they are all the same, else 0 (then qStarts and qRows give each sequence's layout). */
  Tc: number;
  /** The largest start: the attention calls' qStart bound. */
  maxStart: number;
  /** Absolute position of each sequence's first row (where its K/V rows go in the caches). */
  kvStarts: Int32Array;
  /** Aligned passes: absolute starts [B] and first rows [B + 1] as i32 tensors, for attention. */
  qStarts: Tensor | null;
  qRows: Tensor | null;
  pos: Tensor;
  ids: Tensor;
  extra: Tensor | null;
  targets: Tensor;
  weights: Tensor | null;
  hasTargets: boolean;
  /** Latent rows: (row in this segment, sequence b, absolute position p). */
  feed: { row: number; b: number; p: number }[];
  xs: Tensor[];
  /** Per layer, what the backward needs (the SwiGLU activation is not kept: the down projection fuses it). */
  acts: {
    xn: Tensor;
    rstd1: Tensor;
    q: Tensor;
    att: Tensor;
    lse: Tensor;
    x2: Tensor;
    xn2: Tensor;
    rstd2: Tensor;
    gate: Tensor;
    up: Tensor;
  }[];
  rstdF: Tensor;
  hf: Tensor;
  dHf: Tensor | null;
  losses: Tensor;
}

/** The state kept between forward({grad:true}) and backward(). */
export interface Pass {
  readonly input: ForwardInput;
  segments: Segment[];
  /** The K/V caches the pass attended over (backward reads them) and their gradients. */
  kc: Tensor[];
  vc: Tensor[];
  dK: Tensor[];
  dV: Tensor[];
  cap: number;
}

/** Everything one forward call works with, passed explicitly from segment to segment. */
interface PassState {
  readonly inp: ForwardInput;
  readonly B: number;
  readonly T: number;
  /** Absolute position of the call's first position (the cache length for a decode step, else 0). */
  readonly start: number;
  /** Per-sequence absolute positions of the call's first position (a cache with unequal lens), else null (start). */
  readonly offsets: Int32Array | null;
  /** Rows per sequence of the K/V caches. */
  readonly cap: number;
  readonly arena: Arena;
  readonly cache: KVCache | null;
  readonly kc: Tensor[];
  readonly vc: Tensor[];
  readonly grad: boolean;
  readonly lossScale: number;
  /** The logits of each segment, kept when the caller asked for them (wantLogits). */
  readonly keptLogits: Map<Segment, Tensor> | null;
  /** The [rows, V] logits chunk the loss head reuses across segments. */
  logitsChunk: Tensor | null;
  /** The segment passes to run, in order, and those already run. */
  readonly plans: SegmentPlan[];
  readonly segments: Segment[];
}

export class Qwen2 {
  readonly params = new Map<string, Tensor>();
  readonly grads = new Map<string, Tensor>();
  readonly shapes = new Map<string, number[]>();
  private readonly trainable = new Set<string>();
  private readonly arena: Arena;
  private readonly scratch: Arena;
  /** Per-layer temporaries, recycled at every layer (ops run in queue order, so reuse is safe). */
  private readonly tmp: Arena;
  private pass: Pass | null = null;
  feedback: LatentFeedback = identityFeedback;
  /** The model as a feedback sees it (its parameters, gradients and output head). */
  private readonly feedbackCtx: FeedbackContext;
  twoTrunk = false;
  readonly H: number;
  readonly D: number;
  readonly KV: number;
  readonly I: number;
  readonly V: number;
  readonly L: number;

  private constructor(
    readonly be: Backend,
    readonly config: Qwen2Config,
  ) {
    this.arena = new Arena(be);
    this.scratch = new Arena(be);
    this.tmp = new Arena(be);
    const c = config;
    this.H = c.hidden_size;
    this.D = c.hidden_size / c.num_attention_heads;
    this.KV = c.num_key_value_heads * this.D;
    this.I = c.intermediate_size;
    this.V = c.vocab_size;
    this.L = c.num_hidden_layers;
    this.feedbackCtx = { V: this.V, lmHead: this.lmHeadName(), param: (name) => this.param(name), grad: (name) => this.grads.get(name) };
  }

  /** Builds a model from HF-named f32 tensors (validated against the config's expected shapes). */
  static fromTensors(be: Backend, config: Qwen2Config, tensors: Map<string, Float32Array>, source = 'tensors'): Qwen2 {
    const m = new Qwen2(be, config);
    for (const [name, shape] of qwen2ParamShapes(config)) {
      const data = tensors.get(name);
      if (!data) throw new Error(`${source}: missing tensor '${name}' (expected shape [${shape}])`);
      const n = shape.reduce((a, b) => a * b, 1);
      if (data.length !== n) throw new Error(`${source}: tensor '${name}' has ${data.length} elements, expected [${shape}] = ${n}`);
      m.addParam(name, shape, data);
    }
    for (const [name, data] of tensors) if (name.startsWith(LATENT_PREFIX)) m.addParam(name, [data.length], data);
    return m;
  }

  /**
   * Loads an HF Qwen2 checkpoint (directory path or URL base; config.json + model.safetensors or a sharded index;
   * F32/BF16/F16). Each tensor is converted, uploaded and released one at a time, so peak host memory stays near
   * one tensor beyond the file bytes. `latent.*` tensors saved by this package come back too.
   */
  static async load(be: Backend, source: Source, opts: LoadOptions & { storage?: 'f32' | 'bf16' } = {}): Promise<Qwen2> {
    const ckpt = await loadHfCheckpoint(source, opts);
    const m = new Qwen2(be, ckpt.config);
    const expected = qwen2ParamShapes(ckpt.config);
    // storage 'bf16': every weight kept as bf16 and frozen (inference, or the frozen trunk of two-trunk training)
    for (const [name, shape] of expected) {
      const t = ckpt.tensors.get(name)!;
      m.addParam(name, shape, t.data, opts.storage ?? 'f32');
      t.release();
    }
    if (opts.storage === 'bf16') m.setTrainable(() => false);
    for (const [name, t] of ckpt.tensors)
      if (name.startsWith(LATENT_PREFIX)) {
        m.addParam(name, t.shape, t.data);
        t.release();
      }
    if (hasLatentTrunk(m.params.keys())) m.twoTrunk = true;
    return m;
  }

  /** Writes HF-compatible config.json + model.safetensors (atomically); `latent.*` tensors are included. */
  async save(dir: string, opts: { dtype?: 'F32' | 'BF16' } = {}): Promise<void> {
    const tensors = await this.exportTensors();
    await saveHfCheckpoint(dir, this.config, tensors, opts);
  }

  /** Adds (or replaces) a parameter; trainable by default. */
  addParam(name: string, shape: number[], data?: Float32Array, dtype: 'f32' | 'bf16' = 'f32'): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const old = this.params.get(name);
    if (old) this.be.free(old);
    const t = this.be.alloc(n, dtype, name);
    if (data) this.be.upload(t, data);
    this.params.set(name, t);
    this.shapes.set(name, shape);
    this.trainable.add(name);
    return t;
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`no parameter '${name}'`);
    return t;
  }

  /** Marks parameters trainable (or frozen) by a predicate; frozen parameters get no gradient buffer. */
  setTrainable(pred: (name: string) => boolean): void {
    this.trainable.clear();
    for (const name of this.params.keys()) if (pred(name)) this.trainable.add(name);
    for (const [name, g] of this.grads)
      if (!this.trainable.has(name)) {
        this.be.free(g);
        this.grads.delete(name);
      }
  }

  isTrainable(name: string): boolean {
    return this.trainable.has(name);
  }

  trainableNames(): string[] {
    return [...this.params.keys()].filter((n) => this.trainable.has(n));
  }

  /**
   * Re-stores every frozen parameter as bf16 (half the device memory on WebGPU: the frozen language trunk in two-trunk
   * mode, or the whole model for inference). Trainable parameters stay f32: AdamW needs f32 master weights.
   * Returns the number of elements converted.
   */
  async storeFrozenAs(dtype: 'bf16'): Promise<number> {
    let n = 0;
    for (const [name, t] of [...this.params]) {
      if (this.trainable.has(name) || t.dtype === dtype) continue;
      const data = (await this.be.read(t)) as Float32Array;
      const h = this.be.alloc(t.size, dtype, name);
      this.be.upload(h, data);
      this.be.free(t);
      this.params.set(name, h);
      n += t.size;
    }
    return n;
  }

  /** Copies the layers and final norm into a trainable latent trunk and freezes the language trunk. */
  enableTwoTrunk(): void {
    for (const name of [...this.params.keys()]) {
      if (!name.startsWith('model.layers.') && name !== 'model.norm.weight') continue;
      const latentName = `${LATENT_PREFIX}${name}`;
      if (this.params.has(latentName)) continue;
      const t = this.be.alloc(this.param(name).size, 'f32', latentName);
      this.be.copy2d({ src: this.param(name), dst: t, rows: 1, cols: t.size, srcStride: 0, dstStride: 0 });
      this.params.set(latentName, t);
      this.shapes.set(latentName, this.shapes.get(name)!);
    }
    this.twoTrunk = true;
    this.setTrainable((n) => n.startsWith(LATENT_PREFIX));
  }

  /** Zeroes (allocating if needed) the gradient of every trainable parameter. */
  zeroGrads(): void {
    for (const name of this.trainable) {
      let g = this.grads.get(name);
      if (!g) this.grads.set(name, (g = this.be.alloc(this.param(name).size, 'f32', `grad:${name}`)));
      else this.be.zero(g);
    }
  }

  private layer(l: number, trunk: Trunk, grads: boolean): Partial<LayerTensors> {
    const prefix = `${trunk === 'latent' && this.twoTrunk ? LATENT_PREFIX : ''}model.layers.${l}.`;
    const out: Partial<LayerTensors> = {};
    for (const [suffix, key] of LAYER_PARAMS) {
      const name = prefix + suffix;
      if (grads) {
        const g = this.grads.get(name);
        if (g) out[key] = g;
      } else out[key] = this.param(name);
    }
    return out;
  }

  private normName(trunk: Trunk) {
    return trunk === 'latent' && this.twoTrunk ? `${LATENT_PREFIX}model.norm.weight` : 'model.norm.weight';
  }
  private lmHeadName() {
    return this.config.tie_word_embeddings ? TOKEN_EMBEDDINGS : LM_HEAD;
  }

  createCache(B: number, cap: number): KVCache {
    const n = B * cap * this.KV;
    return {
      B,
      cap,
      len: 0,
      k: Array.from({ length: this.L }, (_, l) => this.be.alloc(n, 'f32', `kcache${l}`)),
      v: Array.from({ length: this.L }, (_, l) => this.be.alloc(n, 'f32', `vcache${l}`)),
      lastHidden: this.be.alloc(B * this.H, 'f32', 'lastHidden'),
    };
  }

  freeCache(c: KVCache): void {
    for (const t of [...c.k, ...c.v, c.lastHidden]) this.be.free(t);
  }

  /** Splits positions [0, T) into segments: every latent position starts one; trunk changes start one. */
  private planSegments(inp: ForwardInput, start: number, offsets: Int32Array | null): SegmentPlan[] {
    const { B, T, kind, trunk } = inp;
    const cut = new Set<number>([0]);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        const i = b * T + t;
        if (kind && kind[i] === Kind.Latent) {
          if ((offsets ? offsets[b] : start) + t === 0)
            throw new Error(`sequence ${b}: a latent cannot be the first position (it needs a previous hidden state)`);
          cut.add(t);
          if (t + 1 < T) cut.add(t + 1);
        }
        if (trunk && t > 0 && trunk[i] !== trunk[i - 1]) cut.add(t);
      }
    const bounds = [...cut].sort((a, b) => a - b);
    return bounds.map((s, j) => {
      const e = j + 1 < bounds.length ? bounds[j + 1] : T;
      let tr: Trunk = 'language';
      if (trunk) {
        for (let b = 0; b < B; b++)
          for (let t = s; t < e; t++)
            if (trunk[b * T + t] !== trunk[s])
              throw new Error(`two-trunk routing differs across the batch at position ${start + t}; run such sequences with B=1`);
        tr = trunk[s] === 1 ? 'latent' : 'language';
      }
      const lens = new Int32Array(B).fill(e - s);
      return { starts: new Int32Array(B).fill(s), lens, first: firstRows(lens), trunk: tr };
    });
  }

  /**
   * Aligned segments (ForwardOptions.alignSegments): sequence b is cut only at its own latent positions, and pass j
   * takes the j-th segment of every sequence (a sequence with fewer segments has no rows there). A latent
   * starts its sequence's segment, so the hidden state it reads (position p - 1) is the last real row of the same
   * sequence in the pass before.
   */
  private planAlignedSegments(inp: ForwardInput): SegmentPlan[] {
    const { B, T, kind } = inp;
    const cuts: number[][] = [];
    for (let b = 0; b < B; b++) {
      const c = [0];
      for (let t = 0; t < T; t++)
        if (kind && kind[b * T + t] === Kind.Latent) {
          if (t === 0) throw new Error(`sequence ${b}: a latent cannot be the first position (it needs a previous hidden state)`);
          c.push(t);
        }
      cuts.push(c);
    }
    const n = Math.max(...cuts.map((c) => c.length));
    return Array.from({ length: n }, (_, j) => {
      const starts = new Int32Array(B),
        lens = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const c = cuts[b];
        if (j >= c.length) continue;
        starts[b] = c[j];
        lens[b] = (j + 1 < c.length ? c[j + 1] : T) - c[j];
      }
      return { starts, lens, first: firstRows(lens), trunk: 'language' as Trunk };
    });
  }

  /**
   * Whether a shared forward of this model can run aligned segments (ForwardOptions.alignSegments): the backend takes
   * per-sequence query starts, and there is one trunk (two-trunk routing is per position, across the batch).
   */
  get alignsSegments(): boolean {
    return this.be.queryStarts === true && !this.twoTrunk;
  }

  /** Whether this call runs aligned segments (see ForwardOptions.alignSegments). */
  private aligned(inp: ForwardInput, opts: ForwardOptions, cache: KVCache | null): boolean {
    return !!opts.alignSegments && this.be.queryStarts === true && !cache && !inp.trunk && !opts.wantLastLogits && inp.B > 1;
  }

  /**
   * Runs the model over B sequences of T positions. With `grad`, keeps what backward() needs (one pass at a time)
   * and computes the fused loss gradient on the fly. With `cache`, continues incremental decoding (no grad).
   * Three paths share the segment loop: the training pass (grad), the decode step (cache) and the probe pass
   * (neither: losses, logits or hidden states of a fresh pass, kept nowhere).
   */
  async forward(inp: ForwardInput, opts: ForwardOptions = {}): Promise<ForwardResult> {
    // forwards share scratch buffers: two at once (e.g. Promise.all) would silently corrupt each other
    if (this.busy) throw new Error('forward: another forward on this model is still running (await it first)');
    if (inp.ids.length !== inp.B * inp.T) throw new Error(`forward: ids has ${inp.ids.length} entries, expected B*T = ${inp.B * inp.T}`);
    if (opts.grad && opts.cache) throw new Error('forward: grad and cache cannot be combined (gradients do not cross calls)');
    this.busy = true;
    try {
      if (opts.grad) return await this.trainingPass(inp, opts);
      if (opts.cache) return await this.decodeStep(inp, opts.cache, opts);
      return await this.probePass(inp, opts);
    } finally {
      this.busy = false;
    }
  }
  private busy = false;

  /** forward({grad: true}): fresh K/V caches in the grad arena; the pass is kept for backward(). */
  private async trainingPass(inp: ForwardInput, opts: ForwardOptions): Promise<ForwardResult> {
    if (this.pass) throw new Error('forward: the previous grad pass was not consumed by backward()');
    const st = this.beginPass(inp, opts, this.arena, null);
    this.runSegments(st);
    const result = await this.readResults(st, opts);
    if (opts.wantLastLogits) Object.assign(result, await this.readLastRows(st, st.arena.take(inp.B * this.H), true));
    const kvGrad = () => st.kc.map(() => st.arena.take(inp.B * st.cap * this.KV, 'f32', true));
    // the pass owns the K/V caches it attended over: backward reads them, and they stay alive in the grad arena
    this.pass = { input: inp, segments: st.segments, kc: st.kc, vc: st.vc, dK: kvGrad(), dV: kvGrad(), cap: st.cap };
    return result;
  }

  /** forward({cache}): continues the cache by T positions and leaves the last positions' hidden states in it. */
  private async decodeStep(inp: ForwardInput, cache: KVCache, opts: ForwardOptions): Promise<ForwardResult> {
    const st = this.beginPass(inp, opts, this.scratch, cache);
    this.runSegments(st);
    const result = await this.readResults(st, opts);
    Object.assign(result, await this.readLastRows(st, cache.lastHidden, !!opts.wantLastLogits));
    cache.len += inp.T;
    if (cache.lens) for (let b = 0; b < cache.B; b++) cache.lens[b] += inp.T;
    return result;
  }

  /** forward() without grad or cache: a fresh pass in the scratch arena whose results are read back and dropped. */
  private async probePass(inp: ForwardInput, opts: ForwardOptions): Promise<ForwardResult> {
    const st = this.beginPass(inp, opts, this.scratch, null);
    this.runSegments(st);
    const result = await this.readResults(st, opts);
    if (opts.wantLastLogits) Object.assign(result, await this.readLastRows(st, st.arena.take(inp.B * this.H), true));
    return result;
  }

  /** The state of one forward call: its arena and K/V caches, where it starts, and what it keeps. */
  private beginPass(inp: ForwardInput, opts: ForwardOptions, arena: Arena, cache: KVCache | null): PassState {
    const { B, T } = inp;
    for (const a of [this.arena, this.scratch, this.tmp]) a.tick();
    arena.reset();
    // a cache whose sequences differ in length: each continues at its own position (attention's qStarts)
    const lens = cache?.lens;
    const offsets = lens?.some((x) => x !== lens[0]) ? lens.slice() : null;
    if (offsets && !this.be.queryStarts) throw new Error('forward: a cache with per-sequence lengths needs a backend with queryStarts');
    // (cache.len is the longest sequence: with equal lens, every one's length)
    const start = offsets ? 0 : cache ? cache.len : 0;
    const aligned = this.aligned(inp, opts, cache);
    const plans = aligned ? this.planAlignedSegments(inp) : this.planSegments(inp, start, offsets);
    const cap = cache ? cache.cap : T;
    if (cache && (cache.B !== B || cache.len + T > cap || (lens && lens.length !== B)))
      throw new Error(`forward: cache holds B=${cache.B}, ${cache.len}/${cap} positions; cannot add B=${B} x ${T}`);
    return {
      inp,
      B,
      T,
      start,
      offsets,
      cap,
      arena,
      cache,
      kc: cache ? cache.k : Array.from({ length: this.L }, () => arena.take(B * cap * this.KV)),
      vc: cache ? cache.v : Array.from({ length: this.L }, () => arena.take(B * cap * this.KV)),
      grad: !!opts.grad,
      lossScale: opts.lossScale ?? 1,
      keptLogits: opts.wantLogits ? new Map() : null,
      logitsChunk: null,
      plans,
      segments: [],
    };
  }

  /** Runs every segment of the pass in order (a latent reads the previous segment's final hidden state). */
  private runSegments(st: PassState): void {
    for (const plan of st.plans) st.segments.push(this.segmentForward(st, plan));
  }

  /** Embeddings, layers, final norm and (where there are targets or logits are wanted) the loss head of one segment. */
  private segmentForward(st: PassState, plan: SegmentPlan): Segment {
    const { inp, B, T, start, offsets, arena } = st;
    const base = (b: number) => (offsets ? offsets[b] : start);
    const be = this.be,
      H = this.H,
      V = this.V;
    const wantLoss = !!inp.labels;
    const { starts, lens, first, trunk } = plan;
    const rows = first[B];
    const pos = new Int32Array(rows),
      ids = new Int32Array(rows),
      targets = new Int32Array(rows).fill(-100);
    const extra = new Int32Array(rows).fill(-1),
      w = new Float32Array(rows);
    const feed: Segment['feed'] = [];
    const embedRows: [number, number][] = [];
    let hasExtra = false,
      hasTargets = false;
    for (let b = 0; b < B; b++)
      for (let i = 0; i < lens[b]; i++) {
        const t = starts[b] + i,
          src = b * T + t,
          r = first[b] + i;
        pos[r] = base(b) + t;
        const k = inp.kind ? inp.kind[src] : Kind.Token;
        ids[r] = k === Kind.Token ? inp.ids[src] : -1;
        if (k === Kind.Token && (ids[r] < 0 || ids[r] >= V))
          throw new Error(`forward: token id ${ids[r]} at sequence ${b} position ${t} is outside the vocabulary (${V})`);
        if (k === Kind.Extra) {
          extra[r] = inp.extra![src];
          hasExtra = true;
        }
        if (k === Kind.Latent) feed.push({ row: r, b, p: t });
        if (k === Kind.Embed) embedRows.push([r, src]);
        if (wantLoss && t + 1 < T && inp.labels![src + 1] !== -100) {
          targets[r] = inp.labels![src + 1];
          w[r] = (inp.labelWeights ? inp.labelWeights[src + 1] : 1) * st.lossScale;
          hasTargets = true;
        }
      }
    const up = (data: Int32Array | Float32Array, dtype: 'i32' | 'f32' = 'i32') => {
      const t = arena.take(data.length, dtype);
      be.upload(t, data);
      return t;
    };
    let maxStart = 0,
      uniform = !offsets;
    const kvStarts = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      kvStarts[b] = base(b) + starts[b];
      maxStart = Math.max(maxStart, kvStarts[b] - start);
      uniform &&= starts[b] === starts[0] && lens[b] === lens[0];
    }
    const seg: Segment = {
      starts,
      lens,
      first,
      Tc: uniform ? lens[0] : 0,
      rows,
      trunk,
      maxStart,
      kvStarts,
      qStarts: uniform ? null : up(kvStarts),
      qRows: uniform ? null : up(first),
      feed,
      hasTargets,
      pos: up(pos),
      ids: up(ids),
      extra: hasExtra ? up(extra) : null,
      targets: up(targets),
      weights: st.grad && hasTargets ? up(w, 'f32') : null,
      xs: [],
      acts: [],
      rstdF: arena.take(rows),
      hf: arena.take(rows * H),
      dHf: st.grad ? arena.take(rows * H, 'f32', true) : null,
      losses: arena.take(rows),
    };
    // ---- input embeddings ----
    const x0 = arena.take(rows * H);
    be.embedding({ ids: seg.ids, table: this.param(TOKEN_EMBEDDINGS), out: x0, rows, dim: H });
    if (seg.extra) be.embedding({ ids: seg.extra, table: this.param(LATENT_EMBEDDINGS), out: x0, rows, dim: H });
    for (const [r, src] of embedRows) {
      if (!inp.embeds) throw new Error('forward: kind Embed needs input.embeds');
      be.upload(x0, inp.embeds.subarray(src * H, src * H + H), r * H);
    }
    for (const f of feed) {
      if (f.p === 0) {
        // the previous call's last position (incremental decoding)
        this.feedback.forward(be, st.cache!.lastHidden, f.b * H, x0, f.row * H, H, this.feedbackCtx);
      } else {
        const prev = st.segments[st.segments.length - 1];
        this.feedback.forward(be, prev.hf, (prev.first[f.b] + (f.p - 1 - prev.starts[f.b])) * H, x0, f.row * H, H, this.feedbackCtx);
      }
    }
    seg.xs.push(x0);
    // ---- layers ----
    for (let l = 0; l < this.L; l++) seg.xs.push(this.layerForward(seg, l, st.kc[l], st.vc[l], B, start, st.cap, arena));
    // ---- final norm and fused loss head ----
    be.rmsNorm({
      x: seg.xs[this.L],
      w: this.param(this.normName(trunk)),
      y: seg.hf,
      rstd: seg.rstdF,
      rows,
      dim: H,
      eps: this.config.rms_norm_eps,
    });
    if (hasTargets || st.keptLogits) this.lossHead(st, seg);
    return seg;
  }

  /** Per-label losses, and the logits / hidden states the caller asked for, read back from the pass's segments. */
  private async readResults(st: PassState, opts: ForwardOptions): Promise<ForwardResult> {
    const { inp, B, T, segments } = st;
    const result: ForwardResult = { lossSum: 0, labelCount: 0 };
    if (inp.labels) {
      const lossAt = new Float32Array(B * T);
      for (const seg of segments) {
        if (!seg.hasTargets) continue;
        const l = (await this.be.read(seg.losses, 0, seg.rows)) as Float32Array;
        for (let b = 0; b < B; b++)
          for (let i = 0; i < seg.lens[b]; i++) {
            const t = seg.starts[b] + i;
            if (t + 1 < T) lossAt[b * T + t + 1] = l[seg.first[b] + i];
          }
      }
      for (let i = 0; i < B * T; i++)
        if (inp.labels[i] !== -100 && i % T !== 0) {
          result.lossSum += lossAt[i];
          result.labelCount++;
        }
      result.lossAt = lossAt;
    }
    const kept = st.keptLogits;
    if (kept) result.logits = await this.collectRows(segments, B, T, this.V, (s) => kept.get(s)!);
    if (opts.wantHidden) result.hidden = await this.collectRows(segments, B, T, this.H, (s) => s.hf);
    return result;
  }

  /** Copies each sequence's last final-norm hidden state into `lh` ([B, H]) and reads it (and its logits if asked). */
  private async readLastRows(st: PassState, lh: Tensor, wantLogits: boolean): Promise<Pick<ForwardResult, 'lastLogits' | 'lastHidden'>> {
    const be = this.be,
      B = st.B,
      H = this.H,
      V = this.V;
    const last = st.segments[st.segments.length - 1];
    // position-cut passes give every sequence the same rows per segment (lens[0]), whatever their offsets
    const n = last.Tc || last.lens[0];
    if (last.lens.some((x) => x !== n)) throw new Error('forward: wantLastLogits / a cache needs the same positions per sequence');
    be.copy2d({ src: last.hf, dst: lh, rows: B, cols: H, srcOff: (n - 1) * H, srcStride: n * H, dstStride: H });
    const out: Pick<ForwardResult, 'lastLogits' | 'lastHidden'> = {};
    if (wantLogits) {
      const lg = st.arena.take(B * V);
      be.matmul({ a: lh, b: this.param(this.lmHeadName()), c: lg, M: B, N: V, K: H, transB: true });
      out.lastLogits = (await be.read(lg, 0, B * V)) as Float32Array;
    }
    out.lastHidden = (await be.read(lh, 0, B * H)) as Float32Array;
    return out;
  }

  private async collectRows(segments: Segment[], B: number, T: number, width: number, pick: (s: Segment) => Tensor): Promise<Float32Array> {
    const out = new Float32Array(B * T * width);
    for (const seg of segments) {
      const d = (await this.be.read(pick(seg), 0, seg.rows * width)) as Float32Array;
      for (let b = 0; b < B; b++) out.set(d.subarray(seg.first[b] * width, seg.first[b + 1] * width), (b * T + seg.starts[b]) * width);
    }
    return out;
  }

  private layerForward(seg: Segment, l: number, kc: Tensor, vc: Tensor, B: number, start: number, cap: number, arena: Arena): Tensor {
    const { be, config: c, H, D, KV, I } = this;
    const rows = seg.rows;
    const Hq = c.num_attention_heads,
      Hkv = c.num_key_value_heads;
    const W = this.layer(l, seg.trunk, false) as LayerTensors;
    const x = seg.xs[l];
    const a = {
      xn: arena.take(rows * H),
      rstd1: arena.take(rows),
      q: arena.take(rows * H),
      att: arena.take(rows * H),
      lse: arena.take(Hq * rows),
      x2: arena.take(rows * H),
      xn2: arena.take(rows * H),
      rstd2: arena.take(rows),
      gate: arena.take(rows * I),
      up: arena.take(rows * I),
    };
    be.rmsNorm({ x, w: W.ln1, y: a.xn, rstd: a.rstd1, rows, dim: H, eps: c.rms_norm_eps });
    this.tmp.reset();
    const k = this.tmp.take(rows * KV),
      v = this.tmp.take(rows * KV);
    be.matmul({ a: a.xn, b: W.q, c: a.q, M: rows, N: H, K: H, transB: true, bias: W.qb });
    be.matmul({ a: a.xn, b: W.k, c: k, M: rows, N: KV, K: H, transB: true, bias: W.kb });
    be.matmul({ a: a.xn, b: W.v, c: v, M: rows, N: KV, K: H, transB: true, bias: W.vb });
    be.rope({ x: a.q, pos: seg.pos, rows, heads: Hq, D, theta: c.rope_theta });
    be.rope({ x: k, pos: seg.pos, rows, heads: Hkv, D, theta: c.rope_theta });
    for (let b = 0; b < B; b++) {
      if (!seg.lens[b]) continue;
      const dst = (b * cap + seg.kvStarts[b]) * KV;
      const cols = seg.lens[b] * KV;
      be.copy2d({ src: k, dst: kc, rows: 1, cols, srcOff: seg.first[b] * KV, srcStride: 0, dstOff: dst, dstStride: 0 });
      be.copy2d({ src: v, dst: vc, rows: 1, cols, srcOff: seg.first[b] * KV, srcStride: 0, dstOff: dst, dstStride: 0 });
    }
    be.attention({ q: a.q, kCache: kc, vCache: vc, out: a.att, lse: a.lse, ...this.attentionShape(seg, start, cap) });
    // the residual adds are part of the output projections' stores (the matmul's residual argument)
    be.matmul({ a: a.att, b: W.o, c: a.x2, M: rows, N: H, K: H, transB: true, residual: x });
    be.rmsNorm({ x: a.x2, w: W.ln2, y: a.xn2, rstd: a.rstd2, rows, dim: H, eps: c.rms_norm_eps });
    be.matmul({ a: a.xn2, b: W.gate, c: a.gate, M: rows, N: I, K: H, transB: true });
    be.matmul({ a: a.xn2, b: W.up, c: a.up, M: rows, N: I, K: H, transB: true });
    // silu(gate) * up is computed as the down projection loads it (the matmul's swigluGate argument): never stored
    const out = arena.take(rows * H);
    be.matmul({ a: a.up, b: W.down, c: out, M: rows, N: H, K: I, transB: true, swigluGate: a.gate, residual: a.x2 });
    seg.acts.push(a);
    return out;
  }

  /**
   * The attention shape of a segment pass: position-aligned, B sequences of Tc rows from qStart; aligned, every
   * sequence at its own start with its own rows (qStarts, qRows), Tq then counting the rows of all of them.
   */
  private attentionShape(seg: Segment, start: number, cap: number) {
    const c = this.config;
    const base = { B: seg.starts.length, Hq: c.num_attention_heads, Hkv: c.num_key_value_heads, D: this.D, kvCap: cap };
    if (!seg.qStarts) return { ...base, Tq: seg.Tc, qStart: start + seg.starts[0] };
    return { ...base, Tq: seg.rows, qStart: start + seg.maxStart, qStarts: seg.qStarts, qRows: seg.qRows! };
  }

  /** Largest number of rows whose logits fit one chunk (bounded by the binding size and 64 MiB). */
  private lossChunkRows(): number {
    const bytes = Math.min(this.be.maxBindingBytes, 64 << 20);
    return Math.max(1, Math.floor(bytes / 4 / this.V));
  }

  /**
   * LM head + softmax cross-entropy, a chunk of rows at a time so the [rows, V] logits never exist at once.
   * With grad, the gradient w.r.t. the final hidden state and the LM-head weight is formed right here.
   */
  private lossHead(st: PassState, seg: Segment): void {
    const be = this.be,
      H = this.H,
      V = this.V,
      arena = st.arena,
      grad = st.grad;
    const Wname = this.lmHeadName();
    const W = this.param(Wname),
      dW = grad ? this.grads.get(Wname) : undefined;
    const R = this.lossChunkRows();
    let kept: Tensor | null = null;
    if (st.keptLogits) {
      kept = arena.take(seg.rows * V);
      st.keptLogits.set(seg, kept);
    }
    for (let r0 = 0; r0 < seg.rows; r0 += R) {
      const n = Math.min(R, seg.rows - r0);
      const logits = (st.logitsChunk ??= arena.take(R * V));
      be.matmul({ a: seg.hf, b: W, c: logits, M: n, N: V, K: H, transB: true, aOff: r0 * H });
      if (kept) be.copy2d({ src: logits, dst: kept, rows: 1, cols: n * V, srcStride: 0, dstOff: r0 * V, dstStride: 0 });
      const withGrad = grad && seg.weights !== null;
      be.crossEntropy({
        logits,
        labels: seg.targets,
        losses: seg.losses,
        rows: n,
        V,
        weights: withGrad ? seg.weights! : undefined,
        labelOff: r0,
        lossOff: r0,
      });
      if (withGrad) {
        be.matmul({ a: logits, b: W, c: seg.dHf!, M: n, N: H, K: V, cOff: r0 * H, accumulate: true });
        if (dW) be.matmul({ a: logits, b: seg.hf, c: dW, M: V, N: H, K: n, transA: true, bOff: r0 * H, accumulate: true });
      }
    }
  }

  /**
   * Adds `grad` ([B*T*H], d(extra loss)/d(final-norm hidden state)) to the pending grad pass, for losses on hidden
   * states (e.g. distillation toward a teacher's hidden states). Call between forward({grad: true}) and backward().
   */
  addHiddenGrad(grad: Float32Array): void {
    const pass = this.pass;
    if (!pass) throw new Error('addHiddenGrad: no forward({grad: true}) pass pending');
    const { B, T } = pass.input,
      H = this.H;
    if (grad.length !== B * T * H) throw new Error(`addHiddenGrad: got ${grad.length} values, expected B*T*H = ${B * T * H}`);
    for (const seg of pass.segments) {
      const part = new Float32Array(seg.rows * H);
      let any = false;
      for (let b = 0; b < B; b++) {
        const src = grad.subarray((b * T + seg.starts[b]) * H, (b * T + seg.starts[b] + seg.lens[b]) * H);
        part.set(src, seg.first[b] * H);
        any ||= src.some((x) => x !== 0);
      }
      if (!any) continue;
      const t = this.arena.take(part.length);
      this.be.upload(t, part);
      this.be.axpy({ alpha: 1, x: t, y: seg.dHf!, n: part.length });
    }
  }

  /** Backpropagates the last grad pass, accumulating into this.grads (call zeroGrads() first). */
  backward(): void {
    const pass = this.pass;
    if (!pass) throw new Error('backward: no forward({grad: true}) pass to backpropagate');
    const be = this.be,
      H = this.H,
      rows0 = pass.input.B;
    const B = rows0;
    for (let j = pass.segments.length - 1; j >= 0; j--) {
      const seg = pass.segments[j];
      const rows = seg.rows;
      const normName = this.normName(seg.trunk);
      let dx = this.arena.take(rows * H, 'f32', true);
      be.rmsNormBackward({
        dy: seg.dHf!,
        x: seg.xs[this.L],
        w: this.param(normName),
        rstd: seg.rstdF,
        dx,
        dw: this.grads.get(normName) ?? this.arena.take(H),
        rows,
        dim: H,
      });
      for (let l = this.L - 1; l >= 0; l--)
        dx = this.layerBackward(seg, l, dx, pass.kc[l], pass.vc[l], pass.dK[l], pass.dV[l], B, pass.cap);
      // dx is now the gradient of the input embeddings
      const dEmb = this.grads.get(TOKEN_EMBEDDINGS);
      if (dEmb) be.embeddingBackward({ ids: seg.ids, dOut: dx, dTable: dEmb, rows, dim: H });
      const dExtra = this.grads.get(LATENT_EMBEDDINGS);
      if (seg.extra && dExtra) be.embeddingBackward({ ids: seg.extra, dOut: dx, dTable: dExtra, rows, dim: H });
      for (const f of seg.feed) {
        const prev = pass.segments[j - 1];
        const hOff = (prev.first[f.b] + (f.p - 1 - prev.starts[f.b])) * H;
        this.feedback.backward(be, dx, f.row * H, prev.dHf!, hOff, H, this.feedbackCtx, prev.hf, hOff);
      }
    }
    this.pass = null;
  }

  private layerBackward(
    seg: Segment,
    l: number,
    dxOut: Tensor,
    kc: Tensor,
    vc: Tensor,
    dK: Tensor,
    dV: Tensor,
    B: number,
    cap: number,
  ): Tensor {
    const { be, config: c, H, D, KV, I } = this;
    const rows = seg.rows;
    const ar = this.tmp;
    ar.reset();
    const Hq = c.num_attention_heads,
      Hkv = c.num_key_value_heads;
    const W = this.layer(l, seg.trunk, false) as LayerTensors;
    const G = this.layer(l, seg.trunk, true);
    const a = seg.acts[l];
    const x = seg.xs[l];
    const scratchH = () => ar.take(H, 'f32', true);
    // MLP: out = x2 + down(swiglu(gate(xn2), up(xn2)))
    const dact = ar.take(rows * I);
    be.matmul({ a: dxOut, b: W.down, c: dact, M: rows, N: I, K: H });
    if (G.down) {
      // the activation the forward did not keep, recomputed for the down projection's weight gradient
      const act = ar.take(rows * I);
      be.swiglu({ gate: a.gate, up: a.up, out: act, n: rows * I });
      be.matmul({ a: dxOut, b: act, c: G.down, M: H, N: I, K: rows, transA: true, accumulate: true });
    }
    const dgate = ar.take(rows * I, 'f32', true),
      dup = ar.take(rows * I, 'f32', true);
    be.swigluBackward({ dOut: dact, gate: a.gate, up: a.up, dGate: dgate, dUp: dup, n: rows * I });
    const dxn2 = ar.take(rows * H);
    be.matmul({ a: dgate, b: W.gate, c: dxn2, M: rows, N: H, K: I });
    be.matmul({ a: dup, b: W.up, c: dxn2, M: rows, N: H, K: I, accumulate: true });
    if (G.gate) be.matmul({ a: dgate, b: a.xn2, c: G.gate, M: I, N: H, K: rows, transA: true, accumulate: true });
    if (G.up) be.matmul({ a: dup, b: a.xn2, c: G.up, M: I, N: H, K: rows, transA: true, accumulate: true });
    const dx2 = ar.take(rows * H);
    be.copy2d({ src: dxOut, dst: dx2, rows: 1, cols: rows * H, srcStride: 0, dstStride: 0 });
    be.rmsNormBackward({ dy: dxn2, x: a.x2, w: W.ln2, rstd: a.rstd2, dx: dx2, dw: G.ln2 ?? scratchH(), rows, dim: H });
    // attention: x2 = x + o(attn(rope(q(xn)), rope(k(xn)), v(xn)))
    const datt = ar.take(rows * H);
    be.matmul({ a: dx2, b: W.o, c: datt, M: rows, N: H, K: H });
    if (G.o) be.matmul({ a: dx2, b: a.att, c: G.o, M: H, N: H, K: rows, transA: true, accumulate: true });
    const dq = ar.take(rows * H, 'f32', true);
    const shape = this.attentionShape(seg, 0, cap);
    be.attentionBackward({ dOut: datt, q: a.q, kCache: kc, vCache: vc, out: a.att, lse: a.lse, dq, dkCache: dK, dvCache: dV, ...shape });
    // this segment's own rows of dK/dV are complete now: later segments ran their backward first
    const dk = ar.take(rows * KV),
      dv = ar.take(rows * KV);
    for (let b = 0; b < B; b++) {
      if (!seg.lens[b]) continue;
      const src = (b * cap + seg.kvStarts[b]) * KV;
      const cols = seg.lens[b] * KV;
      be.copy2d({ src: dK, dst: dk, rows: 1, cols, srcOff: src, srcStride: 0, dstOff: seg.first[b] * KV, dstStride: 0 });
      be.copy2d({ src: dV, dst: dv, rows: 1, cols, srcOff: src, srcStride: 0, dstOff: seg.first[b] * KV, dstStride: 0 });
    }
    be.rope({ x: dq, pos: seg.pos, rows, heads: Hq, D, theta: c.rope_theta, inverse: true });
    be.rope({ x: dk, pos: seg.pos, rows, heads: Hkv, D, theta: c.rope_theta, inverse: true });
    const dxn = ar.take(rows * H);
    be.matmul({ a: dq, b: W.q, c: dxn, M: rows, N: H, K: H });
    be.matmul({ a: dk, b: W.k, c: dxn, M: rows, N: H, K: KV, accumulate: true });
    be.matmul({ a: dv, b: W.v, c: dxn, M: rows, N: H, K: KV, accumulate: true });
    if (G.q) be.matmul({ a: dq, b: a.xn, c: G.q, M: H, N: H, K: rows, transA: true, accumulate: true });
    if (G.k) be.matmul({ a: dk, b: a.xn, c: G.k, M: KV, N: H, K: rows, transA: true, accumulate: true });
    if (G.v) be.matmul({ a: dv, b: a.xn, c: G.v, M: KV, N: H, K: rows, transA: true, accumulate: true });
    if (G.qb) be.sumRows({ dY: dq, dBias: G.qb, rows, cols: H });
    if (G.kb) be.sumRows({ dY: dk, dBias: G.kb, rows, cols: KV });
    if (G.vb) be.sumRows({ dY: dv, dBias: G.vb, rows, cols: KV });
    const dx = this.arena.take(rows * H);
    be.copy2d({ src: dx2, dst: dx, rows: 1, cols: rows * H, srcStride: 0, dstStride: 0 });
    be.rmsNormBackward({ dy: dxn, x, w: W.ln1, rstd: a.rstd1, dx, dw: G.ln1 ?? scratchH(), rows, dim: H });
    return dx;
  }

  /** Reads every parameter back (HF names, f32). */
  async exportTensors(filter: (name: string) => boolean = () => true): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, t] of this.params)
      if (filter(name)) out.set(name, { shape: this.shapes.get(name)!, data: (await this.be.read(t)) as Float32Array });
    return out;
  }

  /**
   * The inputs this model's feedback makes of final-norm hidden states ([n, H] in, [n, H] out): what a latent
   * position is fed. The usage probes swap these between examples, so a swapped latent is a real input of the
   * feedback in use, not a raw hidden state (identical for identity feedback).
   */
  async applyFeedback(hidden: Float32Array): Promise<Float32Array> {
    const H = this.H,
      n = hidden.length / H;
    if (!Number.isInteger(n)) throw new Error(`applyFeedback: ${hidden.length} values are not rows of H = ${H}`);
    if (n === 0) return new Float32Array(0);
    if (this.busy) throw new Error('applyFeedback: a forward on this model is still running (await it first)');
    const h = this.be.alloc(n * H, 'f32', 'feedback:h'),
      x = this.be.alloc(n * H, 'f32', 'feedback:x');
    try {
      this.be.upload(h, hidden);
      for (let r = 0; r < n; r++) this.feedback.forward(this.be, h, r * H, x, r * H, H, this.feedbackCtx);
      return (await this.be.read(x)) as Float32Array;
    } finally {
      this.be.free(h);
      this.be.free(x);
    }
  }

  async readGrad(name: string): Promise<Float32Array> {
    const g = this.grads.get(name);
    if (!g) throw new Error(`no gradient for '${name}' (frozen, or zeroGrads() not called)`);
    return (await this.be.read(g)) as Float32Array;
  }

  destroy(): void {
    this.arena.destroy();
    this.scratch.destroy();
    this.tmp.destroy();
    this.feedback.dispose?.();
    for (const t of [...this.params.values(), ...this.grads.values()]) this.be.free(t);
    this.params.clear();
    this.grads.clear();
  }
}
