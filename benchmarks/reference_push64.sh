#!/usr/bin/env bash
# The reference push64 run: regenerates the pretrained weights shipped in
# maskvit/pretrained/push64, the pictures under docs/ and the reference numbers in
# benchmarks/RESULTS.md ("Reference run").
#
#   bash benchmarks/reference_push64.sh [OUT]          (default OUT=runs/reference_push64)
#
# Budget on 2 CPU cores (RESULTS.md): data 1 min, tokenizer ~70 min (the preset's recipe:
# L1 + L2 + LPIPS + PatchGAN from step 1000), tokenize 2 min, transformer ~100 min (7000 bf16 steps), then
# evaluation, planning (30 tasks) and pictures. Each stage fits one 150-minute sitting and
# resumes: rerun the script after an interruption and finished work is kept.
set -euo pipefail
OUT=${1:-runs/reference_push64}
DATA=$OUT/data TOK=$OUT/tokenizer TOKENS=$OUT/tokens MODEL=$OUT/transformer
BUNDLE=${BUNDLE:-maskvit/pretrained/push64}
TOKENIZER_STEPS=${TOKENIZER_STEPS:-2500}
TRANSFORMER_STEPS=${TRANSFORMER_STEPS:-7000}
PLAN_EPISODES=${PLAN_EPISODES:-30}
# CEM at CPU scale: Table 5's schedule (replan every 3 of 15 steps, c_i weights, β = 0.3)
# with M = 64 samples, K = 3 iterations, a 5-step horizon and a warm start (~40 min for
# the model's 30 tasks on 2 cores, fp32).
PLAN_SETTINGS=(--set plan.samples=64 --set plan.iterations=3 --set plan.horizon=5
               --set plan.warm_start=true)
resume() { [ -f "$1/config.yaml" ] && echo --resume || true; }

maskvit collect --env push --episodes 1000 --steps 30 --out "$DATA"
maskvit train-tokenizer --preset push64 --data "$DATA" --out "$TOK" --device cpu $(resume "$TOK") \
  --set tokenizer_train.steps="$TOKENIZER_STEPS"
maskvit tokenize --tokenizer "$TOK" --data "$DATA" --out "$TOKENS" --device cpu
maskvit train --preset push64 --data "$TOKENS" --out "$MODEL" --device cpu $(resume "$MODEL") \
  --set train.steps="$TRANSFORMER_STEPS" --set train.batch_size=16 --set train.warmup_steps=100 \
  --set train.precision=bf16 --set train.checkpoint_every=1000 --set train.keep_checkpoints=10
maskvit export --model "$MODEL" --out "$BUNDLE"

maskvit reconstruct --tokenizer "$TOK" --data "$DATA" --out "$OUT/reconstructions" --device cpu
maskvit evaluate --model "$BUNDLE" --data "$DATA" --out "$OUT/eval" --num-videos 32 --trials 4 \
  --metrics psnr,ssim,lpips,fvd
maskvit plan --model "$BUNDLE" --env push --episodes "$PLAN_EPISODES" --out "$OUT/plan" \
  --policy model --policy random --policy oracle --oracle-cost pixel "${PLAN_SETTINGS[@]}"
python benchmarks/headline.py --bundle "$BUNDLE" --eval "$OUT/eval" --plan "$OUT/plan" \
  --plan-settings "M=64, K=3, H=5, warm start, 2 linear decoding steps, fp32" \
  --about "measured by benchmarks/reference_push64.sh: held-out push episodes, 32 videos, best of 4 samples; planning on tasks 0-$((PLAN_EPISODES - 1))."

# Pictures for the README.
mkdir -p docs
cp "$OUT/reconstructions/reconstructions.png" docs/tokenizer_reconstructions.png
for episode in push_000006 push_000053 push_000102; do
  maskvit predict --model "$BUNDLE" --input "$DATA" --episode "$episode" --samples 2 \
    --out "docs/predict_$episode.gif"
  rm -f "docs/predict_$episode.npy"
done
cp "$OUT/plan/gifs/model_task2.gif" docs/plan_model_task2.gif
