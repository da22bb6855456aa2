// What every entry point (examples, CLI, browser demo) needs before training: a backend, a model with its
// tokenizer, and split data — the embedded defaults when nothing is given, HF directories / GSM8K files otherwise.
import { createBackend } from '../backend/index.js';
import type { Backend, BackendName } from '../backend/types.js';
import { joinSource, readText, sourceExists, type Source } from '../io/source.js';
import { Qwen2, type Qwen2Config } from '../model/qwen2.js';
import { RestrictedTokenizer, VocabMap } from '../text/vocab-map.js';
import { parseSafetensors, toFloat32 } from '../io/safetensors.js';
import { Tokenizer } from '../text/tokenizer.js';
import type { SplitRow } from '../latent/sequence.js';
import { splitAnswer, loadGsm8k } from '../data/gsm8k.js';
import { generateProblems, SYNTH_PRESETS } from '../data/synth.js';
import { resolveQwen2Source } from '../model/hf.js';
import { hubRepoOf, loadHubDataset } from '../hub/dataset.js';
import type { TokenizerShape } from '../text/tokenizer-shape.js';

export const EOS_ID = 151643; // <|endoftext|>

/** A {question, answer} row (GSM8K format) split at its calculator annotations by the WASM splitter. */
export function splitRow(r: { question: string; answer: string }): SplitRow {
  const s = splitAnswer(r.answer);
  return { question: r.question, steps: s.steps, final: s.final, annotations: s.annotations };
}

/** The tokenizer a model speaks: the full Qwen2 one, or the restricted vocabulary of a small model. */
export type ModelTokenizer = Pick<TokenizerShape, 'decode' | 'tokenText' | 'eosId' | 'fromFull' | 'vocabSize'> & {
  /** Model-space ids, always a typed array (the loaders' own tokenizers return one). */
  encode(text: string): Int32Array | Uint32Array;
};

export function wrapTokenizer(full: Tokenizer, map?: VocabMap): ModelTokenizer {
  if (map) {
    const rt = new RestrictedTokenizer(full, map);
    const eos = map.toSmall.get(EOS_ID);
    if (eos === undefined) throw new Error('vocabulary map lacks <|endoftext|>');
    return {
      encode: (t) => rt.encode(t),
      decode: (ids) => rt.decode(ids),
      tokenText: (i) => rt.tokenText(i),
      eosId: eos,
      fromFull: (i) => map.toSmall.get(i),
      vocabSize: map.size,
    };
  }
  const eosId = full.tokenToId('<|endoftext|>') ?? EOS_ID; // a model's own tokenizer.json may number it differently
  return {
    encode: (t) => full.encode(t),
    decode: (ids) => full.decode(ids),
    tokenText: (i) => full.decode([i]),
    eosId,
    fromFull: (i) => i,
    vocabSize: full.vocabSize,
  };
}

/** The fastest available backend unless one is named (see createBackend's 'fastest'). */
export async function pickBackend(prefer: string | undefined, log: (l: string) => void, threads?: number): Promise<Backend> {
  return createBackend({ prefer: (prefer ?? 'fastest') as BackendName | 'fastest', log, threads });
}

/** The value of a `--threads N` flag (undefined: the default, every core). */
export function parseThreads(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--threads expects a positive integer, got '${v}'`);
  return n;
}

export interface LoadedModel {
  model: Qwen2;
  tok: ModelTokenizer;
  source: string;
  vocabMap?: VocabMap;
  /** The directory (or URL base) its files were read from: for a Hub id, the snapshot in the HF cache. */
  dir?: string;
}

/** The committed default model (models/default), embedded in the bundle. */
export async function loadDefaultModel(be: Backend): Promise<LoadedModel> {
  const mod = (await import('../generated/default-model.js')).default as unknown as null | {
    config: Qwen2Config;
    vocabMap: { full_ids: number[] };
    safetensors: string;
  };
  if (!mod) throw new Error('the default model is not built in this checkout: run `npx tsx examples/pretrain.ts` (or pass --model DIR)');
  const { base64ToBytes } = await import('../io/wasm-embed.js');
  const st = parseSafetensors(base64ToBytes(mod.safetensors), 'default/model.safetensors');
  const tensors = new Map<string, Float32Array>();
  for (const [n, e] of st.tensors) tensors.set(n, toFloat32(e));
  const model = Qwen2.fromTensors(be, mod.config, tensors, 'default/model.safetensors');
  const map = VocabMap.fromJSON(mod.vocabMap, 'default/vocab-map.json');
  return { model, tok: wrapTokenizer(await Tokenizer.load(), map), source: 'embedded default', vocabMap: map };
}

/** An HF directory or URL (config.json + safetensors); a vocab-map.json beside it marks a restricted vocabulary. */
export async function loadModel(be: Backend, source?: Source, opts: { allowNonFinite?: boolean } = {}): Promise<LoadedModel> {
  if (!source) return loadDefaultModel(be);
  const label = String(source);
  source = await resolveQwen2Source(source); // a Hub id -> its snapshot in the HF cache (downloaded if needed)
  const model = await Qwen2.load(be, source, { onWarning: (w) => console.error(`warning: ${w}`), allowNonFinite: opts.allowNonFinite });
  const mapFile = joinSource(source, 'vocab-map.json');
  const map = (await sourceExists(mapFile))
    ? VocabMap.fromJSON(parseJsonFile(await readText(mapFile), mapFile) as Parameters<typeof VocabMap.fromJSON>[0], mapFile)
    : undefined;
  if (map && map.size > model.V) throw new Error(`${mapFile}: maps ${map.size} tokens, more than the model's vocab_size ${model.V}`);
  const tokFile = joinSource(source, 'tokenizer.json');
  const hasTok = await sourceExists(tokFile);
  const full = await Tokenizer.load(hasTok ? tokFile : undefined);
  // Every id the tokenizer can produce needs an embedding row (Qwen2 pads vocab_size up; fine-tunes add tokens).
  if (!map && full.vocabSize > model.V) {
    throw new Error(
      `${hasTok ? tokFile : 'the embedded Qwen2 tokenizer'} has ${full.vocabSize} token ids but the model's embedding has ${model.V} rows (vocab_size in ${joinSource(source, 'config.json')})`,
    );
  }
  return { model, tok: wrapTokenizer(full, map), source: label, vocabMap: map, dir: String(source) };
}

