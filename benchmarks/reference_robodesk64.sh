#!/usr/bin/env bash
# The reference RoboDesk run (issue 29): the robodesk64 model, trained on 2 CPU cores over
# about two sittings. Every stage resumes: rerun the script after an interruption and
# finished work is kept (collect skips finished episodes, the trainings continue from their
# latest checkpoint).
#
#   bash benchmarks/reference_robodesk64.sh [OUT]       (default OUT=runs/reference_robodesk64)
#
# Stages (2 idle AMD EPYC cores, benchmarks/RESULTS.md "RoboDesk"):
#  1. collect the first TOKENIZER_EPISODES episodes (~15 min at 2 workers): the tokenizer's data;
#  2. the tokenizer grid, chosen by measurement: 8×8 and 16×16 tokenizers trained to step
#     GRID_STEPS of the same schedule, their reconstructions scored by the RoboDesk object
#     metric (`maskvit reconstruct`); the 8×8 run then continues to TOKENIZER_STEPS;
#  3. collect up to EPISODES episodes (the store grows; its first episodes are unchanged);
#  4. tokenize, train the transformer (TRANSFORMER_STEPS bf16 steps where bf16 pays), export;
#  5. evaluate against copy-last (PSNR, SSIM, LPIPS, FVD, the object metric) and plan.
set -euo pipefail
OUT=${1:-runs/reference_robodesk64}
DATA=$OUT/data
TOKENIZER_EPISODES=${TOKENIZER_EPISODES:-150}
EPISODES=${EPISODES:-1000}
WORKERS=${WORKERS:-2}
GRID_STEPS=${GRID_STEPS:-1000}
TOKENIZER_STEPS=${TOKENIZER_STEPS:-2500}
TRANSFORMER_STEPS=${TRANSFORMER_STEPS:-7000}
BUNDLE=${BUNDLE:-maskvit/pretrained/robodesk64}
resume() { [ -f "$1/config.yaml" ] && echo --resume || true; }

maskvit collect --env robodesk --episodes "$TOKENIZER_EPISODES" --workers "$WORKERS" --seed 0 --out "$DATA"

# The grid: the same recipe and learning-rate schedule (TOKENIZER_STEPS long), stopped at GRID_STEPS.
for grid in 8 16; do
  run=$OUT/tokenizer_grid$grid
  downsample=$((64 / grid))
  [ -f "$run/grid_done" ] && continue
  maskvit train-tokenizer --preset robodesk64 --data "$DATA" --out "$run" --device cpu $(resume "$run") \
    --set tokenizer.downsample=$downsample --set tokenizer_train.steps="$TOKENIZER_STEPS" \
    --max-steps "$GRID_STEPS"
  maskvit reconstruct --tokenizer "$run" --data "$DATA" --out "$OUT/reconstructions_grid$grid" --device cpu
  touch "$run/grid_done"
done
# 8×8 unless the comparison (RESULTS.md) said otherwise: continue it to the full schedule.
TOK=$OUT/tokenizer_grid8
maskvit train-tokenizer --preset robodesk64 --data "$DATA" --out "$TOK" --device cpu --resume \
  --set tokenizer.downsample=8 --set tokenizer_train.steps="$TOKENIZER_STEPS"

maskvit collect --env robodesk --episodes "$EPISODES" --workers "$WORKERS" --seed 0 --out "$DATA"
maskvit tokenize --tokenizer "$TOK" --data "$DATA" --out "$OUT/tokens" --device cpu
maskvit train --preset robodesk64 --data "$OUT/tokens" --out "$OUT/transformer" --device cpu \
  $(resume "$OUT/transformer") --set train.steps="$TRANSFORMER_STEPS" --set train.keep_checkpoints=10
maskvit export --model "$OUT/transformer" --out "$BUNDLE"

maskvit reconstruct --tokenizer "$TOK" --data "$DATA" --out "$OUT/reconstructions" --device cpu
maskvit evaluate --model "$BUNDLE" --data "$DATA" --out "$OUT/eval" --num-videos 32 --trials 4 \
  --metrics psnr,ssim,lpips,fvd
maskvit plan --model "$BUNDLE" --env robodesk --out "$OUT/plan" --policy model --policy random --policy oracle
