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
# against the loader with worker processes, and with tiling on the device),
# benchmarks/train_step.py twice (the project's LoRA placement, LLM + vision tower, batch 4; and
# the official placement with the vision tower frozen, rank 8, LoRA dropout 0, fused AdamW,
# batch 8) and, last, the model-only scoring rows under torch.compile; each under its own time
# limit (the worst case stays under 8 minutes). Then one table of the RESULT lines against the
# issue's targets (scoring end to end >= 35 images/s, training >= 35 % MFU). Python: $PYTHON, else .venv/bin/python, else python3 (the GPU image's,
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
  TRAIN=(--size tiny --quick --steps 2 --warmup 1 --workers 1)
  BS_PROJECT=4; BS_OFFICIAL=4
  LIMITS=(150 150 150 150)
else
  SIZE=1b
  SCORE=(--size 1b --batch-size 16 --files 192 --repeats 3 --workers "$WORKERS" --no-lite)
  TRAIN=(--size 1b --steps 8 --warmup 2 --workers "$WORKERS")
  # LoRA in the vision tower keeps its activations for the backward: batch 4 (~50 GB);
  # frozen (official placement), batch 8
  BS_PROJECT=4; BS_OFFICIAL=8
  LIMITS=(150 100 90 120)  # seconds: score, train_project, train_official, score_compiled
fi

echo "speed check: size $SIZE, python $($PY -c 'import sys; print(sys.version.split()[0])'), torch $($PY -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")'), $CPUS CPUs, $WORKERS loader workers; logs in $LOGS"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true
# Loader processes hand batches over in shared memory; where /dev/shm is small (containers),
# scoring's loader uses threads instead (PIL releases the GIL while it decodes and resizes).
SHM_MB=$(df -Pm /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }' || true)
echo "/dev/shm free: ${SHM_MB:-unknown} MB"
if [ -n "$SHM_MB" ] && [ "$SHM_MB" -lt 4096 ] && [ "$SIZE" = 1b ]; then
  SCORE+=(--thread-workers)
fi

run() {  # name, time limit (s), then the command: its output to the screen and $LOGS/name.log
  local name=$1 limit=$2; shift 2
  echo "== $name (at most ${limit}s): $*"
  local t0=$SECONDS
  if ! timeout "$limit" "$@" 2>&1 | tee "$LOGS/$name.log"; then
    echo "!! $name failed or ran past ${limit}s" | tee -a "$LOGS/$name.log"
  fi
  echo "== $name: $(( SECONDS - t0 )) s"
}

set +e -o pipefail
run score "${LIMITS[0]}" "$PY" benchmarks/score.py "${SCORE[@]}"
run train_project "${LIMITS[1]}" "$PY" benchmarks/train_step.py "${TRAIN[@]}" \
  --batch-size "$BS_PROJECT"
run train_official "${LIMITS[2]}" "$PY" benchmarks/train_step.py "${TRAIN[@]}" \
  --batch-size "$BS_OFFICIAL" --no-lora-vision --lora-r 8 --lora-dropout 0 --fused-adamw
# a lever to try last: torch.compile of the vision tower and the LLM (model-only rows)
run score_compiled "${LIMITS[3]}" "$PY" benchmarks/score.py "${SCORE[@]}" --model-only --compile

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
row "scoring model only, torch.compile" "$(field score_compiled model_img_s)" "" "images/s"
row "scoring FLOP limit" "$(field score limit_img_s)" "" "images/s"
row "scoring end to end / limit" "$(field score e2e_pct_of_limit)" "" "%"
for recipe in project official; do
  row "training ($recipe LoRA) model only" "$(field train_$recipe model_samples_s)" "" "samples/s"
  row "training ($recipe LoRA) from files" "$(field train_$recipe loader_samples_s)" "" "samples/s"
  row "training ($recipe LoRA) MFU" "$(field train_$recipe mfu_pct)" "$TARGET_MFU" "%"
done
