#!/usr/bin/env bash
# The GPU numbers of RESULTS.md ("On a GPU"), in one command on a machine with one CUDA GPU:
#
#   bash benchmarks/gpu_bench.sh OUT                 # results: OUT/*.json and OUT/log.txt
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu_bench.sh OUT   # dry run of the script itself
#
# 1. gpu_check's training step (bair64, batch 2) on the CPU, on the GPU in fp32 (TF32) and in
#    precision auto: the losses must agree (gpu_check verdict);
# 2. gpu_check's attention timings (chunked CPU loop, SDPA, whole tensors);
# 3. one planning iteration of the robodesk64 model (random weights) at 64, VP2's 200 and
#    VP2's 800 samples, fp32 and bf16, on the GPU, and at 64 samples on the same machine's
#    CPU cores (the ratio is measured side by side);
# 4. bench_decode: MaskViT vs a KV-cached causal decoder vs a GENIE-style decoder (bair64 at
#    batch 1 in fp32 only: its KV-cached decoder takes ~22 s a round on an H100).
# Each piece has its own time limit and writes its own JSON, so a slow one loses only itself.
# Needs only torch, numpy, einops, safetensors, pyyaml, tqdm and pillow (no simulator).
set -u
cd "$(dirname "$0")/.."
OUT=${1:?usage: $0 OUT}
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then echo "$OUT is not empty; pass another OUT" >&2; exit 2; fi
mkdir -p "$OUT/status"
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -n "${QUICK:-}" ]; then  # dry run: tiny sizes
  SAMPLES="8"; CPU_SAMPLES=8; PRESET=push64; DECODE=(--quick --rounds 1); LIMIT=600
else
  SAMPLES="64 200 800"; CPU_SAMPLES=64; PRESET=bair64; LIMIT=240
  DECODE=(--rounds 3 --entry push64:1:fp32 --entry push64:1:bf16 --entry push64:64:fp32
          --entry push64:64:bf16 --entry push64:64:fp32:2 --entry push64:64:bf16:2 --entry bair64:1:fp32)
fi
exec > >(tee "$OUT/log.txt") 2>&1

run() {  # run NAME SECONDS COMMAND...: the exit status goes to $OUT/status/NAME
  local name=$1 seconds=$2; shift 2
  echo "== $name ($(date +%T)): $*"
  timeout "$seconds" "$@"
  echo $? > "$OUT/status/$name"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
$PYTHON -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cores', __import__('os').cpu_count())"
CHECK="$PYTHON benchmarks/gpu_check.py"
run step_cpu 120 $CHECK step --preset $PRESET --batch 2 --device cpu --json "$OUT/step_cpu.json"
run step_1 60 $CHECK step --preset $PRESET --batch 2 --device "$DEVICE" --json "$OUT/step_1.json"
run step_1_auto 60 $CHECK step --preset $PRESET --batch 2 --device "$DEVICE" --precision auto \
  --json "$OUT/step_1_auto.json"
run attention 90 $CHECK attention --preset $PRESET --batch 2 --device "$DEVICE" \
  --precision "$([ "$DEVICE" = cpu ] && echo fp32 || echo bf16)" --json "$OUT/attention.json"

plan() {  # plan NAME SECONDS ARGS...: one planning iteration, appended to plan_throughput.jsonl
  local name=$1 seconds=$2; shift 2
  rm -f "$OUT/p.json"
  run "$name" "$seconds" $PYTHON benchmarks/bench_plan.py throughput --preset robodesk64 --steps 2 \
    --json "$OUT/p.json" "$@"
  if [ -f "$OUT/p.json" ]; then cat "$OUT/p.json" >> "$OUT/plan_throughput.jsonl"; echo >> "$OUT/plan_throughput.jsonl"; fi
  rm -f "$OUT/p.json"
}
for samples in $SAMPLES; do
  plan "plan_${samples}_fp32" 60 --samples "$samples" --chunk "$samples" --device "$DEVICE"
  plan "plan_${samples}_bf16" 60 --samples "$samples" --chunk "$samples" --device "$DEVICE" --bf16
done
plan "plan_${CPU_SAMPLES}_cpu" 120 --samples $CPU_SAMPLES --chunk $CPU_SAMPLES --device cpu

run decode "$LIMIT" $PYTHON benchmarks/bench_decode.py --device "$DEVICE" "${DECODE[@]}" \
  --json "$OUT/decode.json"
$CHECK verdict "$OUT" || true
echo "== done ($(date +%T))"
