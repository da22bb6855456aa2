// Hugging Face Qwen2 checkpoints: config.json + model.safetensors, or model.safetensors.index.json + shards.
// Loading validates the config (shapes must be derivable and consistent) and that every tensor the architecture
// needs is present with the right shape, naming the tensor and the file it came from, so a bad checkpoint fails
// at load time rather than as NaNs mid-training. Sources are directory paths or URL bases (see io.ts), so the
// same code loads from disk in Node/Deno/Bun and over HTTP in a browser.
import { LM_HEAD, TOKEN_EMBEDDINGS } from './latent-params.js';
import { joinSource, readBytes, readText, sourceExists, writeFileAtomic, type Source } from '../io/source.js';
import { resolveModelSource, type HubOptions } from '../hub/index.js';
import { parseSafetensors, toFloat32, type Dtype, type SafetensorsEntry, type WriteTensor, writeSafetensors } from '../io/safetensors.js';
import { assertFiniteTensor, checkConfigLimits } from './validate.js';

/** The HF config.json fields we use (all others are kept and written back unchanged). */
export interface Qwen2Config {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  torch_dtype?: string;
  architectures?: string[];
  model_type?: string;
  hidden_act?: string;
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  [key: string]: unknown;
}

/** HF Qwen2Config defaults for fields a config.json may omit. */
const DEFAULTS = { max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false };

/** What the nearest relatives of Qwen2 add, for the error message. */
const UNSUPPORTED_MODEL_TYPES: Record<string, string> = {
  qwen3: 'normalizes queries and keys per head (q_norm/k_norm), has no q/k/v biases and sets head_dim separately',
  qwen2_moe: 'replaces the MLP with a mixture of experts',
  qwen3_moe: 'has q/k norms and a mixture of experts',
  qwen2_vl: 'is a vision-language model (multimodal rotary embeddings)',
  llama: 'has no q/k/v biases',
  mistral: 'has no q/k/v biases and uses sliding-window attention',
};

