#!/usr/bin/env bash
# Issue 23's whole Beauty grid under the authors' protocol, resumable (every step skips outputs that exist):
#
#   benchmarks/run_beauty_grid.sh ../shared/data/beauty /work/runs/paper/beauty
#
#   1. data and text-mean stores (plain and shuffled) per seed: <root>/seed<s>/ (benchmarks/run_paper_protocol.sh),
#      and the same on the tie-shuffled preparation (--tie-seed 0): <root>_ties/seed<s>/
#   2. tuning on seed 0, per backbone, alone and + text-mean separately: every (learning rate, decay step) of
#      LRS x LR_STEPS, at most MAX_EPOCHS epochs with PATIENCE epochs of patience on validation MRR@20, prefix
#      items ranked last when validation prefers it (--exclude-seen choose): <root>/tune23/<model>[_enh]_lr<lr>_step<step>.json
#   3. <root>/tune23/chosen.tsv: per backbone and variant the setting with the best validation MRR@20 (and a
#      warning when the chosen learning rate or step is the smallest or largest tried)
#   4. each backbone with its chosen setting, SEEDS seeds: alone and + text-mean into <root>/results23/,
#      + shuffled text-mean (the + text-mean setting) into <root>/shuffled23/; the epoch is each run's own
#      validation choice (at most MAX_EPOCHS, same patience)
#   5. every simple baseline per seed (llm4sbr_adapter.experiments.baselines) into <root>/results23/
#   6. the tie-shuffled preparation: TIE_MODELS with the same chosen settings, and the baselines, into
#      <root>_ties/results23/ and <root>_ties/shuffled23/
#   7. Table 2 of both: <root>/table2_issue23.{md,json}, <root>_ties/table2_issue23.{md,json}
#
# Environment: SEEDS ("0 1 2"), MODELS ("srgnn narm stamp"), TIE_MODELS ("srgnn": the headline's backbone),
# JOBS (2 runs at once, one thread each), LRS ("5e-4 1e-3 2e-3"), LR_STEPS ("3 6 12"), MAX_EPOCHS (30),
# PATIENCE (3), STEPS ("data tune chosen final baselines ties table").
#
# Wall time on 2 free cores, JOBS=2 (from CPU seconds measured on Beauty seed 0, one thread: a training epoch
# takes 47 s SR-GNN, 118 s NARM, 54 s STAMP, a validation pass ~3 s; + text-mean x1.04 SR-GNN, x1.13 STAMP
# (Table 3), NARM assumed x1.13; one baseline search point 1.5-6 s): about 14 h when runs average 12 epochs,
# about 31 h if every run went to 30; the tuning is ~60 % of it, the baselines ~3.4 h of CPU.
set -euo pipefail
src=$1 root=$2 ties=${2}_ties
SEEDS=${SEEDS:-"0 1 2"} MODELS=${MODELS:-"srgnn narm stamp"} JOBS=${JOBS:-2}
TIE_MODELS=${TIE_MODELS:-srgnn} LRS=${LRS:-"5e-4 1e-3 2e-3"} LR_STEPS=${LR_STEPS:-"3 6 12"}
MAX_EPOCHS=${MAX_EPOCHS:-30} PATIENCE=${PATIENCE:-3} STEPS=${STEPS:-"data tune chosen final baselines ties table"}
cd "$(dirname "$0")/.."
has() { [[ " $STEPS " == *" $1 "* ]]; }
queue=$(mktemp)
trap 'rm -f "$queue"' EXIT

