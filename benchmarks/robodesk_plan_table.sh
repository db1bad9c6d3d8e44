#!/usr/bin/env bash
# RoboDesk planning table on the TEST instances, in chunks that survive a sitting's end.
#
#   POLICY=model MODEL=RUN bash benchmarks/robodesk_plan_table.sh OUT
#   POLICY=oracle SETTINGS="--set plan.samples=32 --set plan.horizon=5" bash ... OUT
#
# One `maskvit plan --split test` run per (task, chunk of CHUNK instances): OUT/POLICY/TASK_FIRST/.
# A finished chunk (its results.json exists) is skipped, so rerunning the script after an
# interruption plays only what is missing; commit OUT between sittings. Settings come from
# the tuning instances (benchmarks/robodesk_plan_tuning.sh), never from these.
# TASKS (default: the three buttons, open_slide, open_drawer), INSTANCES (per task, default 30),
# CHUNK (default 5), WORKERS (default 2), SETTINGS (extra flags, e.g. --set plan.samples=50).
# The table: python benchmarks/robodesk_plan_table.py OUT
set -euo pipefail
OUT=${1:?usage: robodesk_plan_table.sh OUT}
POLICY=${POLICY:-model}
TASKS=${TASKS:-"push_red push_green push_blue open_slide open_drawer"}
INSTANCES=${INSTANCES:-30}
CHUNK=${CHUNK:-5}
WORKERS=${WORKERS:-2}
model_flags=()
[ -n "${MODEL:-}" ] && model_flags=(--model "$MODEL")
# One model and one set of flags per OUT/POLICY: a rerun with others is refused, not mixed in.
mkdir -p "$OUT/$POLICY"
wanted="model=${MODEL:-} settings=${SETTINGS:-}"
if [ -f "$OUT/$POLICY/settings.txt" ]; then
  if [ "$(cat "$OUT/$POLICY/settings.txt")" != "$wanted" ]; then
    echo "error: $OUT/$POLICY was played with $(cat "$OUT/$POLICY/settings.txt"), not $wanted; use another OUT" >&2
    exit 2
  fi
else
  echo "$wanted" > "$OUT/$POLICY/settings.txt"
fi
for ((first = 0; first < INSTANCES; first += CHUNK)); do  # every task's first chunk, then the next
  for task in $TASKS; do
    run="$OUT/$POLICY/${task}_$(printf %03d "$first")"
    [ -f "$run/results.json" ] && continue
    count=$((INSTANCES - first < CHUNK ? INSTANCES - first : CHUNK))
    # shellcheck disable=SC2086
    maskvit plan --env robodesk --split test --policy "$POLICY" "${model_flags[@]}" --task "$task" \
      --first-task "$first" --episodes "$count" --workers "$WORKERS" --no-progress --out "$run" \
      ${SETTINGS:-}
  done
done
python benchmarks/robodesk_plan_table.py "$OUT"
