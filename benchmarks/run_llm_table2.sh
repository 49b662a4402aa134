#!/usr/bin/env bash
# Table 2 with LLM rows on ML-100K under the authors' protocol (issue 22, item 5): 3 seeds, each backbone's
# schedule chosen on validation, SR-GNN / NARM / STAMP alone / + text-mean / + LLM / + shuffled LLM (and
# + shuffled text-mean), the simple baselines and "LLM zero-shot" (the intents alone as a recommender), for
# two kinds of training rows: one per session (the authors') and every prefix of each training session.
#
#   LLM_STORE=llm_f5 benchmarks/run_llm_table2.sh /work/runs/paper/ml100k
#
# <root>/seed<s>/ is a folder of prepare_data movielens --protocol paper --seed <s> (prepared here from SRC
# when absent), with the LLM stores <root>/seed<s>/stores/$LLM_STORE_{train,valid,test}.safetensors built by
# benchmarks/build_llm_stores.sh (NAME=llm, top-f 5 -> llm_f5). Every step skips what exists, so a killed
# run resumes; a missing LLM store skips the LLM rows it feeds (said on stderr) and a later run adds them.
#
# Steps (STEPS, default all, in this order):
#   prepare  <root>/seed<s>_prefixes/: the same preparation with --train-rows prefixes; its valid.txt and
#            test.txt must be byte-identical to seed<s>'s (checked), so the LLM valid/test stores serve both
#   stores   per data folder: text-mean stores and their shuffled control (text_mean_store --shuffle-seed <s>),
#            the shuffled LLM control (experiments.shuffle_store --seed <s>) as $LLM_STORE_shuffled_*; the
#            prefix folders link seed<s>'s LLM valid/test stores and need their own LLM train store (one row
#            per prefix, more prompts): built with BUILD_PREFIX_LLM=1 (build_llm_stores.sh SPLITS=train with
#            LLM_SPEC, CACHE, BUILD_FLAGS), or placed there by hand
#   tune     per row kind, on seed 0, each backbone alone: a coordinate search over (lr, step) from TUNE_START
#            over TUNE_LRS and TUNE_STEPS, each list widened beyond an end that wins (at most TUNE_EXTENSIONS times an end;
#            experiments.training.schedule_search), TUNE_EPOCHS epochs, patience PATIENCE, every item ranked
#            (as the neural step); runs, <model>_alone.search.json and chosen.txt ("model lr step") in <root>/tune_<rows>/
#   neural   per row kind, model, seed, with the chosen schedule: <root>/table2_<rows>/<model>{,_enh,_shuf,_llm,
#            _llmshuf}_s<s>.json (benchmarks/repro_table2.py; EPOCHS, PATIENCE)
#   baselines  experiments.baselines on each data folder into the same results folder (paired on the same data)
#   zeroshot the LLM test store's "together" ranking as a run (intent_quality --runs): llm_zeroshot, and with
#            the row's own items last llm_zeroshot_ownlast; the intent-quality table of the test rows beside it
#   table    <root>/table2_<rows>.md and .json (experiments.evaluation.table2: user-clustered intervals and the
#            comparisons + LLM vs alone / + text-mean / + shuffled LLM / best baseline, zero-shot vs best
#            baseline), the per-seed change from one row per session to every prefix, and the headline rows
#
# Environment: SEEDS ("0 1 2"), MODELS ("srgnn narm stamp"), ROWS ("sessions prefixes"), LLM_STORE (llm_f5),
#   SRC (raw ML-100K; default: the "source" of seed0/stats.json), EPOCHS (30), PATIENCE (5), TUNE_EPOCHS (30),
#   TUNE_LRS ("1e-3 3e-3"), TUNE_STEPS ("3 10"), TUNE_START ("1e-3 3"), TUNE_EXTENSIONS (4), JOBS (1), NICE (0), RESAMPLES (10000),
#   BUILD_PREFIX_LLM (0),
#   LLM_SPEC (llamacpp:default), STEPS ("prepare stores tune neural baselines zeroshot table").
set -euo pipefail
root=${1:?usage: run_llm_table2.sh ROOT}
SEEDS=${SEEDS:-"0 1 2"} MODELS=${MODELS:-"srgnn narm stamp"} ROWS=${ROWS:-"sessions prefixes"}
LLM=${LLM_STORE:-llm_f5} EPOCHS=${EPOCHS:-30} PATIENCE=${PATIENCE:-5} TUNE_EPOCHS=${TUNE_EPOCHS:-30}
TUNE_LRS=${TUNE_LRS:-"1e-3 3e-3"} TUNE_STEPS=${TUNE_STEPS:-"3 10"} TUNE_START=${TUNE_START:-"1e-3 3"} TUNE_EXTENSIONS=${TUNE_EXTENSIONS:-4} JOBS=${JOBS:-1} RESAMPLES=${RESAMPLES:-10000}
STEPS=${STEPS:-"prepare stores tune neural baselines zeroshot table"}
root=$(realpath "$root")
[ -z "${SRC:-}" ] || SRC=$(realpath "$SRC")
cd "$(dirname "$0")/.."
has() { [[ " $STEPS " == *" $1 "* ]]; }
py() { nice -n "${NICE:-0}" python "$@"; }
say() { echo "run_llm_table2: $*" >&2; }
data_of() { if [ "$1" = sessions ]; then echo "$root/seed$2"; else echo "$root/seed$2_prefixes"; fi; }
has_store() { [ -f "$1/stores/$2_train.safetensors" ] && [ -f "$1/stores/$2_valid.safetensors" ] \
  && [ -f "$1/stores/$2_test.safetensors" ]; }

