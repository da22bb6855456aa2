#!/usr/bin/env bash
# The sub-step grid on the serial preset: five conditions x seeds through examples/train.ts, two runs at a time.
#   scripts/serial-grid.sh OUT_DIR [STEPS] [SEEDS...]       then: npx tsx scripts/serial-grid-table.ts OUT_DIR
# Every condition gets identical data, order, budget and the same held-out problems; internalize and pause share
# the stage schedule (4 stages of STEPS/4 steps, c = 1 slot per replaced sub-step).
set -euo pipefail
out=${1:?usage: scripts/serial-grid.sh OUT_DIR [STEPS] [SEEDS...]}
steps=${2:-300}
shift $(( $# >= 2 ? 2 : 1 ))
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(0 1 2)
common="--preset serial --steps $steps --eval-every 0 --eval-rows 64 --gen-rows 500 --gen-no-latents 0"
declare -A flags=(
  [none]="--condition none"
  [pause]="--condition pause --latents 1 --stages 4"
  [latent]="--condition latent --latents 3"
  [scratch]="--condition scratch"
  [internalize]="--condition internalize --latents 1 --stages 4 --step-decode 1"
)
jobs_list=()
# CONDITIONS="scratch internalize" runs a subset; a run whose summary.json exists is skipped (re-run to resume a grid)
for seed in "${seeds[@]}"; do for c in ${CONDITIONS:-none pause latent scratch internalize}; do jobs_list+=("$c $seed"); done; done
run() {
  local c=$1 seed=$2 dir="$out/$1-s$2"
  [ -f "$dir/summary.json" ] && return 0
  npx tsx examples/train.ts $common ${flags[$c]} ${EXTRA_FLAGS:-} --seed "$seed" --out "$dir" > "$dir.log" 2>&1 || echo "FAILED: $c seed $seed (see $dir.log)"
}
mkdir -p "$out"
for j in "${jobs_list[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "${PARALLEL:-2}" ]; do sleep 2; done
  run $j &
done
wait
