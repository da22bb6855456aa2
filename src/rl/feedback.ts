// The latent feedback of an RL run: read from the phase-1 checkpoint it starts from, installed in the policy and in
// the reference model, recorded in every RL checkpoint and checked again on resume. Without it an RL run from a
// `scaled` or `gated` phase-1 checkpoint silently fed latents back as identity: another function of the same weights.
//
// A checkpoint whose feedback cannot be given back is refused, naming the file and what it lacks; nothing falls back
// to identity. The gate's parameters (gated feedback) are ordinary model tensors under `latent.`, so they train,
// save and resume with the other latent parameters; only the kind and its numbers (scale, temperature) live here.
import { scaledFeedback, identityFeedback, type LatentFeedback, type Qwen2 } from '../model/qwen2.js';
import { gatedFeedback } from '../model/gated-feedback.js';
import { GATE_BIAS, GATE_WEIGHT } from '../model/latent-params.js';
import type { FeedbackSpec, Phase1CheckpointState } from '../train/checkpoint-schema.js';

export type { FeedbackSpec };

export const IDENTITY_FEEDBACK: FeedbackSpec = { kind: 'identity' };

/** The tensors gated feedback reads beyond the model's own, with their sizes for a model of hidden size H. */
const gateTensors = (H: number): [string, number][] => [
  [GATE_WEIGHT, H * H],
  [GATE_BIAS, H],
];

/** A readable name ("identity", "scaled(0.412)", "gated(τ=1)"). */
export function feedbackLabel(f: FeedbackSpec): string {
  if (f.kind === 'scaled') return `scaled(${f.scale.toPrecision(3)})`;
  if (f.kind === 'gated') return `gated(τ=${f.temperature})`;
  return 'identity';
}

export const sameFeedback = (a: FeedbackSpec, b: FeedbackSpec) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The feedback a phase-1 run trained with, from its state.json (`file`, named in errors): options.feedback (absent in
 * runs older than the option: identity), feedbackScale (scaled) and options.feedbackTemperature (gated; default 1, the
 * phase-1 trainer's). The gate's tensors are checked by requireFeedbackTensors once the weights are loaded.
 */
export function phase1Feedback(st: Phase1CheckpointState, file: string): FeedbackSpec {
  const kind = st.options.feedback ?? 'identity';
  if (kind === 'identity') return IDENTITY_FEEDBACK;
  if (kind === 'scaled') {
    const scale = st.feedbackScale;
    if (typeof scale !== 'number' || !(scale > 0) || !Number.isFinite(scale))
      throw new Error(
        `${file}: the run used scaled feedback but "feedbackScale" is ${scale === undefined ? 'missing' : JSON.stringify(scale)}: the scale it fed latents back with is lost, so RL cannot continue that model`,
      );
    return { kind, scale };
  }
  if (kind === 'gated') {
    const temperature = st.options.feedbackTemperature ?? 1;
    if (typeof temperature !== 'number' || !(temperature > 0) || !Number.isFinite(temperature))
      throw new Error(
        `${file}: the run used gated feedback but "options.feedbackTemperature" is ${JSON.stringify(temperature)}, not a positive number`,
      );
    return { kind, temperature };
  }
  throw new Error(`${file}: "options.feedback" is ${JSON.stringify(kind)}; this latentlm knows identity, scaled and gated feedback`);
}

/**
 * Throws naming `source` when `have` (tensor name -> element count: a checkpoint's model.safetensors, or the model
 * loaded from it) lacks a tensor the feedback reads, or holds it at another size.
 */
export function requireFeedbackTensors(f: FeedbackSpec, have: ReadonlyMap<string, number>, H: number, source: string): void {
  if (f.kind !== 'gated') return;
  const missing = gateTensors(H)
    .filter(([name, n]) => have.get(name) !== n)
    .map(([name, n]) => (have.has(name) ? `'${name}' has ${have.get(name)} elements, not ${n}` : `'${name}' is missing`));
  if (missing.length)
    throw new Error(
      `${source}: gated feedback needs the gate's parameters (${gateTensors(H)
        .map(([name]) => name)
        .join(', ')}), but ${missing.join(' and ')}`,
    );
}

/** Element counts of a model's parameters, for requireFeedbackTensors. */
export function modelTensorSizes(model: Qwen2): Map<string, number> {
  return new Map([...model.params].map(([name, t]) => [name, t.size]));
}

function makeFeedback(f: FeedbackSpec): LatentFeedback {
  if (f.kind === 'scaled') return scaledFeedback(f.scale);
  if (f.kind === 'gated') return gatedFeedback({ temperature: f.temperature });
  return identityFeedback;
}

/**
 * Installs the feedback in a model (a fresh instance each: gated feedback keeps scratch buffers per instance, which
 * the model frees on destroy), releasing the one it replaces. `what` names the model in the error when the gate's
 * parameters are absent.
 */
export function installFeedback(model: Qwen2, f: FeedbackSpec, what: string): void {
  requireFeedbackTensors(f, modelTensorSizes(model), model.H, what);
  model.feedback.dispose?.();
  model.feedback = makeFeedback(f);
}

/**
 * Element counts of the tensors in a local safetensors file, from its header alone (RL checkpoints are local
 * directories; the weights themselves are read by loadCheckpoint, which validates the whole file).
 */
export async function safetensorsSizes(file: string): Promise<Map<string, number>> {
  const fs = await import('node:fs/promises');
  const fh = await fs.open(file, 'r').catch((e: Error) => {
    throw new Error(`cannot read ${file}: ${e.message}`);
  });
  try {
    const { size } = await fh.stat();
    const len = new Uint8Array(8);
    const n = size >= 8 && (await fh.read(len, 0, 8, 0)).bytesRead === 8 ? Number(new DataView(len.buffer).getBigUint64(0, true)) : -1;
    if (n < 2 || n > size - 8) throw new Error(`${file}: not a safetensors file (header length ${n}, file size ${size})`);
    const header = new Uint8Array(n);
    await fh.read(header, 0, n, 8);
    let json: Record<string, { shape?: number[] }>;
    try {
      json = JSON.parse(new TextDecoder().decode(header));
    } catch (e) {
      throw new Error(`${file}: safetensors header is not valid JSON: ${(e as Error).message}`);
    }
    const out = new Map<string, number>();
    for (const [name, entry] of Object.entries(json))
      if (name !== '__metadata__' && Array.isArray(entry?.shape))
        out.set(
          name,
          entry.shape.reduce((a, b) => a * b, 1),
        );
    return out;
  } finally {
    await fh.close();
  }
}