# ---- prepare: both row kinds of every seed, from the same source and settings
for s in $SEEDS; do
  has prepare || break
  d=$root/seed$s
  src=${SRC:-$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["source"])' "$root/seed0/stats.json" 2>/dev/null || true)}
  if [ ! -f "$d/stats.json" ]; then
    py -m llm4sbr_adapter.experiments.data.prepare_data movielens --protocol paper --seed "$s" --src "${src:?set SRC}" \
      --out "$d" > "$root/table1_s$s.md"
  fi
  if [[ " $ROWS " == *" prefixes "* ]] && [ ! -f "$d"_prefixes/stats.json ]; then
    py -m llm4sbr_adapter.experiments.data.prepare_data movielens --protocol paper --seed "$s" --src "${src:?set SRC}" \
      --out "$d"_prefixes --train-rows prefixes > "$root/table1_s${s}_prefixes.md"
  fi
  if [ -d "$d"_prefixes ]; then
    cmp -s "$d/valid.txt" "$d"_prefixes/valid.txt && cmp -s "$d/test.txt" "$d"_prefixes/test.txt \
      || { say "error: $d""_prefixes/{valid,test}.txt differ from $d's: prepare both with the same settings"; exit 2; }
  fi
done

# ---- stores: text-mean, shuffled text-mean, shuffled LLM (and the prefix folders' LLM stores)
for rows in $ROWS; do
  for s in $SEEDS; do
    has stores || break 2
    d=$(data_of "$rows" "$s")
    [ -f "$d/stores/text_mean_test.safetensors" ] || py -m llm4sbr_adapter.experiments.data.text_mean_store --data "$d" --out "$d/stores"
    [ -f "$d/stores/text_mean_shuffled_test.safetensors" ] \
      || py -m llm4sbr_adapter.experiments.data.text_mean_store --data "$d" --out "$d/stores" --shuffle-seed "$s"
    if [ "$rows" = prefixes ]; then
      for split in valid test; do
        [ -e "$d/stores/${LLM}_$split.safetensors" ] || [ ! -f "$root/seed$s/stores/${LLM}_$split.safetensors" ] \
          || ln -s "$root/seed$s/stores/${LLM}_$split.safetensors" "$d/stores/${LLM}_$split.safetensors"
      done
      if [ ! -f "$d/stores/${LLM}_train.safetensors" ] && [ "${BUILD_PREFIX_LLM:-0}" = 1 ]; then
        SPLITS=train NAME=${LLM%_f*} NICE=${NICE:-0} benchmarks/build_llm_stores.sh "$d" "${LLM_SPEC:-llamacpp:default}" "${LLM##*_f}"
      fi
    fi
    if ! has_store "$d" "$LLM"; then say "no $d/stores/${LLM}_{train,valid,test}.safetensors yet: its LLM rows wait"; continue; fi
    for split in train valid test; do
      out=$d/stores/${LLM}_shuffled_$split.safetensors
      [ -f "$out" ] || py -m llm4sbr_adapter.experiments.shuffle_store --store "$d/stores/${LLM}_$split.safetensors" \
        --seed "$s" --out "$out"
    done
  done
done

# ---- tune: each backbone's (lr, step) on seed 0's validation, per row kind
for rows in $ROWS; do
  has tune || break
  t=$root/tune_$rows
  mkdir -p "$t"
  # shellcheck disable=SC2086  # MODELS, TUNE_LRS and TUNE_STEPS are lists
  py -m llm4sbr_adapter.experiments.training.schedule_search --data "$(data_of "$rows" 0)" --out "$t" --models $MODELS \
    --lrs $TUNE_LRS --steps $TUNE_STEPS --start-lr "${TUNE_START% *}" --start-step "${TUNE_START#* }" --max-extensions "$TUNE_EXTENSIONS" \
    --max-epochs "$TUNE_EPOCHS" --patience "$PATIENCE" --exclude-seen never --jobs "$JOBS" > "$t/chosen.tsv.part"
  awk -F'\t' '{ print $1, $3, $4 }' "$t/chosen.tsv.part" > "$t/chosen.txt" && rm "$t/chosen.tsv.part"
