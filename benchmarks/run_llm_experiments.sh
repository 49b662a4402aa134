#!/usr/bin/env bash
# The LLM-intent experiments of the reproduction (paper's Table 2, Figure 4, Figure 5) on a prepared
# dataset whose LLM stores were built by benchmarks/build_llm_stores.sh. Every run writes its own JSON
# and is skipped when that JSON exists, so the whole script resumes where it stopped.
#
# usage: benchmarks/run_llm_experiments.sh DATA_DIR
#   needs  DATA_DIR/stores/llm_f{0,1,3,5}_{train,valid,test}.safetensors   (built here if missing)
#          DATA_DIR/results/<model>_s<seed>.json                            (backbones alone: repro_table2.py)
# env: JOBS (parallel runs, default 2), SEEDS (default "0 1 2"), MODELS (default "srgnn narm stamp"),
#      EPOCHS (default 10)
set -euo pipefail
data=${1:?usage: run_llm_experiments.sh DATA_DIR}
here=$(cd "$(dirname "$0")" && pwd)
jobs=${JOBS:-2}; seeds=${SEEDS:-0 1 2}; models=${MODELS:-srgnn narm stamp}; epochs=${EPOCHS:-10}

# top-f stores from the cached answers (no LLM call when the f=5 build has finished)
"$here/build_llm_stores.sh" "$data" llamacpp:default 5 0 1 3

grid() {  # grid RUNS_DIR PREFIX MODELS [extra flags for llm4sbr_adapter.experiments.training.train...]
  local runs=$1 prefix=$2 ms=$3; shift 3
  local extra=()
  [ $# -gt 0 ] && extra=(--extra "$@")
  # shellcheck disable=SC2086
  python "$here/repro_table2.py" --data "$data" --stores "$data/stores" --store-prefix "$prefix" \
    --runs "$data/$runs" --models $ms --seeds $seeds --variants enh --epochs "$epochs" --jobs "$jobs" \
    "${extra[@]}"
}

# Table 2: every backbone with the LLM intents (f = 5, both perspectives); alone runs copied in so the
# summary pairs them.
mkdir -p "$data/results_llm"
for m in $models; do
  for s in $seeds; do
    for ext in json ranks.npz; do
      [ -f "$data/results/${m}_s${s}.$ext" ] && cp -n "$data/results/${m}_s${s}.$ext" "$data/results_llm/"
    done
  done
done
grid results_llm llm_f5 "$models"
# Figure 4: one perspective only (SR-GNN)
grid results_llm_long_only llm_f5 srgnn --perspectives long
grid results_llm_short_only llm_f5 srgnn --perspectives short
# Figure 5: top-f sweep (SR-GNN; f = 5 is results_llm)
for f in 0 1 3; do grid "results_llm_f$f" "llm_f$f" srgnn; done

python -m llm4sbr_adapter.experiments.evaluation.summarize --runs "$data/results_llm" --data "$data" --versus "$data/results" \
  --json "$data/results_llm/summary.json"

# HIPHOP (issue 5): SR-GNN with the LLM intents alone, and with all four HIPHOP parts + LLM intents,
# same settings as the other HIPHOP runs (docs/hiphop.md); compare with DATA_DIR/hiphop/{plain,all}_s*.
mkdir -p "$data/hiphop"
stores=()
for split in train valid test; do stores+=(--store-$split "$data/stores/llm_f5_$split.safetensors"); done
for s in $seeds; do
  for cfg in "enh_llm|" "all_llm|--semantic add --intents --neighbours --contrastive"; do
    name=${cfg%%|*}; flags=${cfg#*|}
    out="$data/hiphop/${name}_s$s.json"
    [ -f "$out" ] && continue
    # shellcheck disable=SC2086
    python -m llm4sbr_adapter.experiments.training.hiphop_srgnn --data "$data" --epochs 8 --patience 2 --encoder-cache "$data/llm/hiphop_enc" \
      --seed "$s" $flags --enhancer "${stores[@]}" --out "$out" > "${out%.json}.log" 2>&1
  done
done
