#!/usr/bin/env bash
# The model on open_drawer's tuning instances that leave room to pull the drawer from inside
# (1-4, 10-13, 16-21, 25: the drawer open enough for fingers behind its front wall; the others
# start shut under the desk top, where even the oracle opens few), one `maskvit plan` run per
# stretch, then the solved count over all of them. Settings are chosen here, never on test.
#
#   MODEL=maskvit/pretrained/robodesk64 EXTRA="--set plan.cost=pixel_l2_reach --classifier R" \
#     bash benchmarks/robodesk_drawer_room.sh OUT
#
# A finished stretch (OUT/first_N/results.json) is kept, so a stopped run goes on where it was.
set -euo pipefail
OUT=${1:?usage: robodesk_drawer_room.sh OUT}
model_flags=()
[ -n "${MODEL:-}" ] && model_flags=(--model "$MODEL")
for stretch in ${STRETCHES:-1:4 10:4 16:6 25:1}; do
  first=${stretch%%:*}
  run="$OUT/first_$first"
  [ -f "$run/results.json" ] && continue
  # shellcheck disable=SC2086
  maskvit plan --env robodesk --split tuning --policy model "${model_flags[@]}" --task open_drawer \
    --first-task "$first" --episodes "${stretch##*:}" --workers "${WORKERS:-2}" --no-gifs --no-progress \
    --out "$run" ${EXTRA:-}
done
python - "$OUT" <<'PY'
import json, pathlib, sys
solved = episodes = 0
for path in sorted(pathlib.Path(sys.argv[1]).glob("first_*/results.json")):
    policy = next(iter(json.loads(path.read_text())["policies"].values()))
    solved, episodes = solved + policy["successes"], episodes + policy["episodes"]
    print(f"{path.parent.name:10s} {policy['successes']}/{policy['episodes']}")
print(f"room instances: {solved}/{episodes}")
PY
