#!/usr/bin/env bash
# Issue 23's whole Beauty grid under the authors' protocol, resumable (every step skips outputs that exist, and a
# killed training run goes on after its last finished epoch from <out stem>.checkpoint.pt):
#
#   benchmarks/run_beauty_grid.sh ../shared/data/beauty /work/runs/paper/beauty
#
#   1. data and text-mean stores (plain and shuffled) per seed: <root>/seed<s>/ (benchmarks/run_paper_protocol.sh),
#      and the same on the tie-shuffled preparation (--tie-seed 0): <root>_ties/seed<s>/
#   2. tuning on seed 0, per backbone, alone and + text-mean separately: a coordinate search over (learning
#      rate, decay step) from (START_LR, START_STEP) over LRS and LR_STEPS, each list widened beyond an end
#      that wins (lr halved / doubled, step halved / doubled, at most EXTENSIONS times an end; a step of
#      MAX_EPOCHS = no decay is a limit), the six searches in one command sharing JOBS runs
#      (llm4sbr_adapter.experiments.training.schedule_search); a run trains at most MAX_EPOCHS epochs with
#      PATIENCE epochs of patience on validation MRR@20, prefix items ranked last when validation prefers it
#      (--exclude-seen choose): <root>/tune23/<model>[_enh]_lr<lr>_step<step>.json (existing ones, the
#      earlier 3 x 3 grid's too, are read, not rerun) and <root>/tune23/<model>_<variant>.search.json
#   3. <root>/tune23/chosen.tsv, the search command's lines (STEPS=chosen alone runs the same command: it
#      reads the runs there and trains only what is missing): per backbone and variant the chosen setting, its
#      validation MRR@20, and a note when a chosen value is still the smallest or largest tried, its best
#      epoch is the last allowed, or a run in the folder off the search's path scored higher
#   4. each backbone with its chosen setting, SEEDS seeds: alone and + text-mean into <root>/results23/ (seed 0's
#      are the tuning runs of the chosen settings, copied),
#      + shuffled text-mean (the + text-mean setting) into <root>/shuffled23/; the epoch is each run's own
#      validation choice (at most MAX_EPOCHS, same patience)
#   5. every simple baseline per seed (llm4sbr_adapter.experiments.baselines) into <root>/results23/
#   6. the tie-shuffled preparation: TIE_MODELS with the same chosen settings, and the baselines, into
#      <root>_ties/results23/ and <root>_ties/shuffled23/
#   7. Table 2 of both: <root>/table2_issue23.{md,json}, <root>_ties/table2_issue23.{md,json}; each backbone is
#      compared with the best baseline on validation and with the VERSUS baselines (V-STAN: the strongest simple
#      method of the recent comparisons, Ludewig et al. 2021, Shehzad and Jannach 2024)
#
# Environment: SEEDS ("0 1 2"), MODELS ("srgnn narm stamp"), TIE_MODELS ("srgnn": the headline's backbone),
# JOBS (2 runs at once, one thread each), LRS ("5e-4 1e-3 2e-3"), LR_STEPS ("3 6 12"), START_LR (1e-3),
# START_STEP (6), EXTENSIONS (4: on ML-100K two were not enough), MAX_EPOCHS (30), PATIENCE (3), VERSUS (vstan),
# STEPS ("data tune chosen final baselines ties table").
#
# Wall time on 2 free cores, JOBS=2 (from CPU seconds measured on Beauty seed 0, one thread: a training epoch
# takes 47 s SR-GNN, 118 s NARM, 54 s STAMP, a validation pass ~3 s; + text-mean x1.04 SR-GNN, x1.13 STAMP
# (Table 3), NARM assumed x1.13; one baseline search point 1.5-6 s): about 14 h when runs average 12 epochs,
# about 31 h if every run went to 30; the tuning is ~60 % of it, the baselines ~3.4 h of CPU by that estimate (measured after the sparse
# ranks, session 11: 25-35 CPU-minutes a seed, 42 min wall for 3 seeds). Measured for SR-GNN: its tuning took 21 runs
# (3-4 best epochs, 5-12 min a run) in ~90 min wall, its 7 final runs 24 min; the tie step for SR-GNN (9 runs
# and the baselines of 3 tie seeds) with the kNN/STAN baselines of 3 seeds, in one queue: 2 h 26 min wall
# (session 12, beside ~35 CPU-min of V-SKNN/V-STAN reruns and other work). STAMP's tuning: 16 runs (6 alone,
# 10 + text-mean; 6-22 epochs, 6-27 min a run) in ~100 min wall (session 13). A search makes
# 5 runs when the start point wins, 6-8 when one setting moves (one more per widening), 10-13 when both move
# (the second pass re-checks the lrs at the new step); on a bowl in (log2 lr, log2 step) peaking at each of
# lr 5e-4, 1e-3, 2e-3, 4e-3 x step 3, 6, 12, 24 that is 9.25 runs on average (5-13), so the six searches make
# about as many runs as the 3 x 3 grid's 54, and about the same time, while no chosen value stays on an end
# unless EXTENSIONS is reached. A widening is one run at a time within its search: the other searches fill JOBS.
set -euo pipefail
src=$1 root=$2 ties=${2}_ties
SEEDS=${SEEDS:-"0 1 2"} MODELS=${MODELS:-"srgnn narm stamp"} JOBS=${JOBS:-2}
TIE_MODELS=${TIE_MODELS:-srgnn} LRS=${LRS:-"5e-4 1e-3 2e-3"} LR_STEPS=${LR_STEPS:-"3 6 12"}
START_LR=${START_LR:-1e-3} START_STEP=${START_STEP:-6} EXTENSIONS=${EXTENSIONS:-4}
MAX_EPOCHS=${MAX_EPOCHS:-30} PATIENCE=${PATIENCE:-3} VERSUS=${VERSUS:-vstan} STEPS=${STEPS:-"data tune chosen final baselines ties table"}
cd "$(dirname "$0")/.."
has() { [[ " $STEPS " == *" $1 "* ]]; }
queue=$(mktemp)
trap 'rm -f "$queue"' EXIT

