#!/usr/bin/env bash
# With vs without the goal frame (paper Table 1's goal-conditioned row), on the push world:
# two transformers of the push64 family trained alike on the same tokens, one given each
# clip's last frame as its goal. Both are scored on the same 9 frames of the same clips
# (frames 3-11 after 2 context frames); the goal model also sees frame 12.
#
#   bash benchmarks/goal_comparison.sh TOKENS DATA [OUT]     (default OUT=runs/goal_comparison)
#
# TOKENS: a token cache of push episodes (`maskvit tokenize`, e.g. the reference run's),
# DATA: the episode store it came from. STEPS (default 1500) and THREADS (default: both
# trainings side by side, one thread each) set the budget; a rerun resumes.
set -euo pipefail
TOKENS=$1 DATA=$2 OUT=${3:-runs/goal_comparison}
STEPS=${STEPS:-1500}
THREADS=${THREADS:-1}
COMMON=(--preset push64 --data "$TOKENS" --device cpu --no-progress
        --set train.steps="$STEPS" --set train.batch_size=16 --set train.warmup_steps=100
        --set train.checkpoint_every=250)
resume() { [ -f "$1/config.yaml" ] && echo --resume || true; }
mkdir -p "$OUT"
OMP_NUM_THREADS=$THREADS maskvit train "${COMMON[@]}" --out "$OUT/without_goal" $(resume "$OUT/without_goal") \
  > "$OUT/without_goal.log" 2>&1 &
OMP_NUM_THREADS=$THREADS maskvit train "${COMMON[@]}" --out "$OUT/with_goal" $(resume "$OUT/with_goal") \
  --set transformer.goal_conditioned=true > "$OUT/with_goal.log" 2>&1 &
wait
EVAL=(--data "$DATA" --num-videos 32 --trials 4 --metrics psnr,ssim,lpips,fvd --no-progress)
maskvit evaluate --model "$OUT/without_goal" "${EVAL[@]}" --out "$OUT/eval_without_goal" \
  --set eval.predicted_frames=9 > "$OUT/eval_without_goal.log"
maskvit evaluate --model "$OUT/with_goal" "${EVAL[@]}" --out "$OUT/eval_with_goal" \
  > "$OUT/eval_with_goal.log"
tail -n 30 "$OUT"/eval_*.log
