// RL's initial policy from a phase-1 checkpoint (`latentlm rl --init DIR`): its weights, marker embeddings and any
// latent parameters go into the base model, its start/end heads become the policy's, and the latent feedback it
// trained with is what RL must run (src/rl/feedback.ts), or the checkpoint is refused.
import type { Qwen2 } from '../model/qwen2.js';
import { LogisticHead } from '../latent/heads.js';
import { loadCheckpoint, readCheckpointState } from '../latent/checkpoint.js';
import { hasLatentTrunk } from '../model/latent-params.js';
import { modelTensorSizes, phase1Feedback, requireFeedbackTensors, type FeedbackSpec } from './feedback.js';

export interface Phase1Start {
  heads: { start?: LogisticHead; end?: LogisticHead };
  /** The phase-1 run's trajectory options (condition, k, ...). */
  options: Record<string, unknown>;
  feedback: FeedbackSpec;
  step: number;
  /** The directory actually read (`DIR.old` when a crash left the checkpoint there). */
  dir: string;
}

/** Loads the phase-1 checkpoint in `dir` into `model` (the base model it was trained from). */
export async function loadPhase1Checkpoint(dir: string, model: Qwen2): Promise<Phase1Start> {
  const saved = await readCheckpointState(dir);
  if (!saved) throw new Error(`--init ${dir}: no checkpoint there (expected state.json + model.safetensors)`);
  const st = saved.state;
  if (st.kind === 'rl') throw new Error(`--init ${dir}: this is an RL checkpoint; continue it with --out <its run directory> --resume`);
  // refused before any weight is read
  const feedback = phase1Feedback(st, `${saved.dir}/state.json`);
  await loadCheckpoint(saved.dir, model, null);
  if (hasLatentTrunk(model.params.keys())) model.twoTrunk = true;
  requireFeedbackTensors(feedback, modelTensorSizes(model), model.H, `${saved.dir}/model.safetensors`);
  const heads: Phase1Start['heads'] = {};
  if (st.heads.start) heads.start = LogisticHead.fromJSON(st.heads.start);
  if (st.heads.end) heads.end = LogisticHead.fromJSON(st.heads.end);
  return { heads, options: st.options, feedback, step: st.step, dir: saved.dir };
}
