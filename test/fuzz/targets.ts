// Fuzz targets: a seeded generator of inputs and a check per input, for every WASM text entry point (tokenizer
// encode and decode against HF's Rust tokenizer; GSM8K split and reward against the independent references in
// references.ts) and the safetensors / config.json parsers (garbage must give a thrown Error with a message, never
// a RangeError/TypeError from deep inside, or anything that is not an Error). Used by scripts/fuzz.ts (100,000
// inputs per target) and test/fuzz.test.ts (a few thousand).
import { splitAnswers } from '../../src/data/gsm8k.js';
import { rewardBatch } from '../../src/data/grade.js';
import { textWasmMemoryBytes } from '../../src/text/text-wasm.js';
import { Tokenizer } from '../../src/text/tokenizer.js';
import { parseSafetensors, toFloat32, writeSafetensors } from '../../src/io/safetensors.js';
import { parseQwen2Config } from '../../src/model/hf.js';
import { refReward, refSplit } from './references.js';
import { rustReference } from '../_tokenizer-ref.js';

/** mulberry32: tiny, seeded, and the same input for the same (seed, index) on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, a: readonly T[]): T => a[int(r, a.length)];
const join = (r: Rand, parts: readonly string[], max: number) => {
  let s = '';
  for (let k = int(r, max + 1); k > 0; k--) s += pick(r, parts);
  return s;
};
/** A random string: mostly printable ASCII and the lower BMP, some code points of any plane, a few lone surrogates. */
const randomUnicode = (r: Rand, max: number) => {
  let s = '';
  for (let k = int(r, max + 1); k > 0; k--) {
    const u = r();
    if (u < 0.5) s += String.fromCharCode(32 + int(r, 95));
    else if (u < 0.8) s += String.fromCodePoint(int(r, 0x3000));
    else if (u < 0.97) {
      const cp = int(r, 0x110000 - 0x800);
      s += String.fromCodePoint(cp < 0xd800 ? cp : cp + 0x800);
    } else s += String.fromCharCode(0xd800 + int(r, 0x800));
  }
  return s;
};

export type Outcome = { kind: 'ok' } | { kind: 'mismatch' | 'crash'; detail: string };
export interface Target {
  name: string;
  /** The input for (seed, index), as a JSON-printable value (reported with a failure). */
  make(seed: number, index: number): unknown;
  check(input: unknown): Promise<Outcome> | Outcome;
  /** WASM linear memory of the code under test, for growth checks (0 when there is none). */
  wasmBytes(): number;
}

const short = (v: unknown) => {
  const s = JSON.stringify(v);
  return s.length > 300 ? s.slice(0, 300) + '...' : s;
};
const OK: Outcome = { kind: 'ok' };
const mismatch = (input: unknown, ours: unknown, ref: unknown): Outcome => ({
  kind: 'mismatch',
  detail: `input ${short(input)}: ours ${short(ours)}, reference ${short(ref)}`,
});

/** A thrown value is acceptable from a parser only as an Error with a message of its own making. */
function judgeThrow(e: unknown, input: unknown): Outcome {
  if (!(e instanceof Error)) return { kind: 'crash', detail: `threw a non-Error ${short(e)} on ${short(input)}` };
  if (e instanceof RangeError || e instanceof TypeError || e instanceof ReferenceError || e instanceof SyntaxError || !e.message) {
    return { kind: 'crash', detail: `${e.name}: ${e.message} on ${short(input)}` };
  }
  return OK;
}

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer

const TRICKY = [
  ' ',
  '  ',
  '\t',
  '\n',
  '\r',
  '\r\n',
  '\u00a0',
  '\u3000',
  '\u0085',
  "'",
  "'s",
  "'S",
  "'ll",
  "'ſ",
  'ſ',
  'a',
  'Z',
  'é',
  'e\u0301',
  '\u0301',
  '\u0338',
  '0',
  '7',
  '12',
  '٣',
  '½',
  '!',
  '.',
  '<',
  '>',
  '|',
  '<|im_end|>',
  '<|im_start|>',
  '<|endoftext|>',
  '<|im_',
  '我',
  '👍🏽',
  '\u200d',
  '👨‍👩‍👧',
  'ก',
  'ी',
  '한',
  '\ufeff',
  'K',
  '\u212a',
  '\u07fd',
  '\u0341',
  '\u1df6',
  'g',
  '\u{11930}',
  '\u{11935}',
  'Natalia',
  ' sold',
  '48/2',
  '<<48/2=24>>',
  '#### 72',
  '$',
  ',',
  '-',
];

