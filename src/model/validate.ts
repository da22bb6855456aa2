// Checks on what a checkpoint claims before anything is allocated for it, and on what it holds once read:
//  - config sizes have upper bounds (a `num_hidden_layers: 1e9` must fail at once, naming the file and field,
//    not after 30 s and 2.4 GB in "Map maximum size exceeded");
//  - weights must be finite: a NaN/Inf weight makes every loss NaN, so loading one is an error naming the tensor and
//    its file unless explicitly allowed (LoadOptions.allowNonFinite, `--allow-nonfinite` on the command line).

/** Upper bounds far above any released Qwen2 (72B: 80 layers, hidden 8192, intermediate 29568, vocab 152064). */
export const CONFIG_LIMITS: Record<string, number> = {
  vocab_size: 1 << 22,
  hidden_size: 1 << 16,
  intermediate_size: 1 << 18,
  num_hidden_layers: 1 << 10,
  num_attention_heads: 1 << 10,
  num_key_value_heads: 1 << 10,
  max_position_embeddings: 1 << 24,
};

/** Throws naming `file` and the field when a config size is above CONFIG_LIMITS. */
export function checkConfigLimits(config: Record<string, unknown>, file: string): void {
  for (const [key, max] of Object.entries(CONFIG_LIMITS)) {
    const v = config[key];
    if (typeof v === 'number' && v > max)
      throw new Error(`${file}: '${key}' is ${v}, above the supported maximum ${max}: not a loadable Qwen2 config`);
  }
}

/** Throws `file: tensor 'name' has N non-finite values (first: NaN at index i)` unless every value is finite. */
export function assertFiniteTensor(name: string, file: string, data: Float32Array): void {
  let bad = 0,
    first = -1;
  for (let i = 0; i < data.length; i++) {
    // x - x is 0 for finite x and NaN for NaN and +-Infinity: one comparison per value
    if (data[i] - data[i] !== 0) {
      if (first < 0) first = i;
      bad++;
    }
  }
  if (bad)
    throw new Error(
      `${file}: tensor '${name}' has ${bad} non-finite value${bad > 1 ? 's' : ''} (first: ${data[first]} at index ${first}); a model with such weights computes NaN losses (allowNonFinite / --allow-nonfinite loads it anyway)`,
    );
}
