// The schema of a training checkpoint's state.json, one type per trainer, versioned.
// state.json holds what the tensors (model.safetensors, optimizer.safetensors) do not: the step, the random streams,
// the data order and position, the host-side heads and their optimizer moments, and the options the run was started
// with (so --resume can refuse a different run). Typing it is what keeps a field from being forgotten (the heads'
// Adam moments once were) and a restore from reading a field that was never written.
//
// Versions:
//   1  no "version" field. Phase 1 wrote no "kind"; RL wrote "kind": "rl". Older phase-1 runs lack "headAdam",
//      "records", "pendingEval" and "feedbackScale"; older RL runs lack "headOpt" and "refHeads". Read as version 2
//      with those absent (each reader already treats them as optional).
//   2  "version": 2 and "kind": "phase1" | "rl" on every checkpoint. RL runs before "feedback" was written always ran
//      identity feedback (whatever their --init had trained with), so an absent "feedback" reads as identity.
// A checkpoint from a newer version is refused with both version numbers, never guessed at.
import type { RngState } from '../data/rng.js';

export const CHECKPOINT_VERSION = 2;

/** A logistic head's weights (LogisticHead.toJSON). */
export interface HeadWeights {
  name: string;
  dim: number;
  w: number[];
  b: number;
}

/** Phase 1's head optimizer: weight moments in f32 arrays, the bias moments apart (LogisticHead.adamState). */
export interface HeadAdamState {
  m: number[];
  v: number[];
  mb: number;
  vb: number;
  t: number;
}

/** RL's head optimizer: one moment array over [w..., b] (HostAdam.toJSON). */
export interface HostAdamState {
  t: number;
  m: number[];
  v: number[];
}

/**
 * How an RL run feeds a latent's hidden state back (src/model/qwen2.ts LatentFeedback), as the run's checkpoints
 * record it: the kind and the numbers that make it, not the learned gate (its tensors are in model.safetensors).
 * Phase 1 records the same in its own fields (options.feedback, options.feedbackTemperature, feedbackScale).
 */
export type FeedbackSpec = { kind: 'identity' } | { kind: 'scaled'; scale: number } | { kind: 'gated'; temperature: number };

/** What both trainers store. */
interface CheckpointCommon {
  version: typeof CHECKPOINT_VERSION;
  step: number;
  /** The data order of the current epoch, the position in it, and the epoch number. */
  order: number[];
  cursor: number;
  epoch: number;
  /** Records logged to metrics.jsonl when the checkpoint was written (a resume truncates the log to it). */
  records?: number;
  /** An evaluation was due at `step` but interrupted (Ctrl-C): the resumed run does it first. */
  pendingEval?: boolean;
}

export interface Phase1CheckpointState extends CheckpointCommon {
  kind: 'phase1';
  rng: RngState;
  heads: { start: HeadWeights; end: HeadWeights };
  headAdam?: { start: HeadAdamState; end: HeadAdamState };
  /** Everything that shapes the run's numbers (Phase1Trainer.trajectoryOptions): --resume compares them. */
  options: Record<string, unknown>;
  /** The scale of 'scaled' feedback, measured once at the start of the run. */
  feedbackScale?: number;
}

export interface RlCheckpointState extends CheckpointCommon {
  kind: 'rl';
  rng: { data: RngState; sample: RngState };
  heads: { start: HeadWeights | null; end: HeadWeights | null };
  headOpt?: { start: HostAdamState | null; end: HostAdamState | null };
  /** The reference policy's heads (beta > 0): frozen copies of the heads at the start of the run. */
  refHeads?: { start: HeadWeights | null; end: HeadWeights | null };
  options: { condition: string; group: number; seed: number; beta: number; mode: 'two-trunk' | 'full' };
  /** The latent feedback of the policy and of the reference (absent: identity, see version 2 above). */
  feedback?: FeedbackSpec;
  /** The CLI's record of the run's flags (--resume compares them). */
  trajectory?: Record<string, unknown>;
}

export type CheckpointState = Phase1CheckpointState | RlCheckpointState;

/** What the caller of a trainer may add to each checkpoint (the CLI: record count, options, interrupted eval). */
export type RlRunState = Pick<RlCheckpointState, 'records' | 'trajectory' | 'pendingEval'>;

