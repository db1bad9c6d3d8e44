#!/usr/bin/env bash
# The first run of maskvit on a GPU, in one command: checks, then a short verdict.
#
#   bash benchmarks/gpu_check.sh                      # on a machine with CUDA GPUs
#   bash benchmarks/gpu_check.sh --device cpu --preset push64   # dry run of the script itself
#
# 1. one training step of the bair64 transformer (batch 2, fp32) on the CPU: the reference;
# 2. the same step on 1 GPU and, with 2 or more GPUs, on 2 (torchrun, DDP), in fp32 (TF32):
#    the loss must match the CPU's; and on 1 GPU in precision auto (bf16 where supported);
# 3. the training attention timed with the CPU's chunked loop, SDPA (the GPU's path) and
#    whole tensors;
# 4. `maskvit plan --device cuda` on 2 tasks with the shipped model;
# 5. `maskvit serve --device cuda` answering one /v1/predict equal to Predictor.predict.
# Results go to --out (default gpu-check/): one JSON per check, plan/, and the verdict.
# Every check runs whatever failed before it; the exit status is the verdict's.
# Runs from a checkout without installing it ($PYTHON -m maskvit, default python3). On a
# machine without the project's dependencies, bring them first: the device tool's H200
# image lacks pybullet, gymnasium, fastapi, starlette, pydantic(-core) and uvicorn (carry
# their wheels, /work/.library/device/README.md).
set -u
cd "$(dirname "$0")/.."

DEVICE=cuda PRESET=bair64 BATCH=2 OUT=gpu-check
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--device cuda|cpu] [--preset bair64] [--batch 2] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ -e "$OUT" ]; then echo "$OUT exists; pass another --out" >&2; exit 2; fi
mkdir -p "$OUT/status"
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
CHECK="$PYTHON benchmarks/gpu_check.py"
STEP="step --preset $PRESET --batch $BATCH"

run() {  # run NAME COMMAND...: the command's exit status is kept in $OUT/status/NAME
  local name=$1; shift
  echo "== $name: $*"
  "$@"
  echo $? > "$OUT/status/$name"
}

if [ "$DEVICE" = cpu ]; then
  GPUS=2  # dry run: "GPUs" are CPU processes (gloo)
  PLAN_SETS=(--set plan.samples=8 --set plan.iterations=1 --set plan.episode_steps=3)
else
  GPUS=$($PYTHON -c "import torch; print(torch.cuda.device_count())")
  PLAN_SETS=()
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
$PYTHON -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

run step_cpu $CHECK $STEP --device cpu --json "$OUT/step_cpu.json"
run step_1 $CHECK $STEP --device "$DEVICE" --json "$OUT/step_1.json"
if [ "$GPUS" -ge 2 ]; then
  run step_2 $PYTHON -m torch.distributed.run --standalone --nproc_per_node 2 \
    benchmarks/gpu_check.py $STEP \
    --device "${DEVICE%%:*}" --json "$OUT/step_2.json"
else
  echo "== step_2: skipped ($GPUS GPU visible)"; echo skip > "$OUT/status/step_2"
fi
run step_1_auto $CHECK $STEP --device "$DEVICE" --precision auto --json "$OUT/step_1_auto.json"
run attention $CHECK attention --preset "$PRESET" --batch "$BATCH" --device "$DEVICE" \
  --precision "$([ "$DEVICE" = cpu ] && echo fp32 || echo bf16)" --json "$OUT/attention.json"
run plan $PYTHON -m maskvit plan --device "$DEVICE" --env push --episodes 2 --policy model --no-gifs \
  --no-progress --out "$OUT/plan" "${PLAN_SETS[@]}"
run serve $CHECK serve --device "$DEVICE" --json "$OUT/serve.json"

echo
$CHECK verdict "$OUT" | tee "$OUT/verdict.txt"
exit "${PIPESTATUS[0]}"