# train <data folder> <model> <seed> <lr> <step> <out> [store prefix]: one line for the job queue, unless <out> exists
train() {
  local data=$1 model=$2 seed=$3 lr=$4 step=$5 out=$6 prefix=${7:-}
  [ -f "$out" ] && return 0
  local cmd="python -m llm4sbr_adapter.experiments.train --data $data --model $model --seed $seed --threads 1"
  cmd="$cmd --epochs $MAX_EPOCHS --patience $PATIENCE --lr $lr --lr-step $step --exclude-seen choose --out $out --quiet"
  if [ -n "$prefix" ]; then
    cmd="$cmd --enhancer --store-train $data/stores/${prefix}_train.safetensors"
    cmd="$cmd --store-valid $data/stores/${prefix}_valid.safetensors --store-test $data/stores/${prefix}_test.safetensors"
  fi
  echo "$cmd" >> "$queue"
}
# run the queued commands, JOBS at a time; a failed run stops the script once the others finish
drain() {
  [ -s "$queue" ] || return 0
  xargs -P "$JOBS" -I{} -d '\n' bash -c '{} || exit 255' < "$queue"
  : > "$queue"
}
# chosen <model> <variant>: "<lr> <step>" from chosen.tsv
chosen() { awk -v m="$1" -v v="$2" '$1 == m && $2 == v { print $3, $4 }' "$root/tune23/chosen.tsv"; }
# final <root> <models>: alone, + text-mean and + shuffled text-mean runs of every seed
final() {
  local r=$1 m s lr step
  mkdir -p "$r/results23" "$r/shuffled23"
  for m in $2; do
    for s in $SEEDS; do
      read -r lr step < <(chosen "$m" alone)
      train "$r/seed$s" "$m" "$s" "$lr" "$step" "$r/results23/${m}_s$s.json"
      read -r lr step < <(chosen "$m" enh)
      train "$r/seed$s" "$m" "$s" "$lr" "$step" "$r/results23/${m}_enh_s$s.json" text_mean
      train "$r/seed$s" "$m" "$s" "$lr" "$step" "$r/shuffled23/${m}_enh_s$s.json" text_mean_shuffled
    done
  done
  drain
}
baselines() {  # one command per seed (it skips the models whose JSON exists), JOBS at a time
  local r=$1 s
  mkdir -p "$r/results23"
  for s in $SEEDS; do
    echo "python -m llm4sbr_adapter.experiments.baselines --data $r/seed$s --runs $r/results23 --seed $s" >> "$queue"
  done
  drain
}

if has data; then
  STEPS="prepare stores" SEEDS="$SEEDS" benchmarks/run_paper_protocol.sh beauty "$src" "$root"
  STEPS="prepare stores" SEEDS="$SEEDS" EXTRA_PREP="--tie-seed 0" benchmarks/run_paper_protocol.sh beauty "$src" "$ties"
fi

if has tune; then
  mkdir -p "$root/tune23"
  for m in $MODELS; do
    for lr in $LRS; do
      for step in $LR_STEPS; do
        train "$root/seed0" "$m" 0 "$lr" "$step" "$root/tune23/${m}_lr${lr}_step${step}.json"
        train "$root/seed0" "$m" 0 "$lr" "$step" "$root/tune23/${m}_enh_lr${lr}_step${step}.json" text_mean
      done
    done
  done
  drain
fi

if has chosen; then
  python - "$root/tune23" "$LRS" "$LR_STEPS" "$MAX_EPOCHS" > "$root/tune23/chosen.tsv" <<'PY'
import json, pathlib, sys
folder, epochs = pathlib.Path(sys.argv[1]), int(sys.argv[4])
lrs, steps = sorted(float(x) for x in sys.argv[2].split()), sorted(int(x) for x in sys.argv[3].split())
best = {}
for f in sorted(folder.glob("*_lr*_step*.json")):
    r = json.loads(f.read_text())
    key = (r["model"], "enh" if r["enhancer"] else "alone")
    row = (r["valid_at_best"]["MRR@20"], r["config"]["lr"], r["config"]["lr_step"], r["best_epoch"], r["prefix_items_last"])
    if key not in best or row[0] > best[key][0]:
        best[key] = row
for (model, variant), (mrr, lr, step, epoch, last) in sorted(best.items()):
    edges = [f"lr {lr:g} is an end of the grid"] if lr in (lrs[0], lrs[-1]) else []
    if step == steps[0] or (step == steps[-1] and step < epochs):  # a step >= the epochs is "no decay", a limit
        edges.append(f"step {step} is an end of the grid")
    if epoch == epochs:
        edges.append(f"best epoch {epoch} is the last allowed")
    note = "; ".join(edges) or "inside the grid"
    print(f"{model}\t{variant}\t{lr:g}\t{step}\tvalid MRR@20 {mrr:.4f}, best epoch {epoch}, prefix last {last}\t{note}")
PY
  cat "$root/tune23/chosen.tsv"
fi

has final && final "$root" "$MODELS"
has baselines && baselines "$root"
if has ties; then
  final "$ties" "$TIE_MODELS"
  baselines "$ties"
fi
if has table; then
  for r in "$root" "$ties"; do
    python -m llm4sbr_adapter.experiments.table2 --results "$r/results23" --shuffled "$r/shuffled23" \
      --json "$r/table2_issue23.json" > "$r/table2_issue23.md"
  done
fi
