#!/usr/bin/env bash
# Choose each backbone's learning rate and decay step on validation, then run the paper-protocol grid
# with the chosen schedule (the default grid keeps SR-GNN's published schedule, lr 1e-3 x0.1 every 3 epochs).
#
#   benchmarks/tune_schedule.sh /work/runs/paper/ml100k
#
# <root> is a folder written by benchmarks/run_paper_protocol.sh (seed<s>/ with stores, results/ with the
# baselines). Tuning: seed 0, backbone alone, at most 30 epochs, patience 5, (lr, step) in
# {(1e-3, 3), (1e-3, 10), (3e-3, 10)}; the highest validation MRR@20 wins. Then every backbone alone,
# + text-mean and + shuffled text-mean for SEEDS with its schedule, into <root>/results_tuned and
# <root>/shuffled_tuned (the baselines are linked in). Resumable: existing JSONs are skipped.
set -euo pipefail
R=$1
SEEDS=${SEEDS:-"0 1 2"} MODELS=${MODELS:-"srgnn stamp narm"}
cd "$(dirname "$0")/.."
mkdir -p "$R/tune" "$R/results_tuned" "$R/shuffled_tuned"
for m in $MODELS; do
  for cfg in "1e-3 3" "1e-3 10" "3e-3 10"; do
    read -r lr step <<< "$cfg"
    out=$R/tune/${m}_lr${lr}_step${step}.json
    [ -f "$out" ] || python -m llm4sbr_adapter.experiments.training.train --data "$R/seed0" --model "$m" --epochs 30 --patience 5 \
        --lr "$lr" --lr-step "$step" --seed 0 --out "$out" --quiet
  done
done
python benchmarks/choose_schedule.py "$R/tune" > "$R/tune/chosen.txt"
for f in "$R"/results/{pop,markov,sr,sknn,vsknn}_*; do ln -sf "$f" "$R/results_tuned/"; done
for m in $MODELS; do
  read -r _ lr step < <(grep "^$m " "$R/tune/chosen.txt")
  for s in $SEEDS; do
    python benchmarks/repro_table2.py --data "$R/seed$s" --stores "$R/seed$s/stores" --store-prefix text_mean \
      --runs "$R/results_tuned" --models "$m" --seeds "$s" --variants alone enh --epochs 30 --jobs 1 \
      --no-summary --extra --patience 5 --lr "$lr" --lr-step "$step"
    python benchmarks/repro_table2.py --data "$R/seed$s" --stores "$R/seed$s/stores" --store-prefix text_mean_shuffled \
      --runs "$R/shuffled_tuned" --models "$m" --seeds "$s" --variants enh --epochs 30 --jobs 1 \
      --no-summary --extra --patience 5 --lr "$lr" --lr-step "$step"
  done
done