export async function tokenizerTargets(): Promise<Target[]> {
  const tok = await Tokenizer.load();
  const ref = rustReference();
  const wasmBytes = () => tok.wasmMemoryBytes;
  const encode: Target = {
    name: 'tokenizer.encode',
    make(seed, index) {
      const r = rng(seed * 1_000_003 + index);
      const u = r();
      return u < 0.6 ? join(r, TRICKY, 24) : u < 0.9 ? randomUnicode(r, 40) : join(r, TRICKY, 4).repeat(1 + int(r, 400));
    },
    async check(input) {
      const s = input as string;
      const ours = Array.from(tok.encode(s));
      const theirs = await ref.encode(s);
      if (ours.length !== theirs.length || ours.some((v, k) => v !== theirs[k])) return mismatch(s, ours, theirs);
      return OK;
    },
    wasmBytes,
  };
  const decode: Target = {
    name: 'tokenizer.decode',
    make(seed, index) {
      const r = rng(seed * 1_000_003 + index);
      return Array.from({ length: int(r, 16) }, () => (r() < 0.95 ? int(r, 151646) : int(r, 2 ** 32)));
    },
    async check(input) {
      const ids = input as number[];
      const ours = tok.decode(ids);
      // HF's binding rejects ids past u32 the same way ours skips them; both skip unknown ids.
      const theirs = await ref.decode(ids);
      return ours === theirs ? OK : mismatch(ids, ours, theirs);
    },
    wasmBytes,
  };
  return [encode, decode];
}

// ---------------------------------------------------------------------------------------------------------------
// GSM8K split and reward

const SPLIT_PARTS = [
  '<<',
  '>>',
  '<',
  '>',
  '=',
  '####',
  '#',
  '\n',
  '\r',
  ' ',
  '\t',
  '1',
  '42',
  'x',
  'Natalia',
  ',',
  '.',
  'é',
  '<<48/2=24>>',
  '\n#### 72',
  '#### 1,080',
  '<<<',
  '>>>',
  '==',
];

export const splitTarget: Target = {
  name: 'gsm8k.split',
  make(seed, index) {
    const r = rng(seed * 1_000_003 + index);
    return r() < 0.7 ? join(r, SPLIT_PARTS, 30) : join(r, SPLIT_PARTS, 20) + '\n#### ' + join(r, ['1', '2', ',', ' ', '\t', 'x'], 5);
  },
  check(input) {
    const a = input as string;
    const ours = splitAnswers([a])[0];
    const theirs = refSplit(a);
    return JSON.stringify(ours) === JSON.stringify(theirs) ? OK : mismatch(a, ours, theirs);
  },
  wasmBytes: textWasmMemoryBytes,
};

const REWARD_PARTS = [
  '####',
  '#',
  ' ',
  '\t',
  '\n',
  '-',
  '\u2212',
  '$',
  ',',
  '.',
  '0',
  '00',
  '1',
  '5',
  '72',
  '1,000',
  '7.50',
  'x',
  'a',
  'answer',
  ':',
  '..',
  '-$',
  '$-',
];
const GOLD_PARTS = ['-', '\u2212', '$', '0', '1', '5', '72', '.', ',', ' ', '\n', 'x', '50', '000'];

export const rewardTarget: Target = {
  name: 'reward',
  make(seed, index) {
    const r = rng(seed * 1_000_003 + index);
    const n = 1 + int(r, 4);
    const completions: string[] = [];
    const golds: string[] = [];
    for (let k = 0; k < n; k++) {
      if (r() < 0.4) {
        // A completion that writes (a form of) the gold somewhere, so equal answers are exercised too.
        const g = pick(r, ['5', '72', '1,000', '7.50', '0', '-5', '.5', '1080']);
        const written = pick(r, ['', '$', '-', '$-', '-$']) + g + pick(r, ['', '0', '.', '.0', ',5']);
        completions.push(join(r, REWARD_PARTS, 8) + pick(r, ['#### ', '####', '', ' ']) + written + join(r, REWARD_PARTS, 4));
        golds.push(pick(r, ['', ' ', '$']) + g + pick(r, ['', '.', ' ', '\n']));
      } else {
        completions.push(join(r, REWARD_PARTS, 20));
        golds.push(join(r, GOLD_PARTS, 6));
      }
    }
    return { completions, golds, strict: r() < 0.3 };
  },
  check(input) {
    const { completions, golds, strict } = input as { completions: string[]; golds: string[]; strict: boolean };
    // rewardBatch throws for a gold that is not a number; the reference says reward -1 for it.
    const refs = completions.map((c, i) => refReward(c, golds[i], strict));
    let ours: unknown;
    try {
      ours = rewardBatch(completions, golds, { strict });
    } catch (e) {
      const bad = refs.findIndex((x) => x.reward < 0);
      return bad >= 0 && /is not a number/.test((e as Error).message) ? OK : mismatch(input, (e as Error).message, refs);
    }
    if (refs.some((x) => x.reward < 0)) return mismatch(input, ours, refs);
    return JSON.stringify(ours) === JSON.stringify(refs) ? OK : mismatch(input, ours, refs);
  },
  wasmBytes: textWasmMemoryBytes,
};

// ---------------------------------------------------------------------------------------------------------------
// Parsers: safetensors and config.json

