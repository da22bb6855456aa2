#!/bin/sh
# The one command for a machine with a GPU (about 5 minutes): embeds the kernels, then runs bench/gpu.ts.
# Arguments pass through, e.g. `sh bench/gpu.sh --peak-tflops 10.4 > gpu.jsonl`.
cd "$(dirname "$0")/.." && npm run --silent build:wasm >&2 && exec npx tsx bench/gpu.ts "$@"
