#!/usr/bin/env bash
# The two training recipes side by side (issue #15 item 2): trains `--recipe humanbeauty` and
# `--recipe official` on the same synthetic release from the same backbone, for the same number
# of epochs (so both see the same images; the official recipe's effective batch of 16 makes
# fewer, larger steps), evaluates both on the release's test split and prints one table.
#
#   scripts/device/compare_recipes.sh [--size tiny|1b] [--backbone DIR] [--epochs E | --steps N]
#                                     [--train N] [--test N] [--batch-size B] [--out DIR]
#
#   --size      random backbone when no --backbone: tiny (CPU smoke test, the default) or 1b
#               (InternVL2-1B-shaped, for a GPU). Random weights: the table then compares how
#               fast each recipe learns the synthetic scores from scratch, not HumanAesExpert.
#   --backbone  a real InternVL checkpoint directory (e.g. one written by
#               `python -m modeling.convert_official`): the comparison that decides the default.
#   --epochs    epochs over the training split (default 1); --steps fixes the optimizer steps
#               of each recipe instead (then the official one sees 16/B times more images).
#   --batch-size images per process and micro-batch for both (default 4; the official recipe
#               accumulates to 16).
# Each run's folder under --out (default $TMPDIR/compare-recipes) keeps metrics.jsonl,
# eval_test.json and final/; a rerun reuses the release and the backbone.
# GPU check:   scripts/device/compare_recipes.sh --size 1b --train 256 --test 128 --epochs 1
# CPU smoke:   scripts/device/compare_recipes.sh --train 32 --test 16
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
SIZE=tiny BACKBONE='' EPOCHS=1 STEPS='' TRAIN=64 TEST=32 BATCH=4
OUT=${TMPDIR:-/tmp}/compare-recipes
while [ $# -gt 0 ]; do
	case "$1" in
	--size) SIZE=$2 ;;
	--backbone) BACKBONE=$2 ;;
	--epochs) EPOCHS=$2 ;;
	--steps) STEPS=$2 ;;
	--train) TRAIN=$2 ;;
	--test) TEST=$2 ;;
	--batch-size) BATCH=$2 ;;
	--out) OUT=$2 ;;
	*) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
	esac
	shift 2
done
mkdir -p "$OUT"

# One release and one backbone for both recipes.
"$PY" - "$OUT" "$TRAIN" "$TEST" "$SIZE" "$BACKBONE" <<'EOF'
import sys
from pathlib import Path

from modeling.hae.synthetic import write_synthetic_release
from modeling.hae.tiny import build_random_internvl

out, n_train, n_test, size, backbone = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
if not (out / "release" / "HumanBeauty" / "train_label.jsonl").is_file():
    write_synthetic_release(out / "release", n_train=n_train, n_test=n_test, seed=0)
if not backbone and not (out / f"backbone-{size}" / "config.json").is_file():
    build_random_internvl(out / f"backbone-{size}", size, seed=0)
EOF
BACKBONE=${BACKBONE:-$OUT/backbone-$SIZE}

for recipe in humanbeauty official; do
	"$PY" - "$OUT/$recipe.json" "$BATCH" "$EPOCHS" <<'EOF'
import json
import sys

path, batch, epochs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
settings = {"batch_size": batch, "epochs": epochs, "eval_at_end": True, "log_every": 1,
            "save_every": 1_000_000, "keep_checkpoints": 1}
open(path, "w").write(json.dumps(settings) + "\n")
EOF
	rm -rf "${OUT:?}/$recipe"
	start=$EPOCHREALTIME
	"$PY" -m modeling.train --data "$OUT/release" --out "$OUT/$recipe" --backbone "$BACKBONE" \
		--recipe "$recipe" --config "$OUT/$recipe.json" ${STEPS:+--max-steps "$STEPS"}
	echo "$start $EPOCHREALTIME" >"$OUT/$recipe/wall_seconds"
done

"$PY" - "$OUT" "$BACKBONE" <<'EOF'
import json
import sys
from pathlib import Path

from humanbeauty.standard import DIMENSION_KEYS

out, backbone = Path(sys.argv[1]), sys.argv[2]
overall = DIMENSION_KEYS[-1]
print(f"\nbackbone: {backbone}\nrelease:  {out / 'release'}\n")
print("| recipe | steps | images/s | wall s | head | SRCC | PLCC | RMSE | level acc |")
print("|---|---|---|---|---|---|---|---|---|")


def fmt(value):
    return "n/a" if value is None else f"{value:.4f}"


for recipe in ("humanbeauty", "official"):
    run = out / recipe
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    heads = [r for r in log if r.get("stage") == "heads"]
    steps = heads[-1]["step"] if heads else 0
    rates = [r["samples_per_s"] for r in heads[1:]] or [r["samples_per_s"] for r in heads]
    rate = sum(rates) / len(rates) if rates else 0.0
    began, ended = map(float, (run / "wall_seconds").read_text().split())
    wall = ended - began
    report = json.loads((run / "eval_test.json").read_text())["heads"]
    rows = {h: report[h][overall] for h in ("metavoter", "lm", "regression")}
    rows["expert"] = report["expert"][overall]
    for i, (head, m) in enumerate(rows.items()):
        lead = f"| {recipe} | {steps} | {rate:.1f} | {wall:.0f} |" if i == 0 else "| | | | |"
        print(f"{lead} {head} | {fmt(m['srcc'])} | {fmt(m['plcc'])} | {fmt(m['rmse'])} | "
              f"{fmt(m.get('accuracy'))} |")
EOF
