"""Leakage-free, stratified, deterministic train/val/test assignment.

- The unit of assignment is a near-duplicate cluster (an image without a cluster is a unit of
  its own): a whole cluster lies in one split, so no near-copy of a test image is trained on.
- Units are stratified by source and by equal-width bins of the overall score on [0, 1]; a
  cluster takes the stratum of its lowest image id.
- Within a stratum, units are ordered by a hash of (seed, unit identity), not by input order,
  so the result depends only on the rows and the seed (not on the order the database returns
  them in), and adding images to a later version leaves the order of the old units alone.
- Per stratum, integer targets come from the ratios by largest remainder; what a stratum
  misses (rounding, a whole cluster at a boundary) is carried to the next stratum, so that the
  totals match the ratios to within about one cluster.
- The version promise, over every earlier version (``SplitHistory``): an image that was ever
  in test stays in test and pulls its whole cluster with it; an image ever trained on (train or
  val) never goes to test, so a model trained on any older version can still be evaluated on
  the newer test set. Where a carried-over test cluster has grown to take in images an earlier
  version trained on, those images are withheld from the new version (in test they would break
  the promise, in train they would leak into their cluster's test images); so is an image that
  was, against the promise, in an earlier test split and an earlier train/val split. The
  withheld images and why are in ``SplitPlan.withheld``, for the manifest and the datasheet.
- Test is filled first (from the units eligible for it, highest hash first), then train and val
  share the rest in hash order. Each unit goes where its midpoint falls on the cumulative
  targets, so the ratios hold as closely as whole clusters allow.

Everything is numpy over arrays of ids; 108,000 rows take a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import numpy as np

from .config import SPLITS, ReleaseConfig, ReleaseRow
from .errors import ReleaseConfigError, ReleaseDataError
from .records import check_overall

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each element (splitmix64's finaliser), wrapping arithmetic."""
    x = np.asarray(x, dtype=np.uint64) + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def largest_remainder(x: np.ndarray, total: int) -> np.ndarray:
    """Non-negative integers summing to ``total``, each within one of ``x`` (clipped at 0);
    ties go to the earlier entry."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, None)
    base = np.floor(x).astype(np.int64)
    frac = x - base
    diff = int(total - base.sum())
    # Stable sorts: equal remainders keep canonical split order, so results are reproducible.
    if diff > 0:
        order = np.argsort(-frac, kind="stable")
        for k in range(diff):
            base[order[k % len(order)]] += 1
    elif diff < 0:
        order = np.argsort(frac, kind="stable")
        k = 0
        while diff < 0:
            i = order[k % len(order)]
            if base[i] > 0:
                base[i] -= 1
                diff += 1
            k += 1
    return base


# A split's share may differ from the requested ratio by this much before a build warns.
SHARE_TOLERANCE = 0.05
WITHHELD_TRAINED = "trained_on_in_an_earlier_version"
WITHHELD_CONFLICT = "in_an_earlier_test_and_an_earlier_train_split"


@dataclass(frozen=True)
class SplitHistory:
    """Where images were in the earlier versions of a release: ``test`` = ever in a test split,
    ``trained`` = image id -> the train or val split it was in (any earlier version)."""

    test: frozenset[int] = frozenset()
    trained: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, test: Collection[int] = (), trainval: Collection[int] = ()) -> SplitHistory:
        return cls(frozenset(int(i) for i in test), {int(i): "train" for i in trainval})


@dataclass(frozen=True)
class SplitPlan:
    """``assign_splits``' answer with what it had to leave out and what it warns about."""

    splits: dict[int, str]
    history: SplitHistory
    # image id -> {"reason", "cluster", "earlier_split"}: rows left out by the version promise
    withheld: dict[int, dict] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def share_warnings(splits: dict[int, str], config: ReleaseConfig) -> list[str]:
    """A sentence per split whose share is more than SHARE_TOLERANCE off the requested ratio."""
    total = len(splits)
    if not total:
        return []
    counts = {s: 0 for s in config.splits}
    for s in splits.values():
        counts[s] += 1
    out = []
    for s in config.splits:
        got, want = counts[s] / total, config.split[s]
        if abs(got - want) > SHARE_TOLERANCE:
            out.append(
                f"split {s} holds {got:.1%} of the images, {abs(got - want) * 100:.1f} points "
                f"{'above' if got > want else 'below'} the requested {want:.1%} (whole "
                "near-duplicate clusters and the test sets of earlier versions decide)"
            )
    return out