const VALID_ST = writeSafetensors(
  [
    { name: 'a', dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    { name: 'b.weight', dtype: 'BF16', shape: [4], data: new Float32Array([1, -2, 0.5, 8]) },
    { name: 'c', dtype: 'I32', shape: [1], data: new Float32Array([7]) },
  ],
  { format: 'pt' },
);
const HEADER_EDITS: [RegExp, string[]][] = [
  [/"F32"/, ['"F16"', '"I64"', '"X"', '1', 'null', '"BOOL"']],
  [/\[2,3\]/, ['[3,2]', '[-1,6]', '[2.5,3]', '[]', '[1e300]', '"x"', '[9007199254740993,1]']],
  [
    /"data_offsets":\[0,24\]/,
    ['"data_offsets":[24,0]', '"data_offsets":[0]', '"data_offsets":[0,1e20]', '"data_offsets":[-8,16]', '"data_offsets":null'],
  ],
  [/"__metadata__":\{[^}]*\}/, ['"__metadata__":[]', '"__metadata__":{"k":1}', '"__metadata__":null']],
  [/\{/, ['[', '{"a":{},', '{{']],
];

export const safetensorsTarget: Target = {
  name: 'safetensors.parse',
  make(seed, index) {
    const r = rng(seed * 1_000_003 + index);
    let b = Uint8Array.from(VALID_ST);
    const u = r();
    if (u < 0.15) {
      b = new Uint8Array(int(r, 64));
      for (let i = 0; i < b.length; i++) b[i] = int(r, 256);
      if (b.length >= 8 && r() < 0.5) new DataView(b.buffer).setBigUint64(0, BigInt(int(r, b.length)), true);
    } else if (u < 0.55) {
      const headerLen = Number(new DataView(b.buffer).getBigUint64(0, true));
      let header = new TextDecoder().decode(b.subarray(8, 8 + headerLen));
      for (let k = 1 + int(r, 3); k > 0; k--) {
        const [re, subs] = pick(r, HEADER_EDITS);
        header = header.replace(re, pick(r, subs));
      }
      const hb = new TextEncoder().encode(header);
      const out = new Uint8Array(8 + hb.length + b.length - 8 - headerLen);
      new DataView(out.buffer).setBigUint64(0, BigInt(r() < 0.9 ? hb.length : int(r, 2 ** 20)), true);
      out.set(hb, 8);
      out.set(b.subarray(8 + headerLen), 8 + hb.length);
      b = out;
    } else {
      for (let k = 1 + int(r, 4); k > 0; k--) {
        const op = int(r, 4);
        const at = int(r, b.length);
        if (op === 0) b[at] ^= 1 << int(r, 8);
        else if (op === 1) b[at] = int(r, 256);
        else if (op === 2) b = b.subarray(0, at);
        else b = Uint8Array.from([...b.subarray(0, at), int(r, 256), ...b.subarray(at)]);
      }
    }
    return Array.from(b);
  },
  check(input) {
    const bytes = Uint8Array.from(input as number[]);
    try {
      const st = parseSafetensors(bytes, 'fuzz.safetensors');
      for (const e of st.tensors.values()) toFloat32(e);
      return OK;
    } catch (e) {
      return judgeThrow(e, input);
    }
  },
  wasmBytes: () => 0,
};

const CONFIG = {
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
  hidden_act: 'silu',
  rope_scaling: null,
  use_sliding_window: false,
  head_dim: 64,
};
const WEIRD = [
  0,
  -1,
  1.5,
  2 ** 53,
  1e308,
  NaN,
  null,
  true,
  false,
  '',
  '64',
  [],
  {},
  [1],
  { type: 'linear' },
  { rope_type: 'default' },
  undefined,
  'qwen2',
  'silu',
  3,
  7,
];

export const configTarget: Target = {
  name: 'config.parse',
  make(seed, index) {
    const r = rng(seed * 1_000_003 + index);
    const u = r();
    if (u < 0.1) return pick(r, ['null', '1', '"x"', '[]', JSON.stringify([CONFIG]), 'true', '{}']);
    const c: Record<string, unknown> = { ...CONFIG };
    const keys = Object.keys(CONFIG);
    for (let k = 1 + int(r, 3); k > 0; k--) {
      const key = r() < 0.9 ? pick(r, keys) : pick(r, ['__proto__', 'constructor', 'toString', 'extra']);
      if (r() < 0.2) delete c[key];
      else c[key] = pick(r, WEIRD);
    }
    // Through JSON text, as a config.json arrives (so __proto__ is a plain key, as in JSON.parse).
    return JSON.stringify(c);
  },
  check(input) {
    try {
      parseQwen2Config(JSON.parse(input as string), 'fuzz/config.json');
      return OK;
    } catch (e) {
      return judgeThrow(e, input);
    }
  },
  wasmBytes: () => 0,
};

/** Every target; the tokenizer ones need the Rust binding (always installed as a dev dependency). */
export async function allTargets(): Promise<Target[]> {
  return [...(await tokenizerTargets()), splitTarget, rewardTarget, safetensorsTarget, configTarget];
}
