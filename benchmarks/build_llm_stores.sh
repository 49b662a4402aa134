#!/usr/bin/env bash
# Build the LLM intent stores of a prepared dataset (llm4sbr_adapter.experiments.data.prepare_data): one store per split and
# per top-f, all sharing one SQLite answer cache, so the LLM is asked each distinct prompt once.
# Safe to kill and re-run at any time: a re-run asks only the prompts not yet in the cache, and a
# store is written atomically only when its split is complete.
#
# usage: benchmarks/build_llm_stores.sh DATA_DIR [LLM_SPEC] [TOP_F ...]
#   DATA_DIR  folder with train.txt valid.txt test.txt items.tsv
#   LLM_SPEC  default llamacpp:default (the embedded Qwen2.5-Coder-0.5B Q4_K_M run by llama.cpp)
#   TOP_F     default 5; e.g. "0 1 3 5" for the top-f sweep (re-runs reuse the cached answers)
# env: THREADS (LLM threads, default 0 = all cores; on a machine busy with other work 1 is much faster:
#      llama.cpp's threads wait for each other), SPLITS (default "train valid test"),
#      ON_MISSING_TITLE (items without a title: id_only (default; Beauty has 7), skip_item or error),
#      NAME (store name prefix, default llm: DATA_DIR/stores/NAME_f<f>_<split>.safetensors),
#      BUILD_FLAGS (more build_store flags, e.g. "--perspectives long_unseen,short_unseen --no-item-ids"),
#      CACHE (answer cache, default DATA_DIR/llm/answers.sqlite3; share one between seeds whose prompts agree),
#      ANSWERS (if set: after each split, export the cache's answers to this .jsonl.gz, e.g. to commit them),
#      NICE (default 0).
set -euo pipefail
data=${1:?usage: build_llm_stores.sh DATA_DIR [LLM_SPEC] [TOP_F ...]}
llm=${2:-llamacpp:default}
shift $(( $# < 2 ? $# : 2 ))
tops=("${@:-5}")
cache=${CACHE:-$data/llm/answers.sqlite3}
mkdir -p "$data/llm" "$data/stores" "$(dirname "$cache")"
# shellcheck disable=SC2206
extra=(${BUILD_FLAGS:-})
for f in "${tops[@]}"; do
  for split in ${SPLITS:-train valid test}; do
    out="$data/stores/${NAME:-llm}_f${f}_${split}.safetensors"
    if [ -f "$out" ]; then echo "exists: $out"; continue; fi
    nice -n "${NICE:-0}" python -m llm4sbr_adapter.build_store --sessions "$data/$split.txt" --items "$data/items.tsv" \
      --llm "$llm" --threads "${THREADS:-0}" --top-f "$f" --on-missing-title "${ON_MISSING_TITLE:-id_only}" \
      --cache "$cache" --item-cache-dir "$data/llm/item_cache" --output "$out" "${extra[@]}"
    if [ -n "${ANSWERS:-}" ]; then python -m llm4sbr_adapter.build_store answers --cache "$cache" --output "$ANSWERS"; fi
  done
done