def assign_splits(
    rows: Iterable[ReleaseRow],
    config: ReleaseConfig,
    previous_test: Collection[int] = frozenset(),
    *,
    previous_trainval: Collection[int] = frozenset(),
) -> dict[int, str]:
    """Map every row's image id to one of ``config.splits``; see the module docstring.

    Refuses (ReleaseDataError) a selection in which the version promise has to withhold
    images: use ``plan_splits``, whose answer lists them, for that."""
    plan = plan_splits(rows, config, SplitHistory.of(previous_test, previous_trainval))
    if plan.withheld:
        raise ReleaseDataError(
            f"{len(plan.withheld)} image(s) ({sorted(plan.withheld)[:5]}) must be withheld to "
            "keep the version promise; plan_splits lists them"
        )
    return plan.splits


def plan_splits(
    rows: Iterable[ReleaseRow], config: ReleaseConfig, history: SplitHistory | None = None
) -> SplitPlan:
    """Assign every row a split, keeping the version promise over ``history``; see the module
    docstring."""
    history = history or SplitHistory()
    ids_l: list[int] = []
    clusters_l: list[int] = []
    src_l: list[int] = []
    overall_l: list[float] = []
    src_index: dict[str, int] = {}
    for row in rows:
        ids_l.append(row.image_id)
        clusters_l.append(-1 if row.cluster is None else row.cluster)
        src_l.append(src_index.setdefault(row.source, len(src_index)))
        overall_l.append(check_overall(row))
    if not ids_l:
        raise ReleaseConfigError(
            "the selection is empty: no image matches the chosen sources, projects and rules"
        )
    ids = np.asarray(ids_l, dtype=np.int64)
    clusters = np.asarray(clusters_l, dtype=np.int64)
    overall = np.asarray(overall_l, dtype=np.float64)
    del ids_l, clusters_l, overall_l

    uniq_ids, counts = np.unique(ids, return_counts=True)
    if uniq_ids.size != ids.size:
        dup = uniq_ids[counts > 1][:5].tolist()
        raise ReleaseDataError(f"image id(s) {dup} appear more than once in the selection")
    if (clusters < -1).any():
        raise ReleaseDataError("cluster ids must be non-negative")

    # The version promise first: rows it withholds take no part in the assignment.
    keep, withheld = _withhold(ids, clusters, history)
    if withheld:
        ids, clusters, overall = ids[keep], clusters[keep], overall[keep]
        src_l = np.asarray(src_l, dtype=np.int64)[keep]
        if not ids.size:
            raise ReleaseConfigError(
                "the selection is empty once the images withheld by the version promise are "
                "left out"
            )
    previous_test = history.test
    previous_trainval = history.trained.keys()

    names = config.splits
    n_splits = len(names)
    test_i = names.index("test") if "test" in names else -1
    ratios = np.array([config.split[s] for s in names], dtype=np.float64)

    # Sources in sorted order, so that strata (and the carried rounding) don't depend on the
    # order rows arrive in.
    sorted_sources = sorted(src_index)
    remap = np.empty(len(src_index), dtype=np.int64)
    for rank, name in enumerate(sorted_sources):
        remap[src_index[name]] = rank
    src = remap[np.asarray(src_l, dtype=np.int64)]
    bins = np.minimum((overall * config.score_bins).astype(np.int64), config.score_bins - 1)

    # Units: a cluster, or a lone image. Even keys are clusters, odd keys lone images.
    unit_raw = np.where(clusters >= 0, clusters * 2, ids * 2 + 1)
    units, inv = np.unique(unit_raw, return_inverse=True)
    inv = inv.reshape(-1)
    n_units = units.size
    size = np.bincount(inv, minlength=n_units)
    by_unit = np.lexsort((ids, inv))
    first = by_unit[np.r_[0, np.flatnonzero(np.diff(inv[by_unit])) + 1]]  # lowest id per unit
    stratum = src[first] * config.score_bins + bins[first]

    def _flag(id_set: Collection[int]) -> np.ndarray:
        if not id_set:
            return np.zeros(n_units, dtype=bool)
        wanted = np.fromiter((int(i) for i in id_set), dtype=np.int64)
        hit = np.isin(ids, wanted)
        return np.bincount(inv, weights=hit, minlength=n_units) > 0

    forced = _flag(previous_test)
    if forced.any() and test_i < 0:
        raise ReleaseConfigError(
            "images of the previous version's test split are in the selection, but this "
            "configuration has no test split; add test=... to the split ratios"
        )
    no_test = _flag(previous_trainval) & ~forced

    seed_mix = _splitmix64(np.array([config.seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    key = _splitmix64(units.astype(np.uint64) ^ seed_mix)

    unit_split = np.full(n_units, -1, dtype=np.int64)
    if test_i >= 0:
        unit_split[forced] = test_i
    # Units by stratum, then hash: each stratum a contiguous run.
    order = np.lexsort((units, key, stratum))
    bounds = np.flatnonzero(np.diff(stratum[order])) + 1
    carry = np.zeros(n_splits)
    carry_cap = max(2.0, float(size.max()))
    for run in np.split(order, bounds):
        n_total = int(size[run].sum())
        x = ratios * n_total + carry
        target = largest_remainder(x, n_total)
        n_forced = int(size[run[forced[run]]].sum())
        if test_i >= 0 and target[test_i] < n_forced:
            # The old test set is larger than this stratum's share: keep it all in test and
            # share the rest among the other splits.
            target[test_i] = n_forced
            others = [i for i in range(n_splits) if i != test_i]
            share = ratios[others] / max(ratios[others].sum(), 1e-300)
            target[others] = largest_remainder(share * (n_total - n_forced), n_total - n_forced)
        free = run[~forced[run]]
        if test_i >= 0:
            need = target[test_i] - n_forced
            eligible = free[~no_test[free]][::-1]  # highest hash first
            if need > 0 and eligible.size:
                mid = np.cumsum(size[eligible]) - size[eligible] / 2.0
                chosen = eligible[mid < need]
                unit_split[chosen] = test_i
                free = free[unit_split[free] < 0]
        rest = [i for i in range(n_splits) if i != test_i]
        if free.size and not rest:
            unit_split[free] = test_i
        elif free.size:
            # Train and val (whichever are configured) share what is left, in proportion to
            # their targets, by the midpoint of each unit on the cumulative targets.
            n_free = int(size[free].sum())
            base = target[rest].astype(np.float64)
            if base.sum() <= 0:
                base = ratios[rest] if ratios[rest].sum() > 0 else np.ones(len(rest))
            t = largest_remainder(base / base.sum() * n_free, n_free)
            edges = np.cumsum(t)
            mid = np.cumsum(size[free]) - size[free] / 2.0
            pick = np.minimum(np.searchsorted(edges, mid, side="right"), len(rest) - 1)
            unit_split[free] = np.asarray(rest, dtype=np.int64)[pick]
        # Carry what this stratum missed (rounding, whole clusters) to the next one, bounded
        # so that an oversized old test set cannot starve later strata of test images.
        got = np.bincount(unit_split[run], weights=size[run], minlength=n_splits)
        carry = np.clip(x - got, -carry_cap, carry_cap)

    row_split = unit_split[inv]
    labels = np.asarray(names, dtype=object)[row_split]
    splits = dict(zip(ids.tolist(), labels.tolist(), strict=True))
    warnings = share_warnings(splits, config)
    if withheld:
        warnings.insert(0, f"{len(withheld)} image(s) withheld by the version promise: an "
                           "earlier version trained on them and their near-duplicate cluster "
                           "is in test (listed in the manifest and the datasheet)")
    return SplitPlan(splits, history, withheld, tuple(warnings))


def _withhold(
    ids: np.ndarray, clusters: np.ndarray, history: SplitHistory
) -> tuple[np.ndarray, dict[int, dict]]:
    """(rows to keep, the withheld ones): images an earlier version trained on whose cluster
    holds an image that was in an earlier test split, and images that were in both."""
    if not history.test or not history.trained:
        return np.ones(ids.size, dtype=bool), {}
    was_test = np.isin(ids, np.fromiter(history.test, dtype=np.int64))
    was_trained = np.isin(ids, np.fromiter(history.trained, dtype=np.int64))
    conflict = was_test & was_trained
    anchored = np.unique(clusters[was_test & ~conflict & (clusters >= 0)])
    dragged = was_trained & ~conflict & (clusters >= 0) & np.isin(clusters, anchored)
    out = np.flatnonzero(conflict | dragged)
    withheld = {
        int(ids[i]): {
            "reason": WITHHELD_CONFLICT if conflict[i] else WITHHELD_TRAINED,
            "cluster": int(clusters[i]) if clusters[i] >= 0 else None,
            "earlier_split": history.trained[int(ids[i])],
        }
        for i in out
    }
    keep = np.ones(ids.size, dtype=bool)
    keep[out] = False
    return keep, dict(sorted(withheld.items()))


__all__ = [
    "SPLITS",
    "SplitHistory",
    "SplitPlan",
    "assign_splits",
    "largest_remainder",
    "plan_splits",
    "share_warnings",
]