/** Validates and normalizes a parsed config.json (defaults filled in). Errors name `file` and the field. */
export function parseQwen2Config(json: unknown, file = 'config.json'): Qwen2Config {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${file}: not a JSON object`);
  const c = json as Record<string, unknown>;
  if (c.model_type !== undefined && c.model_type !== 'qwen2') {
    const why = UNSUPPORTED_MODEL_TYPES[String(c.model_type)];
    throw new Error(
      `${file}: model_type ${JSON.stringify(c.model_type)} is not supported (this loader implements 'qwen2', which Qwen2 and Qwen2.5 checkpoints use${why ? `; ${c.model_type} ${why}` : ''})`,
    );
  }
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (v === undefined) throw new Error(`${file}: missing field '${key}'`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
      throw new Error(`${file}: '${key}' must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const pos = (key: string, fallback: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      throw new Error(`${file}: '${key}' must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const vocab_size = int('vocab_size');
  const hidden_size = int('hidden_size');
  const intermediate_size = int('intermediate_size');
  const num_hidden_layers = int('num_hidden_layers');
  const num_attention_heads = int('num_attention_heads');
  // HF: num_key_value_heads = None means multi-head attention.
  const num_key_value_heads = int('num_key_value_heads', num_attention_heads);
  const max_position_embeddings = int('max_position_embeddings', DEFAULTS.max_position_embeddings);
  const rms_norm_eps = pos('rms_norm_eps', DEFAULTS.rms_norm_eps);
  const rope_theta = pos('rope_theta', DEFAULTS.rope_theta);
  checkConfigLimits(
    { vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, max_position_embeddings },
    file,
  );
  const tie = c.tie_word_embeddings ?? DEFAULTS.tie_word_embeddings;
  if (typeof tie !== 'boolean') throw new Error(`${file}: 'tie_word_embeddings' must be true or false, got ${JSON.stringify(tie)}`);

  if (hidden_size % num_attention_heads !== 0) {
    throw new Error(`${file}: hidden_size ${hidden_size} is not divisible by num_attention_heads ${num_attention_heads}`);
  }
  const headDim = hidden_size / num_attention_heads;
  if (headDim % 2 !== 0)
    throw new Error(`${file}: head_dim = hidden_size / num_attention_heads = ${headDim} must be even (rotary embeddings rotate pairs)`);
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== headDim) {
    throw new Error(
      `${file}: head_dim ${JSON.stringify(c.head_dim)} differs from hidden_size / num_attention_heads = ${headDim}: not supported`,
    );
  }
  if (num_attention_heads % num_key_value_heads !== 0) {
    throw new Error(`${file}: num_attention_heads ${num_attention_heads} is not divisible by num_key_value_heads ${num_key_value_heads}`);
  }
  if (c.hidden_act !== undefined && c.hidden_act !== 'silu')
    throw new Error(`${file}: hidden_act ${JSON.stringify(c.hidden_act)} is not supported (only 'silu')`);
  const rs = c.rope_scaling as { type?: unknown; rope_type?: unknown } | null | undefined;
  if (rs != null && (rs.rope_type ?? rs.type ?? 'default') !== 'default') {
    throw new Error(`${file}: rope_scaling ${JSON.stringify(rs)} is not supported (only plain rotary embeddings)`);
  }
  if (c.use_sliding_window === true) throw new Error(`${file}: use_sliding_window = true is not supported`);
  return {
    ...c,
    vocab_size,
    hidden_size,
    intermediate_size,
    num_hidden_layers,
    num_attention_heads,
    num_key_value_heads,
    max_position_embeddings,
    rms_norm_eps,
    rope_theta,
    tie_word_embeddings: tie,
  } as Qwen2Config;
}

/** Every HF tensor name of Qwen2ForCausalLM with this config, with its shape (lm_head only when untied). */
export function expectedQwen2Tensors(config: Qwen2Config): Map<string, number[]> {
  const H = config.hidden_size,
    I = config.intermediate_size,
    V = config.vocab_size;
  const D = H / config.num_attention_heads,
    KV = config.num_key_value_heads * D;
  const m = new Map<string, number[]>();
  m.set(TOKEN_EMBEDDINGS, [V, H]);
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    m.set(p + 'self_attn.q_proj.weight', [H, H]);
    m.set(p + 'self_attn.q_proj.bias', [H]);
    m.set(p + 'self_attn.k_proj.weight', [KV, H]);
    m.set(p + 'self_attn.k_proj.bias', [KV]);
    m.set(p + 'self_attn.v_proj.weight', [KV, H]);
    m.set(p + 'self_attn.v_proj.bias', [KV]);
    m.set(p + 'self_attn.o_proj.weight', [H, H]);
    m.set(p + 'mlp.gate_proj.weight', [I, H]);
    m.set(p + 'mlp.up_proj.weight', [I, H]);
    m.set(p + 'mlp.down_proj.weight', [H, I]);
    m.set(p + 'input_layernorm.weight', [H]);
    m.set(p + 'post_attention_layernorm.weight', [H]);
  }
  m.set('model.norm.weight', [H]);
  if (!config.tie_word_embeddings) m.set(LM_HEAD, [V, H]);
  return m;
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

export interface ValidateOptions {
  /** The file a tensor came from (for messages); default `source`. */
  fileOf?: (name: string) => string;
  /** Where the tensors were looked for (for "missing" messages). */
  source?: string;
}

/**
 * Throws if a tensor the config needs is missing or has the wrong shape (naming tensor and file); returns warnings
 * for tensors it does not know (rotary inv_freq buffers, a tied lm_head, training extras), which are ignored.
 */
export function validateQwen2Tensors(
  config: Qwen2Config,
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  opts: ValidateOptions = {},
): string[] {
  const source = opts.source ?? 'checkpoint';
  const fileOf = opts.fileOf ?? (() => source);
  const expected = expectedQwen2Tensors(config);
  const missing: string[] = [];
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) {
      missing.push(`'${name}' ${fmt(shape)}`);
      continue;
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(
        `${fileOf(name)}: tensor '${name}' has shape ${fmt(t.shape)}, expected ${fmt(shape)} for this config ` +
          `(vocab_size ${config.vocab_size}, hidden_size ${config.hidden_size}, intermediate_size ${config.intermediate_size}, ` +
          `heads ${config.num_attention_heads}/${config.num_key_value_heads} kv)`,
      );
    }
  }
  if (missing.length) {
    const more = missing.length > 5 ? ` and ${missing.length - 5} more` : '';
    throw new Error(`${source}: missing tensor${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')}${more}`);
  }
  const warnings: string[] = [];
  const extra = [...tensors.keys()].filter((n) => !expected.has(n));
  if (config.tie_word_embeddings && tensors.has(LM_HEAD)) {
    warnings.push(`${fileOf(LM_HEAD)}: tensor '${LM_HEAD}' ignored: tie_word_embeddings is true (lm_head = embed_tokens)`);
  }
  const unknown = extra.filter((n) => n !== LM_HEAD);
  if (unknown.length) {
    const list = unknown
      .slice(0, 5)
      .map((n) => `'${n}' (${fileOf(n)})`)
      .join(', ');
    warnings.push(
      `${source}: ignoring ${unknown.length} tensor${unknown.length > 1 ? 's' : ''} a Qwen2 model does not use: ${list}${unknown.length > 5 ? ', ...' : ''}`,
    );
  }
  return warnings;
}

/** A checkpoint tensor: `data` is converted to f32 on first access (then cached); `raw()` never converts. */
export interface HfTensor {
  readonly dtype: Dtype;
  readonly shape: number[];
  /** The file it came from. */
  readonly file: string;
  readonly data: Float32Array;
  /** The undecoded bytes as stored (e.g. bf16 bits), a view into the file buffer. */
  raw(): SafetensorsEntry;
  /** Drops the cached f32 copy (memory-frugal loading: convert, upload, release). */
  release(): void;
}

class LazyTensor implements HfTensor {
  #f32: Float32Array | null = null;
  constructor(
    private readonly entry: SafetensorsEntry,
    readonly file: string,
    private readonly name = '',
    private readonly checkFinite = false,
  ) {}
  get dtype() {
    return this.entry.dtype;
  }
  get shape() {
    return this.entry.shape;
  }
  get data(): Float32Array {
    if (!this.#f32) {
      try {
        this.#f32 = toFloat32(this.entry);
      } catch (e) {
        throw new Error(`${this.file}: ${(e as Error).message}`);
      }
      if (this.checkFinite) assertFiniteTensor(this.name, this.file, this.#f32);
    }
    return this.#f32;
  }
  raw() {
    return this.entry;
  }
  release() {
    this.#f32 = null;
  }
}

export interface HfCheckpoint {
  source: string;
  config: Qwen2Config;
  tensors: Map<string, HfTensor>;
  /** The safetensors files read. */
  files: string[];
  warnings: string[];
  /** The stored bytes of a tensor without conversion (bf16 bits stay bf16). Throws for an unknown name. */
  getRaw(name: string): SafetensorsEntry;
}

export interface LoadOptions {
  /** Check every expected tensor and shape (default true). */
  validate?: boolean;
  /** Called with each warning (they are also returned in `warnings`). */
  onWarning?: (message: string) => void;
  /** Accept NaN/Inf weights (default false: reading such a tensor's `data` throws, naming it and its file). */
  allowNonFinite?: boolean;
  /** Hub endpoint/token/cache/offline for a `org/name[@revision]` source (default: the HF_* environment variables). */
  hub?: HubOptions;
}

/**
 * A Hub id (`Qwen/Qwen2-0.5B[@revision]`) -> its snapshot directory in the HF cache (URL base in browsers),
 * downloading what is missing; config.json is checked before the weights are fetched. Other sources pass through.
 */
export async function resolveQwen2Source(source: Source, hub: HubOptions = {}): Promise<Source> {
  return resolveModelSource(source, {
    ...hub,
    check: async (dir) => {
      const file = joinSource(dir, 'config.json');
      parseQwen2Config(await readJson(file), file);
    },
  });
}

async function readJson(src: string): Promise<unknown> {
  const text = await readText(src);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${src}: invalid JSON: ${(e as Error).message}`);
  }
}

/**
 * Loads config.json and model.safetensors (or model.safetensors.index.json and its shards) from a directory path
 * or URL base. Tensors keep their stored bytes; `tensors.get(name).data` converts to f32 on demand.
 */
export async function loadHfCheckpoint(source: Source, opts: LoadOptions = {}): Promise<HfCheckpoint> {
  const base = String(await resolveQwen2Source(source, opts.hub));
  const configFile = joinSource(base, 'config.json');
  if (!(await sourceExists(configFile))) throw new Error(`${base}: no config.json found (${configFile})`);
  const config = parseQwen2Config(await readJson(configFile), configFile);

  const tensors = new Map<string, HfTensor>();
  const files: string[] = [];
  const add = (file: string, bytes: Uint8Array, only?: Set<string>) => {
    const st = parseSafetensors(bytes, file);
    files.push(file);
    for (const [name, entry] of st.tensors) {
      const prev = tensors.get(name);
      if (prev) throw new Error(`${file}: tensor '${name}' is also in ${prev.file}`);
      tensors.set(name, new LazyTensor(entry, file, name, !opts.allowNonFinite));
    }
    if (only)
      for (const name of only)
        if (!st.tensors.has(name))
          throw new Error(`${file}: tensor '${name}' is listed for this shard in model.safetensors.index.json but is not in it`);
  };

  const single = joinSource(base, 'model.safetensors');
  const indexFile = joinSource(base, 'model.safetensors.index.json');
  let where: string;
  if (await sourceExists(single)) {
    add(single, await readBytes(single));
    where = single;
  } else if (await sourceExists(indexFile)) {
    const index = (await readJson(indexFile)) as { weight_map?: unknown };
    const map = index?.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${indexFile}: no 'weight_map' object`);
    const byShard = new Map<string, Set<string>>();
    for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
      if (typeof shard !== 'string' || !shard || shard.includes('..') || /^[\\/]|^[a-z]+:/i.test(shard)) {
        throw new Error(`${indexFile}: tensor '${name}' maps to invalid shard ${JSON.stringify(shard)}`);
      }
      if (!byShard.has(shard)) byShard.set(shard, new Set());
      byShard.get(shard)!.add(name);
    }
    for (const [shard, names] of [...byShard].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const file = joinSource(base, shard);
      add(file, await readBytes(file), names);
    }
    where = indexFile;
  } else {
    const bin = (await sourceExists(joinSource(base, 'pytorch_model.bin')))
      ? ' (pytorch_model.bin is not supported: convert it to safetensors)'
      : '';
    throw new Error(`${base}: neither model.safetensors nor model.safetensors.index.json found${bin}`);
  }

  const warnings =
    opts.validate === false ? [] : validateQwen2Tensors(config, tensors, { source: where, fileOf: (n) => tensors.get(n)?.file ?? where });
  for (const w of warnings) opts.onWarning?.(w);
  return {
    source: base,
    config,
    tensors,
    files,
    warnings,
    getRaw(name: string) {
      const t = tensors.get(name);
      if (!t) throw new Error(`${where}: no tensor '${name}'`);
      return t.raw();
    },
  };
}

