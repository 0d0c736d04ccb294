"""Evaluate a saved model on a release split and write a JSON report (+ scatter plots).

``python -m modeling.evaluate --model MODEL_DIR --data RELEASE_DIR [--split test] --out
REPORT.json``. The report holds, per head and per dimension, ``plcc``, ``srcc``, ``krcc``,
``rmse``, ``mae`` and the level ``accuracy``, ``precision``, ``recall``, ``f1``, the same
per level and the level confusion matrix (see :mod:`modeling.hae.metrics`), and under
``official`` the official script's columns for the overall score, with its names, for comparison
with the paper. For the full model, ``lm_answers`` evaluates the LM head's own twelve-line
answers (generated text, parsed) per dimension (``--no-lm-answers`` skips the generation).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from humanbeauty.standard import DIMENSION_KEYS, LEVELS, OVERALL_KEY, level_index

from .data import Sample, open_image, read_split
from .errors import ReleaseError
from .loading import predict_batches
from .metrics import class_metrics, official_metrics, regression_metrics
from .model import CONFIG_NAME, HumanAesExpert, read_config
from .prompts import parse_expert_answer

OVERALL_HEADS = ("metavoter", "lm", "regression")
DEFAULT_WORKERS = 2  # loader processes of `python -m modeling.evaluate`


def load_model(directory: str | Path, device: str = "cpu"):
    """A saved HumanAesExpert or HumanAesLite, by the model_type in its config (bf16 backbone
    weights on a GPU, fp32 on the CPU)."""
    raw = read_config(Path(directory).expanduser())
    if raw.get("model_type") == "hae-lite":
        from .lite import HumanAesLite

        return HumanAesLite.from_pretrained(directory, device=device)
    dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    return HumanAesExpert.from_pretrained(directory, dtype=dtype, device=device)


def json_safe(value):
    """NaN (an undefined correlation, e.g. over one image) and infinities become null: strict
    JSON has neither. numpy scalars become Python numbers. (Django-free twin of
    humanbeauty.jsonsafe.finite, which the database side uses.)"""
    if hasattr(value, "dtype") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_report(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")


def predict_samples(
    model, samples: Sequence[Sample], batch_size: int = 8, *, workers: int = 0
) -> dict[str, np.ndarray]:
    """Every head's predictions, one row per sample; images read, decoded and tiled by
    ``workers`` loader workers (:mod:`.loading`; 0: in this thread). An unreadable image
    stops it (ReleaseError), as a release's images are checked when it is built."""
    chunks: dict[str, list[np.ndarray]] = {}
    items = [(i, s.image_path) for i, s in enumerate(samples)]
    for batch in predict_batches(
        model, items, decode=open_image, batch_size=batch_size, workers=workers
    ):
        if batch.failed:
            raise ReleaseError(batch.failed[0][1])
        for key, value in batch.predictions.items():
            chunks.setdefault(key, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in chunks.items()}


def generate_lm_answers(model, samples: Sequence[Sample], batch_size: int = 8) -> list[str]:
    """The LM head's twelve-line answer for each 12-dimension image (text generation)."""
    model.eval()
    texts: list[str] = []
    for start in range(0, len(samples), batch_size):
        images = [open_image(s.image_path) for s in samples[start : start + batch_size]]
        texts += model.generate_expert_text(images)
    return texts


def lm_answer_report(texts: Sequence[str], samples: Sequence[Sample]) -> dict:
    """Per dimension: the level metrics of the LM's parsed answers against the truth's levels
    (``n`` images rated on it, ``answered`` those whose answer gave a level; an unanswered one
    counts as wrong in ``accuracy``, the other metrics are over the answered ones), and for
    images rated "not applicable" how often the answer said so."""
    parsed = [parse_expert_answer(t) for t in texts]
    report: dict[str, dict] = {}
    for j, key in enumerate(DIMENSION_KEYS):
        rated = [(p.get(key, "?"), s.scores[j]) for p, s in zip(parsed, samples, strict=True)
                 if s.scores[j] is not None]
        pairs = [(LEVELS.index(a), level_index(t)) for a, t in rated if a in LEVELS]
        entry: dict = {"n": len(rated), "answered": len(pairs)}
        if pairs:
            pred, truth = (np.array(v) for v in zip(*pairs, strict=True))
            entry.update(class_metrics(pred, truth))
            entry["accuracy"] = float(np.sum(pred == truth) / len(rated))
        not_applicable = [p for p, s in zip(parsed, samples, strict=True) if s.scores[j] is None]
        if not_applicable:
            said = sum(1 for p in not_applicable if key in p and p[key] is None)
            entry["not_applicable"] = {"n": len(not_applicable), "said_not_applicable": said}
        report[key] = entry
    return {"n_images": len(samples), "dimensions": report}


