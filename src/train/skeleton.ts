// The parts every trainer shares (phase 1: src/latent/trainer.ts; RL: src/rl/grpo.ts), written once: the epoch
// cursor over a shuffled data order, the marker-embedding initialisation, the cadence test for periodic work
// (evaluations, checkpoints, sample logs), and the stop on a non-finite loss. Each trainer keeps its own step
// (what a step computes differs), its own checkpoint fields (src/train/checkpoint-schema.ts) and its own loop.
import type { Qwen2 } from '../model/qwen2.js';
import { LATENT_EMBEDDINGS, TOKEN_EMBEDDINGS } from '../model/latent-params.js';
import type { Rng } from '../data/rng.js';

/**
 * Indices 0..n-1 in a shuffled order, epoch after epoch: `take(k)` hands out the next k, reshuffling (from `rng`,
 * which nothing else draws from, so the data order never depends on anything but the seed) when an epoch runs out.
 * Its whole state (rng, order, cursor, epoch) goes into checkpoints.
 */
export class DataCursor {
  order: number[] = [];
  cursor = 0;
  epoch = 0;
  constructor(
    readonly n: number,
    public rng: Rng,
  ) {
    this.reshuffle();
  }

  private reshuffle() {
    this.order = this.rng.shuffle(Array.from({ length: this.n }, (_, i) => i));
    this.cursor = 0;
  }

  take(k: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < k; i++) {
      if (this.cursor >= this.order.length) {
        this.epoch++;
        this.reshuffle();
      }
      out.push(this.order[this.cursor++]);
    }
    return out;
  }

  /** Continues a checkpointed position (the generator restored from its saved state). */
  restore(s: { rng: Rng; order: number[]; cursor: number; epoch: number }): void {
    this.rng = s.rng;
    this.order = s.order;
    this.cursor = s.cursor;
    this.epoch = s.epoch;
  }
}

/** How a fresh marker/pause table starts: a copy of one token's embedding (Coconut copies `<<`), or the mean one. */
export type MarkerInit = { kind: 'token'; id: number } | { kind: 'mean' };

/**
 * Fills every row of `latent.embeddings` with one embedding row (see MarkerInit). Asynchronous because it reads the
 * token table back from the backend, which GPU backends cannot do synchronously: trainers add the table in their
 * constructor and call this before the first step.
 */
export async function fillMarkerEmbeddings(m: Qwen2, init: MarkerInit): Promise<void> {
  const H = m.H;
  const emb = (await m.be.read(m.param(TOKEN_EMBEDDINGS))) as Float32Array;
  const row = new Float32Array(H);
  if (init.kind === 'token') row.set(emb.subarray(init.id * H, init.id * H + H));
  else {
    const V = emb.length / H;
    for (let v = 0; v < V; v++) for (let i = 0; i < H; i++) row[i] += emb[v * H + i] / V;
  }
  const E = m.param(LATENT_EMBEDDINGS).size / H;
  const data = new Float32Array(E * H);
  for (let e = 0; e < E; e++) data.set(row, e * H);
  m.be.upload(m.param(LATENT_EMBEDDINGS), data);
}

/** True when periodic work set to run every `every` steps (0 or unset = never) is due at `step`. */
export const due = (step: number, every: number | undefined) => !!every && every > 0 && step % every === 0;

/**
 * A non-finite loss stops the run before anything is saved over the last good checkpoint: `describe` says which
 * step and what is kept (each trainer knows what it has written).
 */
export function stopOnNonFiniteLoss(loss: number, describe: (loss: number) => string): void {
  if (!Number.isFinite(loss)) throw new Error(describe(loss));
}
