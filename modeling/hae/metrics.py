"""Evaluation metrics.

Ours, under their correct names: PLCC, SRCC, KRCC (signed, no logistic fit), RMSE, MAE, level
accuracy and macro precision/recall/F1 over the five levels (averaged over the levels that occur
in the truth or the predictions, a level never predicted counting 0 precision, as scikit-learn
does with ``average=None``; this is what the official script averages), the same per level, and
the level confusion matrix.

The official HumanAesExpert script reports the correlations as absolute values, calls the RMSE
"mse" and the square root of the MAE "mae" (both with 1e-8 added under the root).
:func:`official_metrics` gives those numbers under the script's own column names, for comparison
with the paper only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from humanbeauty.standard import LEVELS, level_index

ArrayLike = Sequence[float] | np.ndarray


def _pair(pred: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError(f"need two 1-D arrays of one length, got {p.shape} and {t.shape}")
    return p, t


def _corr(fn, p: np.ndarray, t: np.ndarray) -> float:
    # Undefined for fewer than two points or a constant input; say so with NaN, not a crash.
    if len(p) < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return math.nan
    return float(fn(p, t)[0])


def plcc(pred: ArrayLike, truth: ArrayLike) -> float:
    return _corr(stats.pearsonr, *_pair(pred, truth))


def srcc(pred: ArrayLike, truth: ArrayLike) -> float:
    return _corr(stats.spearmanr, *_pair(pred, truth))


def krcc(pred: ArrayLike, truth: ArrayLike) -> float:
    return _corr(stats.kendalltau, *_pair(pred, truth))


def rmse(pred: ArrayLike, truth: ArrayLike) -> float:
    p, t = _pair(pred, truth)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(pred: ArrayLike, truth: ArrayLike) -> float:
    p, t = _pair(pred, truth)
    return float(np.mean(np.abs(p - t)))


def levels_of(scores: ArrayLike) -> np.ndarray:
    """0-based level indices; predictions slightly outside [0, 1] are clipped first."""
    return np.array([level_index(float(min(max(s, 0.0), 1.0))) for s in scores], dtype=int)


def level_metrics(pred: ArrayLike, truth: ArrayLike) -> dict:
    """Level metrics of two score arrays (each score read as its level)."""
    p, t = levels_of(pred), levels_of(truth)
    if p.shape != t.shape:
        raise ValueError("pred and truth differ in length")
    return class_metrics(p, t)


def class_metrics(p: np.ndarray, t: np.ndarray) -> dict:
    """Accuracy, macro precision/recall/F1 over the levels present, and per level (all five,
    ``support`` = images of that level in the truth; a precision with no prediction of the level
    or a recall with none in the truth is undefined: NaN, written as null), and the confusion
    matrix: ``confusion[i][j]`` images of true level ``LEVELS[i]`` predicted as ``LEVELS[j]``.
    ``p`` and ``t`` are 0-based level indices."""
    p, t = np.asarray(p, dtype=int), np.asarray(t, dtype=int)
    confusion = np.zeros((len(LEVELS), len(LEVELS)), dtype=int)
    np.add.at(confusion, (t, p), 1)
    tp = np.diag(confusion)
    n_pred, n_true = confusion.sum(axis=0), confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), np.nan)
        recall = np.where(n_true > 0, tp / np.maximum(n_true, 1), np.nan)
        f1 = np.where(
            (n_pred > 0) & (n_true > 0) & (tp > 0),
            2 * precision * recall / (precision + recall),
            0.0,
        )
    present = (n_pred > 0) | (n_true > 0)
    # The macro averages count an undefined precision or recall as 0 (scikit-learn's
    # zero_division=0), over the levels that occur in truth or predictions: the official numbers.
    macro = {
        name: float(np.mean(np.nan_to_num(values[present]))) if present.any() else math.nan
        for name, values in (("precision", precision), ("recall", recall), ("f1", f1))
    }
    per_level = {
        level: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]) if present[i] else math.nan,
            "support": int(n_true[i]),
        }
        for i, level in enumerate(LEVELS)
    }
    return {
        "accuracy": float(np.mean(p == t)) if len(p) else math.nan,
        **macro,
        "per_level": per_level,
        "confusion": confusion.tolist(),
    }


def regression_metrics(pred: ArrayLike, truth: ArrayLike) -> dict[str, float]:
    """All of ours for one (head, dimension): correlations, errors and level metrics."""
    p, t = _pair(pred, truth)
    out = {
        "n": len(p),
        "plcc": plcc(p, t),
        "srcc": srcc(p, t),
        "krcc": krcc(p, t),
        "rmse": rmse(p, t) if len(p) else math.nan,
        "mae": mae(p, t) if len(p) else math.nan,
    }
    out.update(level_metrics(p, t))
    return out


def official_metrics(pred: ArrayLike, truth: ArrayLike) -> dict[str, float]:
    """The official script's columns, with its names: 'mse' is an RMSE, 'mae' is sqrt(MAE)."""
    p, t = _pair(pred, truth)
    levels = level_metrics(p, t)
    return {
        "Accuracy": levels["accuracy"],
        "mean Precision": levels["precision"],
        "mean Recall": levels["recall"],
        "mean F1": levels["f1"],
        "plcc": abs(plcc(p, t)),
        "srcc": abs(srcc(p, t)),
        "krcc": abs(krcc(p, t)),
        "mse": float(np.sqrt(np.mean((p - t) ** 2) + 1e-8)),
        "mae": float(np.sqrt(np.mean(np.abs(p - t)) + 1e-8)),
    }


__all__ = [
    "LEVELS",
    "class_metrics",
    "krcc",
    "level_metrics",
    "mae",
    "official_metrics",
    "plcc",
    "regression_metrics",
    "rmse",
    "srcc",
]
