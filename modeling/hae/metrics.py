"""Evaluation metrics.

Ours, under their correct names: PLCC, SRCC, KRCC (signed, no logistic fit), RMSE, MAE, level
accuracy and macro precision/recall/F1 over the five levels (averaged over the levels that occur
in the truth or the predictions, a level never predicted counting 0 precision, as scikit-learn
does with ``average=None``; this is what the official script averages).

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


def level_metrics(pred: ArrayLike, truth: ArrayLike) -> dict[str, float]:
    p, t = levels_of(pred), levels_of(truth)
    if p.shape != t.shape:
        raise ValueError("pred and truth differ in length")
    present = sorted(set(p.tolist()) | set(t.tolist()))
    precision, recall, f1 = [], [], []
    for level in present:
        tp = int(np.sum((p == level) & (t == level)))
        n_pred, n_true = int(np.sum(p == level)), int(np.sum(t == level))
        pr = tp / n_pred if n_pred else 0.0
        rc = tp / n_true if n_true else 0.0
        precision.append(pr)
        recall.append(rc)
        f1.append(2 * pr * rc / (pr + rc) if pr + rc else 0.0)
    return {
        "accuracy": float(np.mean(p == t)) if len(p) else math.nan,
        "precision": float(np.mean(precision)) if present else math.nan,
        "recall": float(np.mean(recall)) if present else math.nan,
        "f1": float(np.mean(f1)) if present else math.nan,
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
    "krcc",
    "level_metrics",
    "mae",
    "official_metrics",
    "plcc",
    "regression_metrics",
    "rmse",
    "srcc",
]
