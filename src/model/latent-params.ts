// The parameters a latent-token model adds to a Qwen2 checkpoint, and the layout of its extra-embedding table.
// Written once here because phase 1, RL, the checkpoint loader and the diagnostics all address them by name; a typo
// in one of a dozen string literals would silently create a second, untrained table.

/** The token-embedding table every Qwen2 checkpoint has (also the tied output head). */
export const TOKEN_EMBEDDINGS = 'model.embed_tokens.weight';
/** The untied output head (only when `tie_word_embeddings` is false). */
export const LM_HEAD = 'lm_head.weight';
/** Rows for the span markers and pause slots: [extraRows(maxLatents), H]. */
export const LATENT_EMBEDDINGS = 'latent.embeddings';
/** Prefix of every latent-only parameter (marker table, and in two-trunk mode the latent trunk's copy). */
export const LATENT_PREFIX = 'latent.';
/** Prefix of the latent trunk's copy of the transformer (two-trunk mode): its presence marks a two-trunk checkpoint. */
export const LATENT_TRUNK_PREFIX = 'latent.model.';

/**
 * Gated feedback (HRPO-style, src/model/gated-feedback.ts): g = sigmoid(W h + b) per hidden dimension, [H, H] and [H].
 * Under the `latent.` prefix, so two-trunk training trains them with the latent trunk and checkpoints carry them.
 */
export const GATE_WEIGHT = 'latent.gate.weight';
export const GATE_BIAS = 'latent.gate.bias';

/** Rows of the extra-embedding table `latent.embeddings`. */
export const EXTRA_BOL = 0;
export const EXTRA_EOL = 1;
export const EXTRA_PAUSE0 = 2;
export const extraRows = (maxLatents: number) => EXTRA_PAUSE0 + maxLatents;

/** What fills a span: fed-back hidden states ('latent'), learned pause embeddings ('pause'), or no spans ('none'). */
export type Condition = 'latent' | 'pause' | 'none';

/** True when a checkpoint's tensor names include the latent trunk (two-trunk mode). */
export const hasLatentTrunk = (names: Iterable<string>) => [...names].some((n) => n.startsWith(LATENT_TRUNK_PREFIX));
