#!/usr/bin/env bash
# Choose RoboDesk planning settings on the TUNING instances (10 per task), never the test ones:
# one `maskvit plan --split tuning` run per setting, then a table of solved counts per task.
#
#   POLICY=oracle bash benchmarks/robodesk_plan_tuning.sh OUT 16:5 32:5 32:10
#   POLICY=model MODEL=maskvit/pretrained/robodesk64 bash benchmarks/robodesk_plan_tuning.sh OUT 50:10 200:10
#
# Each setting is SAMPLES:HORIZON (MPPI's M and H; the rest is robodesk64's plan section, or
# EXTRA="--set plan.optimizer=cem ..." on top). TASKS, EPISODES (instances per task, default 10)
# and WORKERS (default 2) narrow or spread the runs. Every run writes OUT/POLICY_MxH/results.json;
# rerunning a finished setting is refused by `plan` (its --out exists): delete it to redo it.
set -euo pipefail
OUT=${1:?usage: robodesk_plan_tuning.sh OUT SAMPLES:HORIZON ...}
shift
POLICY=${POLICY:-oracle}
TASKS=${TASKS:-"push_red push_green push_blue open_slide open_drawer"}
EPISODES=${EPISODES:-10}
WORKERS=${WORKERS:-2}
task_flags=()
for task in $TASKS; do task_flags+=(--task "$task"); done
model_flags=()
[ -n "${MODEL:-}" ] && model_flags=(--model "$MODEL")
for setting in "$@"; do
  samples=${setting%%:*}
  horizon=${setting##*:}
  run="$OUT/${POLICY}_${samples}x${horizon}"
  [ -f "$run/results.json" ] && continue
  # shellcheck disable=SC2086
  maskvit plan --env robodesk --split tuning --policy "$POLICY" "${model_flags[@]}" "${task_flags[@]}" \
    --episodes "$EPISODES" --workers "$WORKERS" --no-gifs --no-progress --out "$run" \
    --set plan.samples="$samples" --set plan.horizon="$horizon" ${EXTRA:-}
done
python - "$OUT" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/results.json")):
    data = json.loads(path.read_text())
    cells = [f"{task} {p['successes']}/{p['episodes']}" for task, policies in data.get("per_task", {}).items()
             for p in policies.values()]
    every = next(iter(data["policies"].values()))
    print(f"{path.parent.name:24s} all {every['successes']}/{every['episodes']}  "
          f"{every.get('cpu_seconds_per_episode', float('nan')):.0f} CPU-s/episode  |  " + ", ".join(cells))
PY
