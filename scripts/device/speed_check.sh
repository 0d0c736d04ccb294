#!/usr/bin/env bash
# Speed check of issue #15 item 5, prepared for one run on a GPU machine (an H200: under 8
# minutes) and runnable on a CPU with --quick (a tiny model, about two minutes).
#
#   scripts/device/speed_check.sh           # random InternVL2-1B-shaped model (InternViT-300M +
#                                           # Qwen2-0.5B), bf16, full tiling (640x480: 12 tiles
#                                           # + thumbnail), on the GPU
#   scripts/device/speed_check.sh --quick   # tiny random model on the CPU (a smoke run)
#
# Runs benchmarks/score.py (model-only images/s; end to end from JPEG files: the serial pipeline
# against the loader with worker processes, and with tiling on the device) and
# benchmarks/train_step.py twice (the project's LoRA placement, LLM + vision tower; and the
# official placement with the vision tower frozen, LoRA dropout 0 and fused AdamW), then prints
# one table of the RESULT lines against the issue's targets (scoring end to end >= 35 images/s,
# training >= 35 % MFU). Python: $PYTHON, else .venv/bin/python, else python3 (the GPU image's,
# which has torch, transformers, peft and tokenizers; Django and open_clip are not needed).
# Logs go to $OUT (when set, as on the device machine) or to a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
LOGS=${OUT:-$(mktemp -d)}
CPUS=$(nproc 2>/dev/null || echo 2)
WORKERS=$(( CPUS > 13 ? 12 : (CPUS > 1 ? CPUS - 1 : 1) ))

if [ "${1:-}" = "--quick" ]; then
  SIZE=tiny
  SCORE=(--size tiny --quick --no-lite --batch-size 4 --files 8 --workers 1)
  TRAIN=(--size tiny --quick --batch-size 4 --steps 2 --warmup 1 --workers 1)
  LIMIT=150
else
  SIZE=1b
  SCORE=(--size 1b --batch-size 16 --files 192 --repeats 3 --workers "$WORKERS" --no-lite)
  TRAIN=(--size 1b --batch-size 8 --steps 8 --warmup 2 --workers "$WORKERS")
  LIMIT=200
fi

echo "speed check: size $SIZE, python $($PY -c 'import sys; print(sys.version.split()[0])'), torch $($PY -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")'), $CPUS CPUs, $WORKERS loader workers; logs in $LOGS"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true

run() {  # name, then the command: its output to the screen and to $LOGS/name.log
  local name=$1; shift
  echo "== $name: $*"
  local t0=$SECONDS
  if ! timeout "$LIMIT" "$@" 2>&1 | tee "$LOGS/$name.log"; then
    echo "!! $name failed or ran past ${LIMIT}s" | tee -a "$LOGS/$name.log"
  fi
  echo "== $name: $(( SECONDS - t0 )) s"
}

run score "$PY" benchmarks/score.py "${SCORE[@]}"
run train_project "$PY" benchmarks/train_step.py "${TRAIN[@]}"
run train_official "$PY" benchmarks/train_step.py "${TRAIN[@]}" --no-lora-vision \
  --lora-r 8 --lora-dropout 0 --fused-adamw

echo
echo "| check | figure | target | met |"
echo "|-------|--------|--------|-----|"
field() { grep -h '^RESULT' "$LOGS/$1.log" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | tail -1; }
row() {  # label, value, target, unit
  local met="n/a"
  if [ -n "$2" ] && [ -n "$3" ]; then
    met=$(awk -v v="$2" -v t="$3" 'BEGIN { print (v >= t) ? "yes" : "no" }')
  fi
  echo "| $1 | ${2:-missing} $4 | ${3:+>= $3 $4} | $met |"
}
TARGET_E2E=35; TARGET_MFU=35
if [ "$SIZE" != 1b ]; then TARGET_E2E=; TARGET_MFU=; fi  # targets are for the 1B shape on a GPU
row "scoring end to end (loader, full tiling)" "$(field score e2e_img_s)" "$TARGET_E2E" "images/s"
row "scoring end to end, serial pipeline (peer)" "$(field score serial_img_s)" "" "images/s"
row "scoring model only (all heads)" "$(field score model_img_s)" "" "images/s"
row "scoring FLOP limit" "$(field score limit_img_s)" "" "images/s"
row "scoring end to end / limit" "$(field score e2e_pct_of_limit)" "" "%"
for recipe in project official; do
  row "training ($recipe LoRA) model only" "$(field train_$recipe model_samples_s)" "" "samples/s"
  row "training ($recipe LoRA) from files" "$(field train_$recipe loader_samples_s)" "" "samples/s"
  row "training ($recipe LoRA) MFU" "$(field train_$recipe mfu_pct)" "$TARGET_MFU" "%"
done
