// A random-weight Qwen2 written as a bf16 HF checkpoint, for benchmarks at real model shapes without downloading
// weights (bench/qwen2-05b.ts, bench/gpu.ts). Written once per directory; later runs load it as is.
import { existsSync } from 'node:fs';
import { saveHfCheckpoint, type Qwen2Config } from '../src/model/hf.js';
import { qwen2ParamShapes } from '../src/model/qwen2.js';
import { Rng } from '../src/data/rng.js';

export const QWEN2_05B: Qwen2Config = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  vocab_size: 151936,
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
};

/** Writes `dir/model.safetensors` (+ config) with norms 1 and other weights uniform in ±0.034, unless it exists. */
export async function ensureRandomCheckpoint(
  dir: string,
  config: Qwen2Config = QWEN2_05B,
  log: (l: string) => void = console.log,
): Promise<void> {
  if (existsSync(`${dir}/model.safetensors`)) return;
  const t0 = performance.now();
  const rng = new Rng(0);
  const tensors = new Map<string, Float32Array>();
  let n = 0;
  for (const [name, shape] of qwen2ParamShapes(config)) {
    const len = shape.reduce((a, b) => a * b, 1);
    const t = new Float32Array(len);
    if (name.includes('norm')) t.fill(1);
    else for (let i = 0; i < len; i++) t[i] = 0.02 * (rng.float() * 2 - 1) * 1.7;
    tensors.set(name, t);
    n += len;
  }
  await saveHfCheckpoint(dir, config, tensors, { dtype: 'BF16' });
  log(`wrote ${dir}: ${(n / 1e6).toFixed(1)}M parameters as bf16 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
