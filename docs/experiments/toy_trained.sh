#!/usr/bin/env bash
# The toy experiment of docs/toy_selectivity.md with trained implementations (docs/toy_trained.md).
#
#   docs/experiments/toy_trained.sh [K]       # K trained chains per pipeline (default 3)
#
# Trains K chains of every pipeline of specs/toy/pipelines.interp with `congruity sample
# --family trained` (each stage by SIIT on its compiled layout, at the default architecture),
# each pipeline with the pool seed of the compiled run, then compares the six trained pools with
# the compiled run's settings. Every accepted stage model is kept in target/toy-trained/cache
# as soon as it is accepted, so an interrupted run resumes where it stopped (same bytes: a
# training is reproducible for its seed and thread count). Run from the repository root with a
# release build; trainings run one at a time (two candle processes on two cores slow each other
# down severalfold).
set -euo pipefail
K="${1:-3}"
BIN="${CONGRUITY:-target/release/congruity}"
ROOT=target/toy-trained
SPEC=specs/toy/pipelines.interp
mkdir -p "$ROOT"
declare -A SEED=(
  [algo_1]=2581690079423963397 [algo_2]=2108829683022960848 [algo_3]=14713363372695966333
  [algo_4]=7862699620360771558 [algo_5]=5417445431723568420 [algo_6]=58162169616961751
)
POOLS=()
for p in algo_1 algo_2 algo_3 algo_4 algo_5 algo_6; do
  out="$ROOT/k$K/$p"
  if [ ! -f "$out/pool.json" ]; then
    "$BIN" sample "$SPEC" --program "$p" --family trained --fixed-architecture \
      --count "$K" --seed "${SEED[$p]}" --cache-dir "$ROOT/cache" --out "$out"
  fi
  POOLS+=(--pool "$p=$out")
done
"$BIN" compare "$SPEC" --samples "$K" --seed 2026 --inputs 200 --bootstraps 10 --draws 100 \
  "${POOLS[@]}" --svg "docs/toy_trained_selectivity.svg" \
  --transfer-svg "docs/toy_trained_transfer.svg" | tee "docs/toy_trained.txt"
