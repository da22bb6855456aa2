// Seeded PRNG whose whole state is a plain JSON object, so a training checkpoint can store it and resume bit-exactly.
//
// Generator: xoshiro128** 1.1 by David Blackman and Sebastiano Vigna (https://prng.di.unimi.it/xoshiro128starstar.c,
// "Scrambled linear pseudorandom number generators", ACM TOMS 2021). 128 bits of state, 32-bit outputs, period 2^128-1,
// passes BigCrush; it only needs 32-bit integer ops, which JS does exactly with Math.imul and >>> 0.
//
// Seeding: the seed (number or string) becomes a "key" string; forks append "/label" to it. The key is hashed to
// 128 bits and run through SplitMix32 to fill the state (the seeding procedure Vigna recommends: never seed xoshiro
// with raw, low-entropy words). Because a fork depends only on (seed, label) -- not on how many numbers the parent
// has drawn -- adding a dropout draw can never shift the data order, and vice versa.
//
// Floating-point: float() and int() are exact integer arithmetic and identical in every engine. normal() uses
// Math.log/cos/sin, which are deterministic within one engine (V8 in Node/Deno/Chrome) but are not guaranteed to be
// bit-identical across engines (e.g. JavaScriptCore in Bun/Safari) in the last ulp.

export interface RngState {
  /** Algorithm tag, so a checkpoint from a different generator is rejected instead of silently misread. */
  algo: 'xoshiro128**';
  /** Seed key ("42", "42/data", ...): what fork() derives child streams from. */
  key: string;
  /** The four 32-bit state words, as unsigned integers. */
  s: [number, number, number, number];
  /** Box-Muller makes normals in pairs; the unused second one is part of the state so resuming is exact. */
  spare: number | null;
}

const TWO_POW_32 = 4294967296;

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** SplitMix32-style finaliser (Mulberry/murmur3 constants): a bijective avalanche of one 32-bit word. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** 128-bit hash of a string (four lanes of a murmur3-like mix over UTF-16 code units). */
function hashKey(key: string): [number, number, number, number] {
  let h1 = 0x9e3779b9,
    h2 = 0x243f6a88,
    h3 = 0xb7e15162,
    h4 = 0xdeadbeef;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x85ebca6b);
    h2 = Math.imul(h2 ^ c, 0xc2b2ae35);
    h3 = Math.imul(h3 ^ c, 0x27d4eb2f);
    h4 = Math.imul(h4 ^ c, 0x165667b1);
    h1 = rotl(h1, 13) ^ h4;
    h2 = rotl(h2, 17) ^ h1;
    h3 = rotl(h3, 11) ^ h2;
    h4 = rotl(h4, 19) ^ h3;
  }
  // Length-dependent final mix so "a" and "a\0" differ.
  return [mix32(h1 ^ key.length), mix32(h2 + h1), mix32(h3 + h2), mix32(h4 + h3)];
}

function stateFromKey(key: string): [number, number, number, number] {
  const h = hashKey(key);
  // SplitMix32 over the hash words: guarantees a well-mixed state and (practically) never all-zero.
  let z = 0;
  const s: [number, number, number, number] = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    z = (z + 0x9e3779b9 + h[i]!) >>> 0;
    s[i] = mix32(z);
  }
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1; // the one state xoshiro cannot leave
  return s;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;
  readonly key: string;

  /** `seed`: a number or a string; 42 and "42" are the same seed. */
  constructor(seed: number | string = 0) {
    if (typeof seed === 'number' && !Number.isFinite(seed)) throw new Error(`Rng: seed must be finite, got ${seed}`);
    this.key = String(seed);
    [this.s0, this.s1, this.s2, this.s3] = stateFromKey(this.key);
  }

  /** Restores a generator from `state()` output (e.g. read back from a checkpoint's JSON). */
  static fromState(state: RngState): Rng {
    if (state?.algo !== 'xoshiro128**') throw new Error(`Rng.fromState: expected algo "xoshiro128**", got ${JSON.stringify(state?.algo)}`);
    const s = state.s;
    if (!Array.isArray(s) || s.length !== 4 || !s.every((w) => Number.isInteger(w) && w >= 0 && w < TWO_POW_32)) {
      throw new Error(`Rng.fromState: state.s must be four unsigned 32-bit integers, got ${JSON.stringify(s)}`);
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new Error('Rng.fromState: all-zero state is invalid for xoshiro128**');
    if (state.spare !== null && typeof state.spare !== 'number') throw new Error('Rng.fromState: spare must be a number or null');
    const r = new Rng(state.key ?? '0');
    r.s0 = s[0];
    r.s1 = s[1];
    r.s2 = s[2];
    r.s3 = s[3];
    r.spare = state.spare;
    return r;
  }

  /** A copy of the full state; JSON.stringify/parse round-trips it exactly. */
  state(): RngState {
    return { algo: 'xoshiro128**', key: this.key, s: [this.s0, this.s1, this.s2, this.s3], spare: this.spare };
  }

  /** An independent copy at the same position. */
  clone(): Rng {
    return Rng.fromState(this.state());
  }

  /** Next unsigned 32-bit integer (xoshiro128** step). */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 random bits (multiples of 2^-32, exactly representable). */
  float(): number {
    return this.next() / TWO_POW_32;
  }

  /** Uniform integer in [lo, hi], both ends INCLUSIVE, without modulo bias (rejection sampling). */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) throw new Error(`Rng.int: bounds must be integers, got ${lo}, ${hi}`);
    if (hi < lo) throw new Error(`Rng.int: empty range [${lo}, ${hi}]`);
    const span = hi - lo + 1;
    if (span > TWO_POW_32) throw new Error(`Rng.int: range [${lo}, ${hi}] wider than 2^32`);
    if (span === TWO_POW_32) return lo + this.next();
    // Accept only draws below the largest multiple of span, so every residue is equally likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % span);
    let x: number;
    do x = this.next();
    while (x >= limit);
    return lo + (x % span);
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept in the state for the next call). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    const u1 = 1 - this.float(); // (0, 1]: log(0) impossible
    const u2 = this.float();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return mean + std * r * Math.cos(theta);
  }

  /** Fisher-Yates shuffle, in place; returns the same array. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const tmp = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = tmp;
    }
    return arr;
  }

  /** A uniformly chosen element. */
  choice<T>(arr: readonly T[]): T {
    if (arr.length === 0) throw new Error('Rng.choice: empty array');
    return arr[this.int(0, arr.length - 1)]!;
  }

  /**
   * An independent stream derived from this generator's seed key and `label` (NOT from its current position):
   * `new Rng(7).fork('data')` is the same stream however many numbers the parent has drawn. Forks nest:
   * `rng.fork('a').fork('b')` has key "7/a/b".
   */
  fork(label: string | number): Rng {
    return new Rng(`${this.key}/${label}`);
  }
}
