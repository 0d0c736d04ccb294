"""Inter-rater agreement, rater screening and consensus scores (pure numpy/scipy, no Django).

Ratings come in long form, one row per (image, rater) with one column per dimension and NaN
for "not applicable" or missing. Everything here is vectorised over that long form, so cost
grows with the number of ratings, not with images x raters:

- Krippendorff's alpha (interval) from per-image sums of values and squares (the coincidence
  matrix never needs to be built): D_o sums 2(m*S2 - S1^2)/(m-1) over images with m >= 2
  pairable values, D_e does the same over all pairable values at once.
- ICC(2,1) and ICC(2,k) (Shrout & Fleiss two-way random effects) need a complete
  subjects x raters table. Crowd projects give every image a different set of raters, so the
  table is built from images with at least k ratings, its k columns being the first k
  ratings in rater order: the "raters" of the formula are rating slots. This is the usual
  reading for crowd data and is documented as such in the API.
- Mean pairwise Spearman over rater pairs who share enough images; each rater's Pearson
  correlation with the mean of the other raters of the same images; bias (mean offset from
  that mean) and spread (the rater's own standard deviation) for z-score normalisation.
- Screening: ITU-R BT.500-14 (Annex 2 section 2.3.1 procedure on per-image mean, standard
  deviation and kurtosis) or correlation-based (corr_with_others below a threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class LongRatings:
    """One dimension's ratings: parallel arrays, image/rater as dense 0-based indices."""

    image: np.ndarray  # int, (n,)
    rater: np.ndarray  # int, (n,)
    value: np.ndarray  # float, (n,), NaN = not applicable / missing
    n_images: int
    n_raters: int

    @classmethod
    def from_pairs(cls, image_ids, rater_ids, values) -> tuple[LongRatings, np.ndarray, np.ndarray]:
        """Index ids densely; returns (ratings, image id per index, rater id per index)."""
        image_keys, image = np.unique(np.asarray(image_ids), return_inverse=True)
        rater_keys, rater = np.unique(np.asarray(rater_ids), return_inverse=True)
        ratings = cls(
            image=image.astype(np.int64),
            rater=rater.astype(np.int64),
            value=np.asarray(values, dtype=float),
            n_images=len(image_keys),
            n_raters=len(rater_keys),
        )
        return ratings, image_keys, rater_keys

    def present(self) -> LongRatings:
        keep = ~np.isnan(self.value)
        return LongRatings(
            self.image[keep], self.rater[keep], self.value[keep], self.n_images, self.n_raters
        )

    def only_raters(self, included: np.ndarray) -> LongRatings:
        keep = included[self.rater]
        return LongRatings(
            self.image[keep], self.rater[keep], self.value[keep], self.n_images, self.n_raters
        )

    def dense(self) -> np.ndarray:
        """images x raters, NaN where missing (for small tables and tests)."""
        table = np.full((self.n_images, self.n_raters), np.nan)
        table[self.image, self.rater] = self.value
        return table


