#!/usr/bin/env bash
# Issue 22's screening: build one intent store per prompt variant on the same seeded sample of validation
# rows, with the default model run by llama.cpp, then score them all with intent_quality in one run.
#
#   benchmarks/screen_intents.sh DATA_DIR OUT_DIR [VARIANT ...]
#
# DATA_DIR: a prepared folder (prepare_data ... --protocol paper); the sample split valid300 is written into
# it once (split_sample, 300 rows, seed 0). Variants (default: all, in this order):
#   a     the paper's prompts (presets long,short)
#   b     the listing presented as already seen, asking for another item (long_unseen,short_unseen)
#   d     b's wording plus 10 candidates from train.txt's transitions (long_candidates,short_candidates)
#   a_x, b_x, d_x   the same answers, snapped with --exclude-session-items (no LLM call: the cache answers)
# All variants share one SQLite answer cache (OUT_DIR/answers.sqlite3): re-running resumes, and a prompt
# asked by two variants is asked once. Each build's summary (seconds per stage) is kept in OUT_DIR/<v>.log.
# Environment: THREADS (2), LLM (llamacpp:default), ROWS (300), NICE (19).
set -euo pipefail
data=${1:?usage: screen_intents.sh DATA_DIR OUT_DIR [VARIANT ...]} out=${2:?usage: screen_intents.sh DATA_DIR OUT_DIR [VARIANT ...]}
shift 2
variants=("${@:-a b d a_x b_x d_x}")
read -r -a variants <<< "${variants[*]}"
THREADS=${THREADS:-2} LLM=${LLM:-llamacpp:default} ROWS=${ROWS:-300} NICE=${NICE:-19}
mkdir -p "$out"
[ -f "$data/valid$ROWS.txt" ] || python -m llm4sbr_adapter.experiments.data.split_sample --data "$data" --split valid \
  --rows "$ROWS" --seed 0 --name "valid$ROWS"
for v in "${variants[@]}"; do
  case ${v%_x} in
    a) flags=(--perspectives long,short) ;;
    b) flags=(--perspectives long_unseen,short_unseen) ;;
    d) flags=(--perspectives long_candidates,short_candidates --candidate-sessions "$data/train.txt") ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
  [[ $v == *_x ]] && flags+=(--exclude-session-items)
  [ -f "$out/$v.safetensors" ] && { echo "exists: $out/$v.safetensors"; continue; }
  nice -n "$NICE" python -m llm4sbr_adapter.build_store --sessions "$data/valid$ROWS.txt" --items "$data/items.tsv" \
    --llm "$LLM" --threads "$THREADS" --cache "$out/answers.sqlite3" --item-cache-dir "$out/item_cache" \
    --no-progress "${flags[@]}" --output "$out/$v.safetensors" 2>&1 | tee "$out/$v.log"
done
stores=()
for v in "${variants[@]}"; do stores+=("$out/$v.safetensors"); done
python -m llm4sbr_adapter.experiments.evaluation.intent_quality --data "$data" --split "valid$ROWS" --store "${stores[@]}" \
  --json "$out/intent_quality.json" | tee "$out/intent_quality.md"