def build_report(
    pred: dict[str, np.ndarray],
    samples: Sequence[Sample],
    lm_texts: Sequence[str] | None = None,
) -> dict:
    """The report; ``lm_texts``: the LM's answers for the 12-dimension samples, in order."""
    truth = np.array([[np.nan if v is None else v for v in s.scores] for s in samples])
    overall = truth[:, -1]
    heads: dict[str, dict] = {}
    official: dict[str, dict] = {}
    for head in OVERALL_HEADS:
        if head in pred:
            heads[head] = {OVERALL_KEY: regression_metrics(pred[head], overall)}
            official[head] = official_metrics(pred[head], overall)
    heads["expert"] = {}
    for j, key in enumerate(DIMENSION_KEYS):
        known = ~np.isnan(truth[:, j])
        if known.any():
            heads["expert"][key] = regression_metrics(pred["expert"][known, j], truth[known, j])
    official["expert"] = official_metrics(pred["expert"][:, -1], overall)
    extra = {}
    if lm_texts is not None:
        extra["lm_answers"] = lm_answer_report(lm_texts, [s for s in samples if s.is_expert])
    return {
        "n_images": len(samples),
        "n_expert_images": int(sum(s.is_expert for s in samples)),
        "heads": heads,
        "official": official,
        **extra,
        "notes": (
            "Ours: signed correlations without logistic fit, rmse, mae, level accuracy and "
            "macro precision/recall/f1 over the levels present. 'official' repeats the official "
            "script's columns under its own names: absolute correlations, 'mse' = RMSE and "
            "'mae' = sqrt(MAE)."
        ),
    }


def evaluate_samples(
    model, samples: Sequence[Sample], batch_size: int = 8, *, workers: int = 0
) -> dict:
    return build_report(predict_samples(model, samples, batch_size, workers=workers), samples)


def scatter_plots(pred: dict[str, np.ndarray], samples: Sequence[Sample], stem: Path) -> list[str]:
    """Prediction vs truth per head (overall) and per expert dimension, if matplotlib exists."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    truth = np.array([[np.nan if v is None else v for v in s.scores] for s in samples])
    files = []
    heads = [h for h in OVERALL_HEADS if h in pred]
    fig, axes = plt.subplots(1, len(heads), figsize=(4 * len(heads), 4), squeeze=False)
    for ax, head in zip(axes[0], heads, strict=True):
        ax.scatter(truth[:, -1], pred[head], s=6, alpha=0.5)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set(title=head, xlabel="truth", ylabel="prediction", xlim=(0, 1), ylim=(0, 1))
    path = stem.with_name(stem.name + "_overall.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    files.append(str(path))
    fig, axes = plt.subplots(3, 4, figsize=(14, 10))
    for ax, (j, key) in zip(axes.flat, enumerate(DIMENSION_KEYS), strict=True):
        known = ~np.isnan(truth[:, j])
        ax.scatter(truth[known, j], pred["expert"][known, j], s=6, alpha=0.5)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set(title=key, xlim=(0, 1), ylim=(0, 1))
    path = stem.with_name(stem.name + "_expert.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    files.append(str(path))
    return files


def evaluate(
    model_dir: str | Path,
    data: str | Path,
    split: str = "test",
    out: str | Path | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    lm_answers: bool = True,
    workers: int = 0,
) -> dict:
    """The report of the model at ``model_dir`` on a split; ``lm_answers`` (the full model
    only) adds the LM head's generated twelve-line answers, evaluated per dimension."""
    model = load_model(model_dir, device=device)
    samples = read_split(data, split)
    pred = predict_samples(model, samples, batch_size, workers=workers)
    texts = None
    if lm_answers and hasattr(model, "generate_expert_text"):
        texts = generate_lm_answers(model, [s for s in samples if s.is_expert], batch_size)
    report = build_report(pred, samples, texts)
    report.update(model=str(model_dir), data=str(data), split=split)
    if out is not None:
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        plots = scatter_plots(pred, samples, out_path.with_suffix(""))
        report["plots"] = plots or "skipped: matplotlib is not installed"
        write_report(report, out_path)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modeling.evaluate", description=__doc__)
    parser.add_argument("--model", required=True, help=f"saved model directory ({CONFIG_NAME})")
    parser.add_argument("--data", required=True, help="release directory")
    parser.add_argument("--split", default="test", choices=("train", "val", "validation", "test"))
    parser.add_argument("--out", required=True, help="report path (.json)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS,
        help="loader processes that read, decode and tile the images (0: in the main thread)",
    )
    parser.add_argument(
        "--no-lm-answers", action="store_true",
        help="skip generating and evaluating the LM head's twelve-line answers (full model)",
    )
    args = parser.parse_args(argv)
    report = evaluate(
        args.model, args.data, args.split, args.out, args.batch_size, args.device,
        lm_answers=not args.no_lm_answers, workers=args.workers,
    )
    overall = {h: v.get(OVERALL_KEY, {}).get("srcc") for h, v in report["heads"].items()}
    print(f"wrote {args.out}; SRCC of the overall score per head: {overall}", file=sys.stderr)
    return 0