/**
 * A state.json's parsed JSON as a checkpoint state of the current version: migrates older versions, and throws
 * naming the file and the version when a field is missing or of the wrong type, or the version is unknown.
 */
export function parseCheckpointState(json: unknown, file: string): CheckpointState {
  const fail = (what: string, version: unknown): never => {
    throw new Error(`${file}: ${what} (checkpoint version ${version})`);
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) return fail('not a checkpoint state (expected a JSON object)', 'unknown');
  const j = json as Record<string, unknown>;
  const version = j.version ?? 1;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1)
    return fail(`"version" must be a positive integer, got ${JSON.stringify(j.version)}`, JSON.stringify(j.version));
  if (version > CHECKPOINT_VERSION)
    return fail(`written by a newer latentlm: this one reads checkpoint versions 1 to ${CHECKPOINT_VERSION}`, version);
  const kind = j.kind ?? (version === 1 ? 'phase1' : undefined);
  if (kind !== 'phase1' && kind !== 'rl') return fail(`"kind" must be "phase1" or "rl", got ${JSON.stringify(j.kind)}`, version);
  const label = `${kind === 'rl' ? 'RL' : 'phase-1'} checkpoint version ${version}`;
  const bad = (field: string, want: string): never => {
    const got = pick(j, field),
      shown = got === undefined ? 'nothing' : String(JSON.stringify(got)).slice(0, 60);
    throw new Error(`${file}: field "${field}" must be ${want}, got ${shown} (${label})`);
  };
  const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  for (const f of ['step', 'cursor', 'epoch']) if (!isInt(j[f])) bad(f, 'a non-negative integer');
  if (!Array.isArray(j.order) || !j.order.every(isInt)) bad('order', 'an array of non-negative integers');
  if (j.records !== undefined && !isInt(j.records)) bad('records', 'a non-negative integer');
  if (j.pendingEval !== undefined && typeof j.pendingEval !== 'boolean') bad('pendingEval', 'true or false');
  if (!j.options || typeof j.options !== 'object') bad('options', 'an object');
  const heads = j.heads as Record<string, unknown> | undefined;
  if (!heads || typeof heads !== 'object') bad('heads', 'an object with "start" and "end"');
  const isHead = (h: unknown) =>
    !!h && typeof h === 'object' && Array.isArray((h as HeadWeights).w) && typeof (h as HeadWeights).b === 'number';
  const rng = j.rng as Record<string, unknown> | undefined;
  if (kind === 'phase1') {
    if (!rng || typeof rng !== 'object') bad('rng', 'a random-stream state');
    for (const h of ['start', 'end']) if (!isHead(heads![h])) bad(`heads.${h}`, 'a head ({ name, dim, w, b })');
    if (j.feedbackScale !== undefined && typeof j.feedbackScale !== 'number') bad('feedbackScale', 'a number');
  } else {
    if (!rng || typeof rng !== 'object' || !rng.data || !rng.sample) bad('rng', '{ data, sample } random-stream states');
    for (const h of ['start', 'end'])
      if (heads![h] !== null && !isHead(heads![h])) bad(`heads.${h}`, 'a head ({ name, dim, w, b }) or null');
    if (j.feedback !== undefined && !isFeedbackSpec(j.feedback))
      bad('feedback', '{ "kind": "identity" }, { "kind": "scaled", "scale": X > 0 } or { "kind": "gated", "temperature": X > 0 }');
  }
  // version 1 -> 2: the version and the phase-1 kind were implicit; nothing else changed
  return { ...j, version: CHECKPOINT_VERSION, kind } as CheckpointState;
}

function isFeedbackSpec(v: unknown): v is FeedbackSpec {
  if (!v || typeof v !== 'object') return false;
  const f = v as Record<string, unknown>;
  const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;
  const only = (...keys: string[]) => Object.keys(f).every((k) => keys.includes(k));
  if (f.kind === 'identity') return only('kind');
  if (f.kind === 'scaled') return only('kind', 'scale') && positive(f.scale);
  if (f.kind === 'gated') return only('kind', 'temperature') && positive(f.temperature);
  return false;
}

function pick(j: Record<string, unknown>, path: string): unknown {
  let v: unknown = j;
  for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}
