// One-off measurement (not a test: it needs a few GB of memory and minutes): the large inputs of issue 12 through
// the text pipeline and tokenizer. Prints time, WASM memory and RSS for each.
//   node --max-old-space-size=8192 --import tsx scripts/measure-large-inputs.ts [--skip-gsm8k] [GSM8K train.jsonl]
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadGsm8k, splitAnswer } from '../src/data/gsm8k.js';
import { textWasmMemoryBytes } from '../src/text/text-wasm.js';
import { Tokenizer } from '../src/text/tokenizer.js';

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
const rss = () => MiB(process.memoryUsage().rss);
const args = process.argv.slice(2);
const skipGsm8k = args.includes('--skip-gsm8k');
const train = args.find((a) => !a.startsWith('--')) ?? new URL('../../shared/gsm8k/train.jsonl', import.meta.url).pathname;

function time<T>(label: string, f: () => T): T {
  const t = Date.now();
  try {
    const r = f();
    console.log(`${label}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    return r;
  } catch (e) {
    console.log(`${label}: ${((Date.now() - t) / 1000).toFixed(1)} s, threw: ${(e as Error).message}`);
    return undefined as T;
  }
}

// 1. A GSM8K file of 1.35M rows (train.jsonl repeated).
async function measureGsm8k(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'latentlm-large-'));
  try {
    const rows = readFileSync(train);
    const path = join(dir, 'big.jsonl');
    const fd = openSync(path, 'w');
    const nRows = rows
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim()).length;
    const reps = Math.ceil(1_350_000 / nRows);
    for (let k = 0; k < reps; k++) writeSync(fd, rows);
    closeSync(fd);
    console.log(`GSM8K: ${reps * nRows} rows, ${MiB(reps * rows.length)} file`);
    const t = Date.now();
    const ds = await loadGsm8k(path);
    console.log(
      `  loadGsm8k: ${ds.rows.length} rows, ${((Date.now() - t) / 1000).toFixed(1)} s; text WASM memory now ${MiB(
        textWasmMemoryBytes(),
      )}, RSS ${rss()}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (!skipGsm8k) await measureGsm8k();

// 2. One 200 MB answer, and one 200 MB text / word through the tokenizer.
const big = 'Natalia sold 48/2 = <<48/2=24>>24 clips in May. '.repeat(Math.ceil(200e6 / 49)) + '\n#### 72';
time(`splitAnswer of a ${MiB(big.length)} answer`, () => splitAnswer(big));
console.log(`  text WASM memory after: ${MiB(textWasmMemoryBytes())}, RSS ${rss()}`);
const tok = await Tokenizer.load();
const ids = time(`tokenizer.encode of a ${MiB(big.length)} text`, () => tok.encode(big));
console.log(`  ${ids?.length} ids; tokenizer WASM memory ${MiB(tok.wasmMemoryBytes)}, RSS ${rss()}`);
console.log(`tokenizer WASM memory before the words: ${MiB(tok.wasmMemoryBytes)}`);
for (const [label, word] of [
  ['a 12 MB word', 'ab'.repeat(6e6)],
  ['the same word again', 'ab'.repeat(6e6)],
  ['a 24 MB word (the issue case)', 'ab'.repeat(12e6)],
] as const) {
  time(`tokenizer.encode of ${label}`, () => tok.encode(word));
  console.log(`  tokenizer WASM memory after: ${MiB(tok.wasmMemoryBytes)}, RSS ${rss()}`);
}
