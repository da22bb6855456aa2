// Encode throughput (tokens/s, single thread, one call per text) over GSM8K train rows (question + "\n" + answer)
// for: our WASM tokenizer, HF's Rust tokenizer through @anush008/tokenizers (per-call encode; each call is async),
// and @huggingface/tokenizers (pure JS). All measured in this run, plus the startup time of Tokenizer.load().
// Our tokenizer is reported twice: "cold" is the first pass of a fresh instance (empty word cache), "warm" the
// best of the later passes. Every implementation gets the same warm-up pass before its timed passes.
// Run: npx tsx bench/tokenizer.ts
import { readFileSync } from 'node:fs';
import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import { Tokenizer } from '../src/text/tokenizer.js';
import { gsm8kRows, qwen2TokenizerJson, rustReference } from '../test/_tokenizer-ref.js';

export interface TokenizerBenchRow {
  name: string;
  tokensPerSec: number;
  /** ours / Rust binding per-call rate */
  vsRust?: number;
  ms?: number;
  note?: string;
}

function texts(): { texts: string[]; note: string } {
  const rows = gsm8kRows('train');
  if (rows) return { texts: rows.map((r) => `${r.question}\n${r.answer}`), note: 'GSM8K train (../shared)' };
  // Without ../shared: a synthetic stand-in so the bench still runs (numbers not comparable to GSM8K).
  const words = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    .split(/\s+/)
    .filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < 7000; i++) out.push(Array.from({ length: 120 }, (_, k) => words[(i * 31 + k * 7) % words.length]).join(' '));
  return { texts: out, note: 'synthetic (README words); ../shared absent' };
}

async function timePasses(passes: number, run: () => Promise<number> | number): Promise<{ best: number; tokens: number }> {
  let best = Infinity;
  let tokens = 0;
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    tokens = await run();
    best = Math.min(best, performance.now() - t0);
  }
  return { best, tokens };
}

/** Runs the benchmark, prints the rows and returns them. */
export async function benchTokenizer(): Promise<TokenizerBenchRow[]> {
  const { texts: data, note } = texts();
  console.log(`tokenizer bench: ${data.length} texts, ${note}`);
  const rows: TokenizerBenchRow[] = [];

  // Startup: the first load also compiles the WASM module; later loads show the steady cost.
  const loads: number[] = [];
  let tok!: Tokenizer;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    tok = await Tokenizer.load();
    loads.push(performance.now() - t0);
  }

  // ours, cold (fresh instance, first pass) then warm
  const runOurs = () => {
    let n = 0;
    for (const t of data) n += tok.encode(t).length;
    return n;
  };
  const t0 = performance.now();
  const totalTokens = runOurs();
  const coldMs = performance.now() - t0;
  const ours = await timePasses(5, runOurs);

  const rust = rustReference();
  const runRust = async () => {
    let n = 0;
    for (const t of data) n += (await rust.raw.encode(t, null, { addSpecialTokens: false })).getIds().length;
    return n;
  };
  await runRust();
  const rs = await timePasses(2, runRust);

  const hfjs = new HfJsTokenizer(JSON.parse(qwen2TokenizerJson()), {});
  const runHfJs = () => {
    let n = 0;
    for (const t of data) n += hfjs.encode(t, { add_special_tokens: false }).ids.length;
    return n;
  };
  runHfJs();
  const hj = await timePasses(1, runHfJs);

  const rate = (tokens: number, ms: number) => Math.round((tokens / ms) * 1000);
  const rustRate = rate(rs.tokens, rs.best);
  const add = (name: string, tokens: number, ms: number, extra: Partial<TokenizerBenchRow> = {}) =>
    rows.push({ name, tokensPerSec: rate(tokens, ms), vsRust: +(rate(tokens, ms) / rustRate).toFixed(2), ms: +ms.toFixed(1), ...extra });
  add('latentlm WASM encode (warm cache)', ours.tokens, ours.best, { note });
  add('latentlm WASM encode (cold, first pass)', totalTokens, coldMs);
  add('HF Rust binding encode (per call)', rs.tokens, rs.best);
  add('@huggingface/tokenizers encode', hj.tokens, hj.best);
  const sorted = [...loads].sort((a, b) => a - b);
  rows.push({ name: 'Tokenizer.load() first (incl. WASM compile), ms', tokensPerSec: 0, ms: +loads[0].toFixed(1) });
  rows.push({ name: 'Tokenizer.load() median of 5, ms', tokensPerSec: 0, ms: +sorted[2].toFixed(1) });
  console.table(rows);
  return rows;
}

const isMain =
  typeof process !== 'undefined' && process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (isMain) await benchTokenizer();
