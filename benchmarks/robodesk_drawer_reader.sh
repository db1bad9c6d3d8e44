#!/usr/bin/env bash
# The drawer store and the inside reader the drawer's planning reads, rebuilt from nothing
# (a store lives outside the repository; a new machine has none):
#
#   bash benchmarks/robodesk_drawer_reader.sh DATA            # DATA/rd_drawer, DATA/reach_inside
#
# The store: open_drawer's scripted controller (which pulls the drawer from inside, behind its
# front wall, where there is room) with noise 0.1/0.2, half the episodes made rocking play at the
# bar (so the drawer shuts as well as opens), 300 episodes, seed 15; ~40 min on 2 workers,
# resumed where it stopped. The reader: `--reach-targets inside`, STEPS (default 4000) steps.
# Each stage is skipped once its output is complete.
set -euo pipefail
DATA=${1:?usage: robodesk_drawer_reader.sh DATA}
STEPS=${STEPS:-4000}
export MUJOCO_GL=${MUJOCO_GL:-egl}
maskvit collect --env robodesk --tasks open_drawer --noise 0.1,0.2 --play 0.5 --episodes 300 \
  --workers "${WORKERS:-2}" --seed 15 --out "$DATA/rd_drawer" --no-progress
[ -f "$DATA/reach_inside/classifier.json" ] || \
  maskvit train-classifier --kind reach --reach-targets inside --data "$DATA/rd_drawer" \
    --tasks open_drawer --steps "$STEPS" --out "$DATA/reach_inside" --no-progress
