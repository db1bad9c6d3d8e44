#!/usr/bin/env bash
# The candidate to ship after the pullback A/B (RESULTS.md "Pullback data"): the shipped model
# fine-tuned on its own data pooled with the drawer and pullback stores, so the drawer learns that
# pulls without fingers behind the front wall leave it shut while the other tasks do not fade.
#
#   STEPS=1000 bash benchmarks/robodesk_general_finetune.sh FT OUT
#
# FT is the output of benchmarks/robodesk_pullback_finetune.sh (its tokens_rd_drawer and
# tokens_rd_pullback, both of the shipped tokenizer), or reference/robodesk64_general, which keeps
# both (no collection needed); the shipped model's own tokens are
# reference/robodesk64_mix/tokens (1200 mixed-noise episodes). Recipe: lr 3e-4, warm-up 50, a
# cosine over STEPS (default 1000; ~2 s a step in fp32 on a 2-core AVX2 EPYC left alone), stopped
# early at MAX_STEPS if set (run again with a larger one to go on: the run resumes); exported to
# OUT/general_bundle_MAX_STEPS. Then the phantom probe on the 26 planned drawer episodes (as the
# A/B) and `maskvit evaluate` of both models on the shipped model's held-out test store
# (reference/robodesk64_mix/eval_store). Every stage is skipped once its output exists.
set -euo pipefail
FT=${1:?usage: robodesk_general_finetune.sh FT OUT}
OUT=${2:?usage: robodesk_general_finetune.sh FT OUT}
STEPS=${STEPS:-1000}
MAX_STEPS=${MAX_STEPS:-$STEPS}
SHIPPED=maskvit/pretrained/robodesk64
export MUJOCO_GL=${MUJOCO_GL:-egl}
mkdir -p "$OUT"
TOKENS=(reference/robodesk64_mix/tokens "$FT/tokens_rd_drawer" "$FT/tokens_rd_pullback")
RUN=$OUT/general_finetune
if [ -f "$RUN/config.yaml" ]; then
  maskvit train --data "${TOKENS[@]}" --out "$RUN" --resume --init-from "$SHIPPED" --max-steps "$MAX_STEPS" \
    --device cpu --no-progress
else
  maskvit train --preset robodesk64 --init-from "$SHIPPED" --data "${TOKENS[@]}" --out "$RUN" \
    --set train.steps="$STEPS" --set train.lr=3e-4 --set train.warmup_steps=50 --max-steps "$MAX_STEPS" \
    --device cpu --no-progress
fi
BUNDLE=$OUT/general_bundle_$MAX_STEPS
# The shipped tokens name the run they were made by (gone); the shipped tokenizer is that run.
[ -f "$BUNDLE/bundle.json" ] || maskvit export --model "$RUN" --tokenizer "$SHIPPED/tokenizer" --out "$BUNDLE"

REPORTS=(benchmarks/results/robodesk_drawer_inside/tuning_drawer_shipped_inside_statelike_128x10.json
         benchmarks/results/robodesk_drawer_inside/tuning10_21_drawer_shipped_inside_statelike_128x10.json
         benchmarks/results/robodesk_drawer_phantom/tuning1_4_drawer_shipped_inside2_statelike_128x10.json)
PROBE=$OUT/phantom_probe_general_$MAX_STEPS.json
[ -f "$PROBE" ] || python benchmarks/robodesk_phantom_probe.py --model "$BUNDLE" \
  $(printf -- '--report %s ' "${REPORTS[@]}") --json "$PROBE" > "${PROBE%.json}.log"
# The preset's protocol (64 clips, 10 samples each) for both models: the headline's numbers used 4.
for who in general_$MAX_STEPS shipped; do
  model=$BUNDLE; [ "$who" = shipped ] && model=$SHIPPED
  [ -f "$OUT/eval_mix_$who/metrics.json" ] || maskvit evaluate --model "$model" \
    --data reference/robodesk64_mix/eval_store --split test --out "$OUT/eval_mix_$who" --workers 2 --no-progress
done