function parseJsonFile(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON: ${(e as Error).message}`);
  }
}

export interface Data {
  train: SplitRow[];
  test: SplitRow[];
  source: string;
}

/** Synthetic problems (default) or GSM8K: a .jsonl file (test = its last 10%) or a directory with train/test.jsonl. */
export async function loadData(
  source: Source | undefined,
  opts: { seed: number; trainCount?: number; testCount?: number; preset?: string } = { seed: 0 },
): Promise<Data> {
  if (!source) {
    const preset = SYNTH_PRESETS[(opts.preset ?? 'default') as keyof typeof SYNTH_PRESETS];
    if (!preset) throw new Error(`unknown synthetic preset '${opts.preset}' (have: ${Object.keys(SYNTH_PRESETS).join(', ')})`);
    const test = generateProblems({ ...preset, seed: opts.seed, count: opts.testCount ?? 200, split: 'test' }).map(splitRow);
    const train = generateProblems({ ...preset, seed: opts.seed, count: opts.trainCount ?? 5000, split: 'train' }).map(splitRow);
    return { train, test, source: `synthetic (${opts.preset ?? 'default'} preset, seed ${opts.seed})` };
  }
  const s = String(source);
  const repo = await hubRepoOf(s, 'dataset');
  if (repo) {
    // `openai/gsm8k`: the train/test parquet splits from the Hub (through the HF cache), checked like JSONL rows.
    const ds = await loadHubDataset(repo, ['train', 'test']);
    const rows = async (split: string) => {
      const text = ds.splits[split].map((r) => JSON.stringify({ question: r.question, answer: r.answer })).join('\n');
      return (await loadGsm8k({ text, source: `${repo.name} ${split} row` })).rows;
    };
    return { train: await rows('train'), test: await rows('test'), source: ds.source };
  }
  if (/\.jsonl$/i.test(s)) {
    const rows = (await loadGsm8k(s)).rows;
    const nTest = Math.max(1, Math.floor(rows.length / 10));
    return { train: rows.slice(0, rows.length - nTest), test: rows.slice(rows.length - nTest), source: s };
  }
  const train = (await loadGsm8k(s, { split: 'train' })).rows;
  const test = (await loadGsm8k(s, { split: 'test' })).rows;
  return { train, test, source: s };
}

/**
 * `--chat`: every question becomes the user turn of the model's chat template (tokenizer_config.json), ending at the
 * assistant's turn, so an instruct model is trained and asked in the format it knows. The sequence builder appends
 * "\n" after the question, so the template's own final newline is dropped here. Returns the template's source.
 */
export async function applyChatTemplate(data: Data, modelDir: string | undefined): Promise<string> {
  if (!modelDir) throw new Error('--chat needs --model (the embedded default model has no chat template)');
  const { loadChatTemplate } = await import('../text/chat-template.js');
  const tpl = await loadChatTemplate(modelDir);
  if (!tpl)
    throw new Error(
      `--chat: ${modelDir} has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja): a base model, not an instruct one`,
    );
  const wrap = (r: SplitRow): SplitRow => ({ ...r, question: tpl.render([{ role: 'user', content: r.question }]).replace(/\n$/, '') });
  data.train = data.train.map(wrap);
  data.test = data.test.map(wrap);
  return tpl.source;
}
