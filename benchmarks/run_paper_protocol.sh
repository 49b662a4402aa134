#!/usr/bin/env bash
# Table 2 under the authors' protocol (--protocol paper), one data folder per seed: the seed draws the
# split (Beauty: the user order; both: the validation users) and the initialisation.
#
#   benchmarks/run_paper_protocol.sh beauty ../shared/data/beauty /work/runs/paper/beauty
#   benchmarks/run_paper_protocol.sh movielens ../shared/data/ml-100k /work/runs/paper/ml100k
#
# Steps, each skipped when its output exists (so a killed run resumes):
#   1. <root>/seed<s>/: llm4sbr_adapter.experiments.data.prepare_data <dataset> --protocol paper --seed <s>
#   2. <root>/seed<s>/stores/: text-mean stores and their shuffled control (--shuffle-seed <s>)
#   3. <root>/results/<model>[_enh]_s<s>.json: each backbone alone and with the text-mean stores;
#      <root>/shuffled/<model>_enh_s<s>.json: with the shuffled stores
#   4. <root>/results/<baseline>_s<s>.json: the simple baselines (llm4sbr_adapter.experiments.baselines)
# Environment: SEEDS (default "0 1 2"), JOBS (2), EPOCHS (8), PATIENCE (2), MODELS ("srgnn narm stamp"),
#   EXTRA_PREP (flags for prepare_data, e.g. "--tie-seed 0"), STEPS ("prepare stores neural baselines"),
#   VARIANTS ("alone enh shuffled": which backbone runs of step 3).
set -euo pipefail
dataset=$1 src=$2 root=$3
SEEDS=${SEEDS:-"0 1 2"} JOBS=${JOBS:-2} EPOCHS=${EPOCHS:-8} PATIENCE=${PATIENCE:-2}
MODELS=${MODELS:-"srgnn narm stamp"} EXTRA_PREP=${EXTRA_PREP:-} STEPS=${STEPS:-"prepare stores neural baselines"}
VARIANTS=${VARIANTS:-"alone enh shuffled"}
cd "$(dirname "$0")/.."
mkdir -p "$root"
has() { [[ " $STEPS " == *" $1 "* ]]; }
variant() { [[ " $VARIANTS " == *" $1 "* ]]; }

for s in $SEEDS; do
  d=$root/seed$s
  if has prepare && [ ! -f "$d/stats.json" ]; then
    # shellcheck disable=SC2086
    python -m llm4sbr_adapter.experiments.data.prepare_data "$dataset" --protocol paper --seed "$s" --src "$src" --out "$d" $EXTRA_PREP \
      | tee "$root/table1_s$s.md"
  fi
  if has stores && [ ! -f "$d/stores/text_mean_test.safetensors" ]; then
    python -m llm4sbr_adapter.experiments.data.text_mean_store --data "$d" --out "$d/stores"
  fi
  if has stores && [ ! -f "$d/stores/text_mean_shuffled_test.safetensors" ]; then
    python -m llm4sbr_adapter.experiments.data.text_mean_store --data "$d" --out "$d/stores" --shuffle-seed "$s"
  fi
done

if has neural; then
  for s in $SEEDS; do
    d=$root/seed$s
    real=""
    variant alone && real="alone"
    variant enh && real="$real enh"
    # shellcheck disable=SC2086
    if [ -n "$real" ]; then python benchmarks/repro_table2.py --data "$d" --stores "$d/stores" --store-prefix text_mean \
      --runs "$root/results" --models $MODELS --seeds "$s" --variants $real --epochs "$EPOCHS" \
      --jobs "$JOBS" --no-summary --extra --patience "$PATIENCE"; fi
    # shellcheck disable=SC2086
    if variant shuffled; then python benchmarks/repro_table2.py --data "$d" --stores "$d/stores" --store-prefix text_mean_shuffled \
      --runs "$root/shuffled" --models $MODELS --seeds "$s" --variants enh --epochs "$EPOCHS" \
      --jobs "$JOBS" --no-summary --extra --patience "$PATIENCE"; fi
  done
fi

if has baselines; then
  for s in $SEEDS; do
    python -m llm4sbr_adapter.experiments.baselines --data "$root/seed$s" --runs "$root/results" --name-suffix "_s$s" --seed "$s"
  done
fi
