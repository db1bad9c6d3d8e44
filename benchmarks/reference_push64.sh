#!/usr/bin/env bash
# The reference push64 run: regenerates the pretrained weights shipped in
# maskvit/pretrained/push64 and the reference numbers in benchmarks/RESULTS.md.
#
#   bash benchmarks/reference_push64.sh [OUT]          (default OUT=runs/reference_push64)
#
# Budget on 2 idle CPU cores (measured, RESULTS.md "Reference run"): about 100 minutes
# for data, tokenizer and transformer, then evaluation and planning. Every stage resumes:
# rerun the script after an interruption and finished work is kept.
set -euo pipefail
OUT=${1:-runs/reference_push64}
DATA=$OUT/data TOK=$OUT/tokenizer TOKENS=$OUT/tokens MODEL=$OUT/transformer
TOKENIZER_STEPS=${TOKENIZER_STEPS:-2500}
TRANSFORMER_STEPS=${TRANSFORMER_STEPS:-2500}
resume() { [ -f "$1/config.yaml" ] && echo --resume || true; }

maskvit collect --env push --episodes 1000 --steps 30 --out "$DATA"
maskvit train-tokenizer --preset push64 --data "$DATA" --out "$TOK" --device cpu $(resume "$TOK") \
  --set tokenizer_train.steps="$TOKENIZER_STEPS" --set tokenizer_train.batch_size=16 \
  --set tokenizer_train.warmup_steps=100
maskvit tokenize --tokenizer "$TOK" --data "$DATA" --out "$TOKENS" --device cpu
maskvit train --preset push64 --data "$TOKENS" --out "$MODEL" --device cpu $(resume "$MODEL") \
  --set train.steps="$TRANSFORMER_STEPS" --set train.batch_size=16 --set train.warmup_steps=100
maskvit evaluate --model "$MODEL" --data "$DATA" --out "$OUT/eval" --num-videos 64 --trials 4 \
  --metrics psnr,ssim,lpips
maskvit reconstruct --tokenizer "$TOK" --data "$DATA" --out "$OUT/reconstructions"
