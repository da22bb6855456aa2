// Shared by the latent-mode tests: a character-level tokenizer over a fixed alphabet (enough to exercise everything
// without the real vocabulary) and tiny random Qwen2 models over it.
import { CpuBackend } from '../src/backend/cpu.js';
import { Qwen2, qwen2ParamShapes, type Qwen2Config } from '../src/model/qwen2.js';
import { Rng } from '../src/data/rng.js';

export const ALPHA = ' \n#=+-*/0123456789abcdefghijklmnopqrstuvwxyz.?,$';
export const EOS = ALPHA.length;
export const charTok = {
  encode: (s: string) => Int32Array.from([...s.toLowerCase()].map((c) => Math.max(0, ALPHA.indexOf(c)))),
  decode: (ids: ArrayLike<number>) => Array.from(ids, (i) => (i === EOS ? '' : (ALPHA[i] ?? '?'))).join(''),
};

export const config: Qwen2Config = {
  vocab_size: ALPHA.length + 1,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
  max_position_embeddings: 512,
};

/** Norms at 1, every other weight N(0, scale^2) from a seeded stream, on the CPU reference backend. */
export function tinyModel(seed = 1, scale = 0.2, cfg: Qwen2Config = config): Qwen2 {
  const rng = new Rng(seed);
  const t = new Map<string, Float32Array>();
  for (const [n, sh] of qwen2ParamShapes(cfg))
    t.set(
      n,
      Float32Array.from({ length: sh.reduce((a, b) => a * b) }, () => (n.includes('norm') ? 1 : scale * rng.normal())),
    );
  return Qwen2.fromTensors(new CpuBackend(), cfg, t);
}
