// A tiny random Qwen2 in the layout of models/default (config.json + model.safetensors + vocab-map.json over the
// synthetic task's restricted vocabulary), for tests that must train something when the default model is not
// built, or must be fast: the browser e2e test serves it as an "HF directory URL".
//   npx tsx test/_tiny-model.ts OUT_DIR
import { EOS_ID } from '../src/setup/loaders.ts';
import { writeFileAtomic } from '../src/io/source.ts';
import { CpuBackend } from '../src/backend/cpu.ts';
import { initQwen2Tensors, Qwen2, type Qwen2Config } from '../src/model/qwen2.ts';
import { VocabMap, allByteTokens } from '../src/text/vocab-map.ts';
import { Rng } from '../src/data/rng.ts';
import { SYNTH_PRESETS, generateProblems } from '../src/data/synth.ts';
import { Tokenizer } from '../src/text/tokenizer.ts';

export async function writeTinyModel(dir: string, o: { hidden?: number; layers?: number; seed?: number } = {}): Promise<void> {
  const full = await Tokenizer.load();
  const texts = generateProblems({ ...SYNTH_PRESETS.default, seed: 0, count: 2000, split: 'train' }).map(
    (r) => `${r.question}\n${r.answer}`,
  );
  const map = VocabMap.fromCorpus(full, texts, [...allByteTokens(full), EOS_ID]);
  const H = o.hidden ?? 32;
  const config: Qwen2Config = {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: map.size,
    hidden_size: H,
    intermediate_size: 2 * H,
    num_hidden_layers: o.layers ?? 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
  } as Qwen2Config;
  const rng = new Rng(o.seed ?? 0);
  const tensors = initQwen2Tensors(config, rng);
  const be = new CpuBackend();
  const model = Qwen2.fromTensors(be, config, tensors, 'tiny');
  await model.save(dir, { dtype: 'F32' });
  await writeFileAtomic(`${dir}/vocab-map.json`, JSON.stringify(map.toJSON()));
  model.destroy();
  be.destroy();
}

const self = typeof process !== 'undefined' && process.argv[1] && /_tiny-model\.ts$/.test(process.argv[1]);
if (self) {
  const out = process.argv[2];
  if (!out) throw new Error('usage: npx tsx test/_tiny-model.ts OUT_DIR');
  await writeTinyModel(out);
  console.log(`wrote ${out}/{config.json,model.safetensors,vocab-map.json}`);
}