# train <data folder> <model> <seed> <lr> <step> <out> [store prefix]: one line for the job queue, unless <out> exists
train() {
  local data=$1 model=$2 seed=$3 lr=$4 step=$5 out=$6 prefix=${7:-}
  [ -f "$out" ] && return 0
  # seed 0's run with a chosen setting is the search's run (the same command, --out aside): copy it and its
  # ranks file (the JSON names it; it keeps its name) instead of training it again
  local tuned=$root/tune23/${model}${prefix:+_enh}_lr${lr}_step${step}.json
  if [ "$data" = "$root/seed0" ] && [[ "$prefix" == "" || "$prefix" == text_mean ]] \
    && [ -f "$tuned" ] && [ -f "${tuned%.json}.ranks.npz" ]; then
    cp "${tuned%.json}.ranks.npz" "$(dirname "$out")/" && cp "$tuned" "$out.part" && mv "$out.part" "$out"
    return 0
  fi
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
# final <root> <models>: queue the alone, + text-mean and + shuffled text-mean runs of every seed
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
}
baselines() {  # one queued command per seed (it skips the models whose JSON exists)
  local r=$1 s
  mkdir -p "$r/results23"
  for s in $SEEDS; do
    echo "python -m llm4sbr_adapter.experiments.baselines --data $r/seed$s --runs $r/results23 --seed $s" >> "$queue"
  done
}

if has data; then
  STEPS="prepare stores" SEEDS="$SEEDS" benchmarks/run_paper_protocol.sh beauty "$src" "$root"
  STEPS="prepare stores" SEEDS="$SEEDS" EXTRA_PREP="--tie-seed 0" benchmarks/run_paper_protocol.sh beauty "$src" "$ties"
fi

# tune and chosen: the six searches in one command (JOBS runs at once in all), chosen.tsv from its lines
if has tune || has chosen; then
  mkdir -p "$root/tune23"
  # shellcheck disable=SC2086  # MODELS, LRS and LR_STEPS are lists
  python -m llm4sbr_adapter.experiments.training.schedule_search --data "$root/seed0" --out "$root/tune23" \
    --models $MODELS --variants alone enh --store-prefix text_mean --lrs $LRS --steps $LR_STEPS \
    --start-lr "$START_LR" --start-step "$START_STEP" --max-extensions "$EXTENSIONS" --max-epochs "$MAX_EPOCHS" \
    --patience "$PATIENCE" --jobs "$JOBS" --log-level info > "$root/tune23/chosen.tsv.part"
  mv "$root/tune23/chosen.tsv.part" "$root/tune23/chosen.tsv"
  cat "$root/tune23/chosen.tsv"
fi

# one queue for the final, baseline and tie steps (neural runs first, the longer baseline commands after), so
# that no core waits for the slowest job of one step while the next step's jobs are ready
has final && final "$root" "$MODELS"
has ties && final "$ties" "$TIE_MODELS"
has ties && baselines "$ties"
has baselines && baselines "$root"
drain
if has table; then
  for r in "$root" "$ties"; do
    # shellcheck disable=SC2086  # VERSUS is a list
    python -m llm4sbr_adapter.experiments.table2 --results "$r/results23" --shuffled "$r/shuffled23" \
      --versus $VERSUS --json "$r/table2_issue23.json" > "$r/table2_issue23.md"
  done
fi
