#!/usr/bin/env bash
# Build the LLM intent stores of a prepared dataset (llm4sbr_adapter.experiments.prepare_data): one store per split and
# per top-f, all sharing one SQLite answer cache, so the LLM is asked each distinct prompt once.
# Safe to kill and re-run at any time: a re-run asks only the prompts not yet in the cache, and a
# store is written atomically only when its split is complete.
#
# usage: benchmarks/build_llm_stores.sh DATA_DIR [LLM_SPEC] [TOP_F ...]
#   DATA_DIR  folder with train.txt valid.txt test.txt items.tsv
#   LLM_SPEC  default llamacpp:default (the embedded Qwen2.5-Coder-0.5B Q4_K_M run by llama.cpp)
#   TOP_F     default 5; e.g. "0 1 3 5" for the top-f sweep (re-runs reuse the cached answers)
# env: THREADS (LLM threads, default 0 = all cores), SPLITS (default "train valid test"),
#      ON_MISSING_TITLE (items without a title: id_only (default; Beauty has 7), skip_item or error)
set -euo pipefail
data=${1:?usage: build_llm_stores.sh DATA_DIR [LLM_SPEC] [TOP_F ...]}
llm=${2:-llamacpp:default}
shift $(( $# < 2 ? $# : 2 ))
tops=("${@:-5}")
mkdir -p "$data/llm" "$data/stores"
for f in "${tops[@]}"; do
  for split in ${SPLITS:-train valid test}; do
    out="$data/stores/llm_f${f}_${split}.safetensors"
    if [ -f "$out" ]; then echo "exists: $out"; continue; fi
    python -m llm4sbr_adapter.build_store --sessions "$data/$split.txt" --items "$data/items.tsv" \
      --llm "$llm" --threads "${THREADS:-0}" --top-f "$f" --on-missing-title "${ON_MISSING_TITLE:-id_only}" \
      --cache "$data/llm/answers.sqlite3" \
      --item-cache-dir "$data/llm/item_cache" --output "$out"
  done
done
