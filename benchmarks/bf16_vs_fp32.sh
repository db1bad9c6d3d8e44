#!/usr/bin/env bash
# Does bf16 training change what the push64 transformer learns? (issue 30, item 1)
# Two transformers, identical but for train.precision (same data, tokens, seed, batches and
# schedule: the demo's short-run recipe), each scored on the same held-out clips against
# copy-last. Step-count results: the precisions are compared at equal steps, not equal time.
#
#   bash benchmarks/bf16_vs_fp32.sh [OUT]     (default OUT=runs/bf16_vs_fp32; STEPS=600)
#
# Needs the shipped push64 tokenizer (maskvit/pretrained/push64). Every stage resumes (a scored run is not scored again).
set -euo pipefail
OUT=${1:-runs/bf16_vs_fp32}
STEPS=${STEPS:-600}
EPISODES=${EPISODES:-300}
VIDEOS=${VIDEOS:-9}   # the store's 9 test episodes
resume() { [ -f "$1/config.yaml" ] && echo --resume || true; }

maskvit collect --env push --episodes "$EPISODES" --steps 30 --seed 0 --out "$OUT/data" --no-progress
maskvit tokenize --tokenizer maskvit/pretrained/push64/tokenizer --data "$OUT/data" --out "$OUT/tokens" \
  --device cpu --no-progress
for precision in fp32 bf16; do
  run=$OUT/transformer_$precision
  maskvit train --preset push64 --data "$OUT/tokens" --out "$run" --device cpu $(resume "$run") \
    --set train.precision=$precision --set train.steps="$STEPS" --set train.lr=3e-3 \
    --set train.warmup_steps=40 --set train.val_every=100 --no-progress
  [ -f "$OUT/eval_$precision/metrics.json" ] && continue  # scored already
  maskvit evaluate --model "$run" --data "$OUT/data" --out "$OUT/eval_$precision" \
    --num-videos "$VIDEOS" --trials 4 --metrics psnr,ssim,lpips,fvd --device cpu --precision fp32
done