done

# ---- neural: alone, + text-mean, + shuffled text-mean, + LLM, + shuffled LLM with the chosen schedule
for rows in $ROWS; do
  has neural || break
  r=$root/table2_$rows
  for m in $MODELS; do
    read -r _ lr step < <(grep "^$m " "$root/tune_$rows/chosen.txt") || { say "no schedule for $m ($rows): run STEPS=tune"; exit 2; }
    for s in $SEEDS; do
      d=$(data_of "$rows" "$s")
      grid() { py benchmarks/repro_table2.py --data "$d" --stores "$d/stores" --runs "$r" --models "$m" --seeds "$s" \
        --epochs "$EPOCHS" --jobs "$JOBS" --no-summary "$@" --extra --patience "$PATIENCE" --lr "$lr" --lr-step "$step"; }
      grid --store-prefix text_mean --variants alone enh
      grid --store-prefix text_mean_shuffled --variants enh --enh-suffix _shuf
      if has_store "$d" "$LLM"; then grid --store-prefix "$LLM" --variants enh --enh-suffix _llm; fi
      if has_store "$d" "${LLM}_shuffled"; then grid --store-prefix "${LLM}_shuffled" --variants enh --enh-suffix _llmshuf; fi
    done
  done
done

# ---- baselines and LLM zero-shot: on every data folder, into its results folder
for rows in $ROWS; do
  for s in $SEEDS; do
    d=$(data_of "$rows" "$s") r=$root/table2_$rows
    if has baselines; then py -m llm4sbr_adapter.experiments.baselines --data "$d" --runs "$r" --name-suffix "_s$s" --seed "$s"; fi
    if has zeroshot && [ -f "$d/stores/${LLM}_test.safetensors" ]; then
      mkdir -p "$root/intent_quality"
      for name in llm_zeroshot llm_zeroshot_ownlast; do
        [ -f "$r/${name}_s$s.json" ] && continue
        flags=()
        if [ "$name" = llm_zeroshot_ownlast ]; then flags+=(--own-items-last); fi
        # the transition control reads train.txt's transitions and refuses prefix rows (the ranking needs none)
        if [ "$rows" = prefixes ]; then flags+=(--no-transitions); fi
        py -m llm4sbr_adapter.experiments.evaluation.intent_quality --data "$d" --split test \
          --store "$d/stores/${LLM}_test.safetensors" --runs "$r" --name "$name" --seed "$s" "${flags[@]}" \
          --json "$root/intent_quality/test_${rows}_s$s.json" > "$root/intent_quality/test_${rows}_s$s.md"
      done
    fi
  done
done

# ---- table: Table 2 per row kind, the change between row kinds, the headline comparisons
if has table; then
  for rows in $ROWS; do
    python -m llm4sbr_adapter.experiments.evaluation.table2 --results "$root/table2_$rows" --resamples "$RESAMPLES" \
      --json "$root/table2_$rows.json" > "$root/table2_$rows.md"
    echo "wrote $root/table2_$rows.md"
  done
  if [ -d "$root/table2_sessions" ] && [ -d "$root/table2_prefixes" ]; then
    python -m llm4sbr_adapter.experiments.evaluation.table2 --results "$root/table2_sessions" \
      --sensitivity "$root/table2_prefixes" > "$root/table2_sessions_vs_prefixes.md"
  fi
  python - "$root" $ROWS <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
for rows in sys.argv[2:]:
    data = json.loads((root / f"table2_{rows}.json").read_text())
    print(f"\nheadline, training rows: {rows} (HR@20 / MRR@20, b - a in points, 95% interval over test users)")
    for d in data["differences"]:
        if "LLM" not in d["comparison"]:
            continue
        cells = [f"{m} {100 * d[m]['diff']:+.2f} [{100 * d[m]['lo']:+.2f}, {100 * d[m]['hi']:+.2f}]" for m in ("HR@20", "MRR@20")]
        lo, hi = d["HR@20"]["lo"], d["HR@20"]["hi"]
        verdict = "beats" if lo > 0 else ("loses to" if hi < 0 else "not resolved against")
        print(f"- {d['comparison']}: {'; '.join(cells)} -> LLM row {verdict} the other (HR@20)")
PY
fi
