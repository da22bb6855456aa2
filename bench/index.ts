// `npm run bench`: every benchmark in one run, each reported as a ratio against a baseline measured in the same
// run (these machines are noisy; absolute numbers drift, ratios much less). Sections whose module is missing or
// whose backend is unavailable say so and the rest still runs.
const sections: [string, string, string][] = [
  ['tokenizer: encode tokens/s (ours vs Rust HF binding vs @huggingface/tokenizers)', './tokenizer.js', 'benchTokenizer'],
  ['matmul GFLOP/s on WebGPU (naive vs register-blocked vs workgroup-tiled vs plain JS)', './matmul.js', 'benchMatmul'],
  ['matmul GFLOP/s on CPU (plain JS vs WASM SIMD)', './cpu.js', 'benchCpu'],
  ['matmul GFLOP/s on gpu.js vs plain JS', './gpujs.js', 'benchGpujs'],
  ['training tokens/s, small Qwen2 (H=128, L=4, V=512, B=4, T=64)', './train.js', 'benchTrain'],
  ['CPU at its limit: WASM threads (1..cores) vs PyTorch, small + mid training and sgemm', './cpu-train.js', 'benchCpuTrain'],
];
const only = process.argv.slice(2);
for (const [title, mod, fn] of sections) {
  if (only.length && !only.some((o) => mod.includes(o))) continue;
  console.log(`\n## ${title}`);
  try {
    const m = await import(mod);
    // sections that print their own table are not printed twice (a note line, such as the adapter, is not a table)
    let printed = 0;
    const { table } = console;
    console.table = (...a: Parameters<typeof table>) => (printed++, table(...a));
    const rows = await m[fn]().finally(() => Object.assign(console, { table }));
    if (Array.isArray(rows) && !printed) console.table(rows);
  } catch (e) {
    console.log(`(skipped: ${(e as Error).message.split('\n')[0]})`);
  }
}
export {};
