"""Bootstrap intervals of a project's agreement figures, for the datasheet (Django-free).

The point estimates are the project's stored ones (``annotation.agreement`` computed them);
this resamples whole images with replacement and recomputes Krippendorff's alpha and ICC(2,1)
/ ICC(2,k) with the same functions, so an interval and its point describe the same figure.
"""

from __future__ import annotations

import numpy as np

from annotation.agreement import LongRatings, icc2, krippendorff_alpha_interval, slot_table
from humanbeauty.standard import DIMENSION_KEYS

FIGURES = ("krippendorff_alpha", "icc2_1", "icc2_k")
N_BOOT = 200
MIN_BOOT = 50
WORK = 40_000_000  # ratings resampled per dimension, at most: a large project gets fewer draws
LEVEL = 0.95


def resamples(n_ratings: int) -> int:
    """How many bootstrap draws a project of ``n_ratings`` ratings gets (at least MIN_BOOT)."""
    return max(MIN_BOOT, min(N_BOOT, WORK // max(n_ratings, 1)))


def _resample(r: LongRatings, starts: np.ndarray, counts: np.ndarray,
              rng: np.random.Generator) -> LongRatings:
    """The ratings of ``n_images`` images drawn with replacement; a twice-drawn image counts
    as two images (rows sorted by image, so each image's rows are one run)."""
    drawn = rng.integers(0, r.n_images, r.n_images)
    lengths = counts[drawn]
    total = int(lengths.sum())
    new_image = np.repeat(np.arange(r.n_images), lengths)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    rows = np.repeat(starts[drawn], lengths) + (np.arange(total) - offsets)
    return LongRatings(new_image, r.rater[rows], r.value[rows], r.n_images, r.n_raters)


def _figures(r: LongRatings, k: int) -> tuple[float, float, float]:
    return (krippendorff_alpha_interval(r), *icc2(slot_table(r, k)))


def _bounds(values: list[float]) -> list[float] | None:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size < len(values) / 2:  # mostly undefined: no honest interval
        return None
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return [round(float(lo), 4), round(float(hi), 4)]


def agreement_intervals(image_ids, rater_ids, table, *, overlap: int, seed: int = 0,
                        n_boot: int | None = None) -> dict[str, dict[str, list[float] | None]]:
    """Per dimension, {figure: [low, high]} (95% percentile bootstrap over images; None where
    the figure is undefined in most resamples). ``table``: one row per rating, the 12
    dimensions in the official order, NaN = not applicable; ``overlap`` as the project's (the
    k of ICC(2,k), at least 2); ``n_boot`` draws, by default ``resamples(len(table))``."""
    table = np.asarray(table, dtype=float).reshape(-1, len(DIMENSION_KEYS))
    n_boot = resamples(len(table)) if n_boot is None else n_boot
    k = max(2, int(overlap))
    out: dict[str, dict[str, list[float] | None]] = {}
    for j, key in enumerate(DIMENSION_KEYS):
        ratings, _, _ = LongRatings.from_pairs(image_ids, rater_ids, table[:, j])
        r = ratings.present()
        if r.n_images == 0 or r.image.size == 0:
            out[key] = dict.fromkeys(FIGURES)
            continue
        order = np.argsort(r.image, kind="stable")
        r = LongRatings(r.image[order], r.rater[order], r.value[order], r.n_images, r.n_raters)
        counts = np.bincount(r.image, minlength=r.n_images)
        starts = np.cumsum(counts) - counts
        rng = np.random.default_rng([seed, j])
        reps = [_figures(_resample(r, starts, counts, rng), k) for _ in range(n_boot)]
        out[key] = {name: _bounds([rep[i] for rep in reps]) for i, name in enumerate(FIGURES)}
    return out
