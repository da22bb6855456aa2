// The public API, runtime-neutral: nothing here imports node: modules at load time (file access and the Dawn
// binding are reached through dynamic imports only when a path or the Node WebGPU adapter is actually used).
export { Tokenizer } from './tokenizer.js';
export type { AddedToken, EncodeOptions, TokenizerSource } from './tokenizer.js';
export { loadGsm8k, parseGsm8k, splitAnswer } from './gsm8k.js';
export type { Annotation, Gsm8kDataset, Gsm8kExample, SplitAnswer } from './gsm8k.js';
export { expandAnnotation, expandAnnotations, expansionReport, formatExpandReport } from './expand.js';
export type { ExpandFailure, ExpandOptions, ExpandReport, Expansion } from './expand.js';
export { reward, rewardBatch } from './reward.js';
export type { RewardOptions, RewardResult } from './reward.js';
export { generateProblems, SYNTH_PRESETS } from './synth.js';
export type { SynthOptions, SynthRow } from './synth.js';
export { Rng } from './rng.js';

export { createBackend, CpuBackend } from './backend/index.js';
export type { Backend, BackendName, Tensor } from './backend/index.js';
export type { AdamWParams, AttentionShape, MatmulOptions } from './backend/types.js';

export { Qwen2, Kind, identityFeedback, scaledFeedback, qwen2ParamShapes } from './model/qwen2.js';
export type { ForwardInput, ForwardOptions, ForwardResult, KVCache, LatentFeedback, Qwen2Config, Trunk } from './model/qwen2.js';
export { VocabMap, RestrictedTokenizer } from './model/vocab-map.js';
export { parseSafetensors, writeSafetensors, toFloat32 } from './safetensors.js';
export { loadHfCheckpoint, saveHfCheckpoint, parseQwen2Config } from './hf.js';
export { AdamW, defaultAdamW } from './train/adamw.js';
export type { AdamWConfig } from './train/adamw.js';

export { buildSequence, removeLatents } from './latent/sequence.js';
export type { Condition, LatentSequence, SplitRow } from './latent/sequence.js';
export { LogisticHead } from './latent/heads.js';
export { generate } from './generation/generate.js';
export type { Generation, GenerateOptions } from './generation/generate.js';
export { latentUsage, LatentDecoder, collectLatents, usageVerdict } from './latent/diagnostics.js';
export { Phase1Trainer } from './latent/trainer.js';
export type { Phase1Options, StepRecord, EvalRecord } from './latent/trainer.js';
export { phase1Report } from './latent/report.js';
export { compareRuns, type RunForComparison, type RunComparison } from './latent/compare.js';
export { linePlot, barPlot, multiPanel } from './plot.js';
export { loadDefaultModel, loadModel, loadData, splitRow, wrapTokenizer } from './app/setup.js';
export type { ModelTokenizer } from './app/setup.js';
export { resolveQwen2Source } from './hf.js';
export { hubRepoOf, parseRepoId, resolveRepo, type HubOptions, type HubRepo } from './hub/index.js';
export { loadHubDataset, type HubDataset } from './hub/dataset.js';
export { loadChatTemplate, type ChatMessage, type ChatTemplate } from './chat-template.js';
export { applyChatTemplate } from './app/setup.js';
