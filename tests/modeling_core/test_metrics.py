from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from humanbeauty.standard import LEVELS
from modeling.hae import metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_and_errors_equal_scipy_and_numpy(seed):
    rng = np.random.default_rng(seed)
    truth = rng.random(200)
    pred = np.clip(truth + rng.normal(0, 0.2, 200), 0, 1)
    assert metrics.plcc(pred, truth) == pytest.approx(stats.pearsonr(pred, truth)[0], abs=1e-12)
    assert metrics.srcc(pred, truth) == pytest.approx(stats.spearmanr(pred, truth)[0], abs=1e-12)
    assert metrics.krcc(pred, truth) == pytest.approx(stats.kendalltau(pred, truth)[0], abs=1e-12)
    assert metrics.rmse(pred, truth) == pytest.approx(np.sqrt(np.mean((pred - truth) ** 2)))
    assert metrics.mae(pred, truth) == pytest.approx(np.mean(np.abs(pred - truth)))
    off = metrics.official_metrics(1 - pred, truth)  # anti-correlated: they report |r|
    assert off["plcc"] == pytest.approx(abs(stats.pearsonr(1 - pred, truth)[0]))
    assert off["srcc"] == pytest.approx(abs(stats.spearmanr(1 - pred, truth)[0]))
    assert off["mse"] == pytest.approx(np.sqrt(np.mean((1 - pred - truth) ** 2) + 1e-8))
    assert off["mae"] == pytest.approx(np.sqrt(np.mean(np.abs(1 - pred - truth)) + 1e-8))
    assert metrics.plcc(1 - pred, truth) < 0  # ours keep the sign


def test_level_accuracy_and_macro_precision_recall_f1_by_hand():
    # levels: truth  bad, bad, fair, good, excellent ; pred  bad, poor, fair, fair, excellent
    truth = [0.1, 0.15, 0.5, 0.7, 0.95]
    pred = [0.05, 0.3, 0.45, 0.55, 0.9]
    m = metrics.level_metrics(pred, truth)
    assert m["accuracy"] == pytest.approx(3 / 5)
    # per level (bad, poor, fair, good, excellent) precision 1, 0, 1/2, 0, 1; recall 1/2, 0, 1, 0, 1
    assert m["precision"] == pytest.approx((1 + 0 + 0.5 + 0 + 1) / 5)
    assert m["recall"] == pytest.approx((0.5 + 0 + 1 + 0 + 1) / 5)
    f1 = [2 / 3, 0, 2 / 3, 0, 1]
    assert m["f1"] == pytest.approx(sum(f1) / 5)


def test_undefined_correlation_is_nan_not_an_error():
    assert math.isnan(metrics.plcc([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]))
    report = metrics.regression_metrics([0.2, 0.4], [0.3, 0.5])
    assert set(report) == {
        "n",
        "plcc",
        "srcc",
        "krcc",
        "rmse",
        "mae",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "per_level",
        "confusion",
    }


def test_per_level_scores_and_confusion_matrix_equal_scikit_learn():
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    truth = rng.uniform(0.0, 0.75, 200)  # no "excellent" in the truth
    pred = np.clip(truth + rng.normal(0, 0.15, 200), 0, 0.59)  # no "good"/"excellent" predicted
    m = metrics.level_metrics(pred, truth)
    p, t = metrics.levels_of(pred), metrics.levels_of(truth)
    labels = list(range(len(LEVELS)))
    assert m["confusion"] == confusion_matrix(t, p, labels=labels).tolist()
    prec, rec, f1, support = precision_recall_fscore_support(
        t, p, labels=labels, zero_division=np.nan
    )
    for i, level in enumerate(LEVELS):
        row = m["per_level"][level]
        assert row["support"] == support[i]
        for ours, theirs in ((row["precision"], prec[i]), (row["recall"], rec[i])):
            assert (math.isnan(ours) and math.isnan(theirs)) or ours == pytest.approx(theirs)
        if support[i] or (p == i).any():
            assert row["f1"] == pytest.approx(np.nan_to_num(f1[i]))
        else:
            assert math.isnan(row["f1"])  # a level in neither truth nor predictions
    assert math.isnan(m["per_level"]["excellent"]["precision"])  # never predicted
    present = sorted(set(p) | set(t))
    macro = precision_recall_fscore_support(
        t, p, labels=present, average="macro", zero_division=0
    )
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx(macro[:3])
