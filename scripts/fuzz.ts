// `npm run fuzz`: 100,000 seeded inputs per target (test/fuzz/targets.ts: the tokenizer's encode and decode against
// HF's Rust tokenizer, GSM8K split and reward against independent references, the safetensors and config.json
// parsers against garbage), each target in its own worker thread. Prints per target: inputs, crashes, hangs,
// mismatches and memory growth, and exits 1 unless all are zero.
//
//   npm run fuzz                     # 100,000 inputs per target, seed 1
//   npm run fuzz -- --n 5000 --seed 7 --only reward,gsm8k.split
//
// Hangs: a worker publishes the index of the input it is on in shared memory; once it has loaded its target, the
// main thread's watchdog ends a worker whose index has not moved for --hang-ms (default 10 s), reports that input
// as a hang and goes on with the next one in a fresh worker. Memory growth: the WASM linear memory of the code under test after the last input,
// minus after the first 10% (warm-up, when buffers reach their working size); RSS is printed beside it (it moves
// with the JS garbage collector, so it is shown, not judged).
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';

interface Job {
  target: string;
  seed: number;
  from: number;
  to: number;
  progress: SharedArrayBuffer;
}
interface Report {
  target: string;
  inputs: number;
  crashes: number;
  mismatches: number;
  hangs: number;
  wasmGrowth: number;
  rssGrowthMiB: number;
  examples: string[];
  ms: number;
}

async function worker(job: Job): Promise<void> {
  const { allTargets } = await import('../test/fuzz/targets.js');
  const t = (await allTargets()).find((x) => x.name === job.target)!;
  const at = new Int32Array(job.progress);
  Atomics.store(at, 1, 1); // ready: the watchdog starts timing inputs now, not the loading above
  const warm = job.from + Math.ceil((job.to - job.from) / 10);
  let wasm0 = t.wasmBytes();
  let rss0 = process.memoryUsage().rss;
  const r = { crashes: 0, mismatches: 0, examples: [] as string[] };
  for (let i = job.from; i < job.to; i++) {
    Atomics.store(at, 0, i);
    let outcome: Awaited<ReturnType<typeof t.check>>;
    try {
      outcome = await t.check(t.make(job.seed, i));
    } catch (e) {
      outcome = { kind: 'crash' as const, detail: `input ${i}: ${(e as Error)?.stack ?? String(e)}` };
    }
    if (outcome.kind === 'crash') r.crashes++;
    if (outcome.kind === 'mismatch') r.mismatches++;
    if (outcome.kind !== 'ok' && r.examples.length < 3) r.examples.push(`#${i} ${outcome.kind}: ${outcome.detail}`);
    if (i === warm) {
      wasm0 = t.wasmBytes();
      rss0 = process.memoryUsage().rss;
    }
  }
  Atomics.store(at, 0, job.to);
  parentPort!.postMessage({ ...r, wasmGrowth: t.wasmBytes() - wasm0, rssGrowthMiB: (process.memoryUsage().rss - rss0) / 2 ** 20 });
}

/** Runs [from, to) of a target in workers, restarting after a hang; merges the results. */
async function runTarget(target: string, seed: number, n: number, hangMs: number): Promise<Report> {
  const rep: Report = { target, inputs: n, crashes: 0, mismatches: 0, hangs: 0, wasmGrowth: 0, rssGrowthMiB: 0, examples: [], ms: 0 };
  const t0 = Date.now();
  let from = 0;
  while (from < n) {
    const progress = new SharedArrayBuffer(8); // [index of the input being checked, ready flag]
    const at = new Int32Array(progress);
    Atomics.store(at, 0, from);
    const w = new Worker(new URL('./fuzz-worker.mjs', import.meta.url), {
      workerData: { target, seed, from, to: n, progress } satisfies Job,
    });
    const result = await new Promise<{ done: Omit<Report, 'target' | 'inputs' | 'hangs' | 'ms'> } | { hungAt: number }>(
      (resolve, reject) => {
        let last = -1;
        let since = Date.now();
        const timer = setInterval(() => {
          const i = Atomics.load(at, 0);
          if (i !== last || !Atomics.load(at, 1)) {
            last = i;
            since = Date.now();
          } else if (Date.now() - since > hangMs) {
            clearInterval(timer);
            void w.terminate();
            resolve({ hungAt: i });
          }
        }, 250);
        w.once('message', (m) => {
          clearInterval(timer);
          resolve({ done: m });
        });
        w.once('error', (e) => {
          clearInterval(timer);
          reject(e);
        });
      },
    );
    if ('hungAt' in result) {
      rep.hangs++;
      if (rep.examples.length < 3) rep.examples.push(`#${result.hungAt} hang: no progress for ${hangMs} ms`);
      from = result.hungAt + 1;
      continue;
    }
    const d = result.done;
    rep.crashes += d.crashes;
    rep.mismatches += d.mismatches;
    rep.wasmGrowth = d.wasmGrowth;
    rep.rssGrowthMiB = d.rssGrowthMiB;
    rep.examples.push(...d.examples.slice(0, 3 - rep.examples.length));
    from = n;
  }
  rep.ms = Date.now() - t0;
  return rep;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '100000' },
      seed: { type: 'string', default: '1' },
      only: { type: 'string' },
      'hang-ms': { type: 'string', default: '10000' },
    },
  });
  const n = Number(values.n);
  const seed = Number(values.seed);
  const hangMs = Number(values['hang-ms']);
  if (!Number.isSafeInteger(n) || n <= 0 || !Number.isSafeInteger(seed) || !(hangMs > 0)) {
    console.error('fuzz: --n and --seed must be integers (n > 0), --hang-ms a positive number');
    return 2;
  }
  const { allTargets } = await import('../test/fuzz/targets.js');
  const names = (await allTargets()).map((t) => t.name);
  const only = values.only ? values.only.split(',') : names;
  const unknown = only.filter((x) => !names.includes(x));
  if (unknown.length) {
    console.error(`fuzz: unknown target ${unknown.join(', ')} (targets: ${names.join(', ')})`);
    return 2;
  }
  console.log(`fuzz: ${n} inputs per target, seed ${seed}, hang limit ${hangMs} ms`);
  console.log('target              inputs   crashes  hangs  mismatches  wasm-growth-bytes  rss-change-MiB  seconds');
  let bad = 0;
  // Two targets at a time: enough to use two cores, few enough to share a machine.
  const queue = [...only];
  const reports: Report[] = [];
  await Promise.all(
    [0, 1].map(async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        const r = await runTarget(t, seed, n, hangMs);
        reports.push(r);
        bad += r.crashes + r.hangs + r.mismatches + (r.wasmGrowth !== 0 ? 1 : 0);
        console.log(
          `${r.target.padEnd(18)} ${String(r.inputs).padStart(7)} ${String(r.crashes).padStart(9)} ${String(r.hangs).padStart(6)} ${String(
            r.mismatches,
          ).padStart(
            11,
          )} ${String(r.wasmGrowth).padStart(18)} ${r.rssGrowthMiB.toFixed(1).padStart(15)} ${(r.ms / 1000).toFixed(1).padStart(8)}`,
        );
        for (const e of r.examples) console.log(`    ${e}`);
      }
    }),
  );
  console.log(bad ? `fuzz: FAILED (${bad} problems)` : 'fuzz: all zero');
  return bad ? 1 : 0;
}

if (isMainThread) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  void worker(workerData as Job);
}
