#!/usr/bin/env bash
# Does data that shows pulls leaving the drawer shut stop the model drawing phantom openings?
# (RESULTS.md "Phantom drawers": the planner picks the pulls the model draws opening.)
#
#   bash benchmarks/robodesk_pullback_finetune.sh DATA OUT             # the pullback fine-tune
#   CONTROL=1 bash benchmarks/robodesk_pullback_finetune.sh DATA OUT   # its control
#
# DATA holds the drawer store (DATA/rd_drawer, from benchmarks/robodesk_drawer_reader.sh); this
# collects DATA/rd_pullback beside it: the same recipe (open_drawer, noise 0.1/0.2, half play,
# 300 episodes) with half the scripted episodes made `--drawer-pullback` episodes (seed 16; ~40
# min on 2 idle workers). Both are tokenized with the shipped tokenizer. An A/B of the data, not a
# model to ship: the shipped model is fine-tuned on the pullback store alone, or (CONTROL=1) on the
# drawer store alone — the same recipe and size but for the pullbacks — with lr 3e-4, warm-up 50,
# the cosine of a 2000-step run stopped after MAX_STEPS (default 200; ~8 s a step in fp32 on a
# 2-core AVX2 EPYC beside a collection), and exported to OUT/NAME_bundle. Drawer data alone lets the other tasks
# fade; only the drawer is probed:
#  - the phantom probe on the 26 planned drawer episodes (the shipped model's plans; their
#    executed actions are what MPPI chose): phantom openings and successes drawn;
#  - `maskvit evaluate` on both stores' test episodes (held out from both fine-tunes): the drawer's
#    error against copy-last's, where the scripted pulls do open it (a model that stopped drawing
#    the drawer move would have no phantoms either) and, on the pullback store, where they do not.
# Every stage resumes or is skipped once its output exists.
set -euo pipefail
DATA=${1:?usage: robodesk_pullback_finetune.sh DATA OUT}
OUT=${2:?usage: robodesk_pullback_finetune.sh DATA OUT}
MAX_STEPS=${MAX_STEPS:-200}
SHIPPED=maskvit/pretrained/robodesk64
export MUJOCO_GL=${MUJOCO_GL:-egl}
mkdir -p "$OUT"

maskvit collect --env robodesk --tasks open_drawer --noise 0.1,0.2 --play 0.5 --drawer-pullback 0.5 \
  --episodes 300 --workers "${WORKERS:-2}" --seed 16 --out "$DATA/rd_pullback" --no-progress

for store in rd_drawer rd_pullback; do
  maskvit tokenize --tokenizer "$SHIPPED/tokenizer" --data "$DATA/$store" --out "$OUT/tokens_$store" \
    --device cpu --no-progress
done

if [ -n "${CONTROL:-}" ]; then NAME=control; TOKENS=$OUT/tokens_rd_drawer
else NAME=pullback; TOKENS=$OUT/tokens_rd_pullback; fi
RUN=$OUT/${NAME}_finetune
if [ -f "$RUN/config.yaml" ]; then
  maskvit train --data "$TOKENS" --out "$RUN" --resume --init-from "$SHIPPED" --max-steps "$MAX_STEPS" --device cpu --no-progress
else
  maskvit train --preset robodesk64 --init-from "$SHIPPED" --data "$TOKENS" --out "$RUN" \
    --set train.steps=2000 --set train.lr=3e-4 --set train.warmup_steps=50 --max-steps "$MAX_STEPS" \
    --device cpu --no-progress
fi
[ -f "$OUT/${NAME}_bundle/bundle.json" ] || maskvit export --model "$RUN" --out "$OUT/${NAME}_bundle"

REPORTS=(benchmarks/results/robodesk_drawer_inside/tuning_drawer_shipped_inside_statelike_128x10.json
         benchmarks/results/robodesk_drawer_inside/tuning10_21_drawer_shipped_inside_statelike_128x10.json
         benchmarks/results/robodesk_drawer_phantom/tuning1_4_drawer_shipped_inside2_statelike_128x10.json)
# The shipped model's probe on these reports is committed (RESULTS.md "Phantom drawers").
[ -f "$OUT/phantom_probe_shipped.json" ] || \
  cp benchmarks/results/robodesk_drawer_phantom/phantom_probe_shipped.json "$OUT/phantom_probe_shipped.json"
for who in shipped "$NAME"; do
  model=$SHIPPED; [ "$who" = shipped ] || model=$OUT/${NAME}_bundle
  [ -f "$OUT/phantom_probe_$who.json" ] || python benchmarks/robodesk_phantom_probe.py --model "$model" \
    $(printf -- '--report %s ' "${REPORTS[@]}") --json "$OUT/phantom_probe_$who.json" > "$OUT/phantom_probe_$who.log"
  for store in rd_drawer rd_pullback; do
    [ -f "$OUT/eval_${store}_$who/metrics.json" ] || maskvit evaluate --model "$model" --data "$DATA/$store" \
      --split test --num-videos 16 --trials 2 --metrics psnr,ssim --out "$OUT/eval_${store}_$who" --no-progress
  done
done
