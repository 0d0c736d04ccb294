"""calibrate_k: the default k keeps its documented precision/recall on generated copies."""

from __future__ import annotations

import numpy as np

from curation.imaging.calibrate_k import run_study
from curation.imaging.near_dup import DEFAULT_K


def test_default_k_recall_and_precision_on_a_small_study():
    study = run_study(limit=50, max_k=DEFAULT_K)
    i = int(np.flatnonzero(study.ks == DEFAULT_K)[0])
    assert study.n_positive >= 400
    assert study.recall[i] >= 0.9
    assert study.fp_rate[i] <= 0.002
    # Resizing and recompression must be caught almost always; crops are the hard part.
    for name in ("resize_50", "resize_200", "jpeg_q75", "jpeg_q50"):
        assert study.recall_by_transform[name][i] >= 0.97, name
    assert np.all(np.diff(study.recall) >= 0) and np.all(np.diff(study.fp_rate) >= 0)
