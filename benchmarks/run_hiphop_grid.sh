#!/usr/bin/env bash
# SR-GNN + each HIPHOP part (llm4sbr_adapter.experiments.training.hiphop_srgnn) over seeds, on one prepared dataset.
# Runs whose JSON already exists are skipped, so the grid can be killed and re-run.
# Seed-major order: every config of seed 0 first, so a grid cut short still compares all configs.
#
# usage: benchmarks/run_hiphop_grid.sh DATA_DIR RUNS_DIR [CONFIG ...]
#   DATA_DIR  folder written by llm4sbr_adapter.experiments.data.prepare_data; text-mean stores are read from
#             DATA_DIR/stores/text_mean_<split>.safetensors (llm4sbr_adapter.experiments.data.text_mean_store) by the *_textmean configs
#   RUNS_DIR  output folder for <config>_s<seed>.json / .ranks.npz / .log
#   CONFIG    default: all configs listed in the case statement below
# env: SEEDS (default "0 1 2"), JOBS (runs in parallel, default 2), EPOCHS (default 8),
#      PATIENCE (default 2), EXTRA (flags added to every run, e.g. --group-by-user for Beauty)
set -euo pipefail
data=${1:?usage: run_hiphop_grid.sh DATA_DIR RUNS_DIR [CONFIG ...]}
runs=${2:?usage: run_hiphop_grid.sh DATA_DIR RUNS_DIR [CONFIG ...]}
shift 2
all_configs=(plain sem_add intents intents_k2 intents_k8 neigh neigh_cl neigh_cl_hard all enh_textmean all_textmean)
configs=("${@:-${all_configs[@]}}")
stores="--enhancer --store-train $data/stores/text_mean_train.safetensors \
--store-valid $data/stores/text_mean_valid.safetensors --store-test $data/stores/text_mean_test.safetensors"
all_parts="--semantic add --intents --neighbours --contrastive"

parts_of() {
  case "$1" in
    plain) echo "" ;;
    sem_add) echo "--semantic add" ;;
    sem_init) echo "--semantic init" ;;
    sem_add_llmemb) echo "--semantic add --title-encoder llm:default" ;;
    all_llmemb) echo "--semantic add --title-encoder llm:default --intents --neighbours --contrastive" ;;
    intents) echo "--intents" ;;
    intents_k2) echo "--intents --num-intents 2" ;;
    intents_k8) echo "--intents --num-intents 8" ;;
    neigh) echo "--neighbours" ;;
    neigh_cl) echo "--neighbours --contrastive" ;;
    neigh_cl_hard) echo "--neighbours --contrastive --hard-negatives bank" ;;
    all) echo "$all_parts" ;;
    enh_textmean) echo "$stores" ;;
    all_textmean) echo "$all_parts $stores" ;;
    *) echo "unknown config: $1" >&2; return 1 ;;
  esac
}

mkdir -p "$runs"
jobs_file=$(mktemp)
trap 'rm -f "$jobs_file"' EXIT
for seed in ${SEEDS:-0 1 2}; do
  for c in "${configs[@]}"; do
    parts=$(parts_of "$c")
    out="$runs/${c}_s${seed}.json"
    [ -f "$out" ] && { echo "skip $out (exists)"; continue; }
    echo "python -m llm4sbr_adapter.experiments.training.hiphop_srgnn --data $data --epochs ${EPOCHS:-8} --patience ${PATIENCE:-2}" \
      "--encoder-cache $data/llm/hiphop_enc --seed $seed $parts ${EXTRA:-} --threads 1 --quiet" \
      "--out $out > $runs/${c}_s${seed}.log 2>&1 && echo done $out || echo FAILED $out" >> "$jobs_file"
  done
done
xargs -P "${JOBS:-2}" -I{} bash -c '{}' < "$jobs_file"
