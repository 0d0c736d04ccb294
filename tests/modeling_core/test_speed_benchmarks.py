"""benchmarks/score.py and benchmarks/train_step.py run end to end on a tiny model (the GPU check,
scripts/device/speed_check.sh, runs them too) and print what they promise in one run."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(text: str, prefix: str) -> dict[str, float]:
    line = next(line for line in text.splitlines() if line.startswith(f"RESULT {prefix} "))
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-\w.]+)", line) if k != "size"}


def test_score_prints_rates_the_flop_limit_and_the_serial_peer(capsys):
    score = _load("score")
    assert score.main(["--quick", "--no-lite", "--batch-size", "2", "--files", "4",
                       "--workers", "2", "--image-size", "160x120", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    result = _result(out, "score")
    assert result["model_img_s"] > 0 and result["e2e_img_s"] > 0 and result["serial_img_s"] > 0
    assert result["limit_img_s"] > result["model_img_s"], "no run beats the FLOP limit"
    assert "loader vs serial on 4 files: max |score difference| 0.00e+00 (bit-identical)" in out
    assert "files: serial (previous pipeline)" in out and "files: loader, 2 workers" in out
    assert "measured 1024^3 matmul" in out and "model FLOPs per image" in out


def test_train_step_prints_samples_per_second_and_mfu(capsys):
    train_step = _load("train_step")
    assert train_step.main(["--quick", "--batch-size", "2", "--steps", "1", "--warmup", "1",
                            "--workers", "2", "--image-size", "112x84", "--threads", "1",
                            "--no-lora-vision", "--lora-dropout", "0"]) == 0
    out = capsys.readouterr().out
    result = _result(out, "train")
    assert result["model_samples_s"] > 0 and result["loader_samples_s"] > 0
    assert 0 < result["mfu_pct"] < 100
    assert result["limit_samples_s"] > result["model_samples_s"]
    assert "parts with trainable weights: language)" in out
    assert "loop from files, serial loading" in out and "loop from files, 2 workers" in out
