// The public API, runtime-neutral: nothing here imports node: modules at load time (file access and the Dawn
// binding are reached through dynamic imports only when a path or the Node WebGPU adapter is actually used).
export { Tokenizer } from './text/tokenizer.js';
export type { AddedToken, EncodeOptions, TokenizerSource } from './text/tokenizer.js';
export { loadGsm8k, parseGsm8k, splitAnswer } from './data/gsm8k.js';
export type { Annotation, Gsm8kDataset, Gsm8kExample, SplitAnswer } from './data/gsm8k.js';
export { expandAnnotation, expandAnnotations, expansionReport, formatExpandReport } from './data/expand.js';
export type { ExpandFailure, ExpandOptions, ExpandReport, Expansion } from './data/expand.js';
export { reward, rewardBatch } from './data/grade.js';
export type { RewardOptions, RewardResult } from './data/grade.js';
export { generateProblems, SYNTH_PRESETS } from './data/synth.js';
export type { SynthOptions, SynthRow } from './data/synth.js';
export { Rng } from './data/rng.js';

export { createBackend, CpuBackend } from './backend/index.js';
export type { Backend, BackendName, Tensor } from './backend/index.js';
export type { AdamWParams, AttentionShape } from './backend/types.js';
export type { MatmulOptions, OpArgs, OpName } from './backend/ops.js';

export { Qwen2, Kind, identityFeedback, scaledFeedback, qwen2ParamShapes } from './model/qwen2.js';
export { gatedFeedback, addGateParams, gateValues, DEFAULT_GATE_INIT, type GatedFeedbackOptions } from './model/gated-feedback.js';
export type {
  FeedbackContext,
  ForwardInput,
  ForwardOptions,
  ForwardResult,
  KVCache,
  LatentFeedback,
  Qwen2Config,
  Trunk,
} from './model/qwen2.js';
export { VocabMap, RestrictedTokenizer } from './text/vocab-map.js';
export { parseSafetensors, writeSafetensors, toFloat32 } from './io/safetensors.js';
export { loadHfCheckpoint, saveHfCheckpoint, parseQwen2Config } from './model/hf.js';
export { AdamW, defaultAdamW } from './train/adamw.js';
export type { AdamWConfig } from './train/adamw.js';

export { buildSequence, removeLatents } from './latent/sequence.js';
export type { Condition, LatentSequence, SplitRow } from './latent/sequence.js';
export { LogisticHead } from './latent/heads.js';
export { generate, generateMany } from './generation/generate.js';
export type { Generation, GenerateOptions } from './generation/generate.js';
export { latentUsage, LatentDecoder, collectLatents, usageVerdict } from './latent/diagnostics.js';
export { Phase1Trainer } from './latent/trainer.js';
export type { Phase1Options, StepRecord, EvalRecord } from './latent/trainer.js';
export { phase1Report } from './latent/report.js';
export { compareRuns, type RunForComparison, type RunComparison } from './latent/compare.js';
export { linePlot, barPlot, multiPanel } from './io/plot.js';
export { loadDefaultModel, loadModel, loadData, splitRow, wrapTokenizer } from './setup/loaders.js';
export type { ModelTokenizer } from './setup/loaders.js';
export { resolveQwen2Source } from './model/hf.js';
export { hubRepoOf, parseRepoId, resolveRepo, type HubOptions, type HubRepo } from './hub/index.js';
export { loadHubDataset, type HubDataset } from './hub/dataset.js';
export { loadChatTemplate, type ChatMessage, type ChatTemplate } from './text/chat-template.js';
export { applyChatTemplate } from './setup/loaders.js';