def _per_image(r: LongRatings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """count, sum and sum of squares of the present values of each image."""
    count = np.bincount(r.image, minlength=r.n_images).astype(float)
    s1 = np.bincount(r.image, weights=r.value, minlength=r.n_images)
    s2 = np.bincount(r.image, weights=r.value**2, minlength=r.n_images)
    return count, s1, s2


def krippendorff_alpha_interval(ratings: LongRatings) -> float:
    """Krippendorff's alpha with the interval metric; NaN when it is undefined."""
    r = ratings.present()
    count, s1, s2 = _per_image(r)
    pairable = count >= 2
    m, s1, s2 = count[pairable], s1[pairable], s2[pairable]
    n = m.sum()
    if n < 2:
        return float("nan")
    d_o = np.sum(2.0 * (m * s2 - s1**2) / (m - 1)) / n
    t1, t2 = s1.sum(), s2.sum()
    d_e = 2.0 * (n * t2 - t1**2) / (n * (n - 1))
    if d_e <= 0:
        return float("nan")
    return float(1.0 - d_o / d_e)


def slot_table(ratings: LongRatings, k: int) -> np.ndarray:
    """Images with >= k present ratings x k slots (their first k ratings in rater order)."""
    r = ratings.present()
    order = np.lexsort((r.rater, r.image))
    image, value = r.image[order], r.value[order]
    starts = np.searchsorted(image, np.arange(r.n_images))
    rank = np.arange(len(image)) - starts[image]
    counts = np.bincount(image, minlength=r.n_images)
    full = counts >= k
    keep = full[image] & (rank < k)
    table = np.full((r.n_images, k), np.nan)
    table[image[keep], rank[keep]] = value[keep]
    return table[full]


def icc2(table: np.ndarray) -> tuple[float, float]:
    """ICC(2,1) and ICC(2,k) of a complete subjects x raters table (Shrout & Fleiss 1979)."""
    n, k = table.shape
    if n < 2 or k < 2:
        return float("nan"), float("nan")
    grand = table.mean()
    ss_rows = k * np.sum((table.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((table.mean(axis=0) - grand) ** 2)
    ss_err = np.sum((table - grand) ** 2) - ss_rows - ss_cols
    ms_r = ss_rows / (n - 1)
    ms_c = ss_cols / (k - 1)
    ms_e = ss_err / ((n - 1) * (k - 1))
    denom_1 = ms_r + (k - 1) * ms_e + k * (ms_c - ms_e) / n
    denom_k = ms_r + (ms_c - ms_e) / n
    icc_1 = (ms_r - ms_e) / denom_1 if denom_1 else float("nan")
    icc_k = (ms_r - ms_e) / denom_k if denom_k else float("nan")
    return float(icc_1), float(icc_k)


def mean_pairwise_spearman(ratings: LongRatings, min_common: int = 5) -> float:
    """Mean Spearman correlation over rater pairs sharing at least `min_common` images."""
    table = ratings.present().dense()
    rhos = []
    for a in range(table.shape[1]):
        col_a = table[:, a]
        has_a = ~np.isnan(col_a)
        if has_a.sum() < min_common:
            continue
        for b in range(a + 1, table.shape[1]):
            common = has_a & ~np.isnan(table[:, b])
            if common.sum() < min_common:
                continue
            x, y = col_a[common], table[common, b]
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                continue
            rhos.append(stats.spearmanr(x, y).statistic)
    return float(np.mean(rhos)) if rhos else float("nan")


def others_mean(ratings: LongRatings) -> np.ndarray:
    """For each present rating, the mean of the other raters' values for the same image."""
    count, s1, _ = _per_image(ratings)
    others = count[ratings.image] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(others > 0, (s1[ratings.image] - ratings.value) / others, np.nan)


@dataclass(frozen=True)
class RaterStats:
    n: np.ndarray  # ratings per rater
    mean: np.ndarray
    spread: np.ndarray  # standard deviation of the rater's own scores
    bias: np.ndarray  # mean offset from the mean of the others on the same images
    corr_with_others: np.ndarray  # Pearson r with the others' mean


def rater_stats(ratings: LongRatings, min_n: int = 3) -> RaterStats:
    r = ratings.present()
    om = others_mean(r)
    R = r.n_raters
    n = np.bincount(r.rater, minlength=R).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(r.rater, weights=r.value, minlength=R) / n
        sq = np.bincount(r.rater, weights=r.value**2, minlength=R) / n
        spread = np.sqrt(np.maximum(sq - mean**2, 0.0))
    paired = ~np.isnan(om)
    bias = np.full(R, np.nan)
    corr = np.full(R, np.nan)
    rater, x, y = r.rater[paired], r.value[paired], om[paired]
    order = np.argsort(rater, kind="stable")
    rater, x, y = rater[order], x[order], y[order]
    bounds = np.searchsorted(rater, np.arange(R + 1))
    for i in range(R):
        lo, hi = bounds[i], bounds[i + 1]
        if hi - lo == 0:
            continue
        bias[i] = float(np.mean(x[lo:hi] - y[lo:hi]))
        if hi - lo >= min_n and np.ptp(x[lo:hi]) > 0 and np.ptp(y[lo:hi]) > 0:
            corr[i] = float(stats.pearsonr(x[lo:hi], y[lo:hi]).statistic)
    spread[n == 0] = np.nan
    return RaterStats(n=n, mean=mean, spread=spread, bias=bias, corr_with_others=corr)


def bt500_rejected(ratings: LongRatings) -> np.ndarray:
    """Raters rejected by the ITU-R BT.500 screening (boolean per rater).

    Per image: mean, standard deviation and kurtosis beta2; a score counts as high (P) or
    low (Q) beyond 2 sigma when 2 <= beta2 <= 4 (near normal), beyond sqrt(20) sigma else. A
    rater is rejected when (P+Q)/N > 0.05 and |P-Q|/(P+Q) < 0.3, N being their rating count.
    """
    r = ratings.present()
    count, s1, s2 = _per_image(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / count
        var = s2 / count - mean**2
        dev = r.value - mean[r.image]
        m4 = np.bincount(r.image, weights=dev**4, minlength=r.n_images) / count
        beta2 = m4 / var**2
        sd = np.sqrt(np.maximum(var * count / np.maximum(count - 1, 1), 0.0))
    factor = np.where((beta2 >= 2) & (beta2 <= 4), 2.0, np.sqrt(20.0))[r.image]
    limit = factor * sd[r.image]
    usable = (count[r.image] >= 3) & (sd[r.image] > 0)
    high = usable & (dev > limit)
    low = usable & (dev < -limit)
    R = r.n_raters
    p = np.bincount(r.rater, weights=high, minlength=R)
    q = np.bincount(r.rater, weights=low, minlength=R)
    n = np.bincount(r.rater, minlength=R)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (p + q) / n
        balance = np.abs(p - q) / (p + q)
    return (n > 0) & (ratio > 0.05) & (p + q > 0) & (balance < 0.3)


@dataclass(frozen=True)
class Consensus:
    mos: np.ndarray  # per image; NaN where no included rater gave a value
    std: np.ndarray
    n: np.ndarray  # included raters with a value
    n_not_applicable: np.ndarray  # included raters who said "not applicable"

    def is_not_applicable(self) -> np.ndarray:
        """The label is null when most of the included raters said "not applicable"."""
        return self.n_not_applicable > self.n


def consensus(
    ratings: LongRatings,
    included: np.ndarray | None = None,
    bias: np.ndarray | None = None,
) -> Consensus:
    """Mean opinion score per image over included raters, optionally bias-corrected."""
    r = ratings if included is None else ratings.only_raters(included)
    na = np.isnan(r.value)
    n_na = np.bincount(r.image[na], minlength=r.n_images)
    p = r.present()
    values = p.value
    if bias is not None:
        values = np.clip(values - np.nan_to_num(bias[p.rater]), 0.0, 1.0)
    p = LongRatings(p.image, p.rater, values, p.n_images, p.n_raters)
    count, s1, s2 = _per_image(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        mos = s1 / count
        var = (s2 - count * mos**2) / np.maximum(count - 1, 1)
    std = np.where(count >= 2, np.sqrt(np.maximum(var, 0.0)), np.where(count == 1, 0.0, np.nan))
    return Consensus(mos=mos, std=std, n=count.astype(int), n_not_applicable=n_na)


def shared_images(ratings: LongRatings) -> np.ndarray:
    """Per rater: images they rated that at least one other rater rated too."""
    pairs = np.unique(np.stack([ratings.image, ratings.rater]), axis=1)
    per_image = np.bincount(pairs[0], minlength=ratings.n_images)
    shared = per_image[pairs[0]] >= 2
    return np.bincount(pairs[1][shared], minlength=ratings.n_raters)


@dataclass(frozen=True)
class Screening:
    excluded: np.ndarray  # bool per rater: what automatic screening decided
    candidates: np.ndarray  # bool per rater: flagged by the method, before the majority cap
    eligible: np.ndarray  # bool per rater: shares enough images to be judged at all
    capped: bool  # the candidates were a majority: nobody was excluded


def screen(candidates: np.ndarray, shared: np.ndarray, min_shared: int) -> Screening:
    """Outlier screening's guard rails around a method's verdict (`candidates`).

    A rater is judged only once they share `min_shared` images with others (a correlation
    over six images says nothing). Outliers are a minority by definition: when the candidates
    are not fewer than half of the raters, agreement is low everywhere, and excluding them
    would leave a consensus of whoever remains; then nobody is excluded automatically and the
    manager decides.
    """
    eligible = shared >= min_shared
    flagged = candidates & eligible
    n_raters = len(candidates)
    capped = bool(flagged.any()) and 2 * int(flagged.sum()) >= n_raters
    excluded = np.zeros(n_raters, dtype=bool) if capped else flagged
    return Screening(excluded=excluded, candidates=flagged, eligible=eligible, capped=capped)