export type SaveTensor = Float32Array | { shape?: readonly number[]; data: Float32Array };

export interface SaveOptions {
  /** Storage dtype of floating tensors (default F32). BF16 rounds to nearest even, like torch. */
  dtype?: 'F32' | 'BF16';
}

/**
 * Writes `dir/model.safetensors` and `dir/config.json` (each atomically: temp file + rename), HF-compatible
 * (metadata {"format": "pt"}, torch_dtype set to match). Every tensor the config needs must be present with the
 * right shape; other tensors (e.g. `latent.*`) are written too. Shapes of known names may be omitted.
 */
export async function saveHfCheckpoint(
  dir: string,
  config: Qwen2Config,
  tensors: ReadonlyMap<string, SaveTensor>,
  opts: SaveOptions = {},
): Promise<{ files: string[] }> {
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'BF16') throw new Error(`saveHfCheckpoint: dtype ${String(dtype)} must be 'F32' or 'BF16'`);
  const cfg = parseQwen2Config(config, `${dir}/config.json`);
  const expected = expectedQwen2Tensors(cfg);
  const list: WriteTensor[] = [];
  const shapes = new Map<string, { shape: number[] }>();
  for (const [name, t] of tensors) {
    const data = t instanceof Float32Array ? t : t.data;
    const shape = (t instanceof Float32Array ? undefined : t.shape)?.slice() ?? expected.get(name);
    if (!shape) throw new Error(`saveHfCheckpoint: tensor '${name}' is not a Qwen2 parameter, so its shape must be given`);
    shapes.set(name, { shape });
    list.push({ name, dtype, shape, data });
  }
  validateQwen2Tensors(cfg, shapes, { source: 'saveHfCheckpoint' });
  const bytes = writeSafetensors(list, { format: 'pt' });
  const outConfig = {
    ...cfg,
    architectures: cfg.architectures ?? ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    torch_dtype: dtype === 'BF16' ? 'bfloat16' : 'float32',
  };
  const model = `${dir}/model.safetensors`,
    cfgFile = `${dir}/config.json`;
  await writeFileAtomic(model, bytes);
  await writeFileAtomic(cfgFile, JSON.stringify(outConfig, null, 2) + '\n');
  return { files: [model, cfgFile] };
}
