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
    """Assign every row a split, keeping the version promise over ``history``; the steps are
    those of the module docstring."""
    history = history or SplitHistory()
    table = _read_rows(rows)
    # The version promise first: rows it withholds take no part in the assignment.
    keep, withheld = _withhold(table.ids, table.clusters, history)
    if withheld:
        table = table.take(keep)
        if not table.ids.size:
            raise ReleaseConfigError(
                "the selection is empty once the images withheld by the version promise are "
                "left out"
            )
    units = _units(table, config)
    ratios = _Ratios.of(config)
    forced = units.holding(table.ids, history.test)  # ever in test: stays in test
    if forced.any() and ratios.test < 0:
        raise ReleaseConfigError(
            "images of the previous version's test split are in the selection, but this "
            "configuration has no test split; add test=... to the split ratios"
        )
    no_test = units.holding(table.ids, history.trained.keys()) & ~forced  # ever trained on
    unit_split = _assign_units(units, ratios, forced, no_test)

    labels = np.asarray(config.splits, dtype=object)[unit_split[units.inv]]
    splits = dict(zip(table.ids.tolist(), labels.tolist(), strict=True))
    warnings = share_warnings(splits, config)
    if withheld:
        warnings.insert(0, f"{len(withheld)} image(s) withheld by the version promise: an "
                           "earlier version trained on them and their near-duplicate cluster "
                           "is in test (listed in the manifest and the datasheet)")
    return SplitPlan(splits, history, withheld, tuple(warnings))


@dataclass(frozen=True)
class _Rows:
    """The selection as arrays, one entry per row."""

    ids: np.ndarray  # int64 image ids
    clusters: np.ndarray  # int64 near-duplicate cluster ids, -1 for none
    sources: np.ndarray  # int64 rank of the row's source name in sorted order
    overall: np.ndarray  # float64 overall score in [0, 1]

    def take(self, keep: np.ndarray) -> _Rows:
        return _Rows(self.ids[keep], self.clusters[keep], self.sources[keep], self.overall[keep])


def _read_rows(rows: Iterable[ReleaseRow]) -> _Rows:
    """Read and check the rows (an overall score each, unique ids, valid clusters)."""
    ids: list[int] = []
    clusters: list[int] = []
    sources: list[int] = []
    overall: list[float] = []
    source_index: dict[str, int] = {}
    for row in rows:
        ids.append(row.image_id)
        clusters.append(-1 if row.cluster is None else row.cluster)
        sources.append(source_index.setdefault(row.source, len(source_index)))
        overall.append(check_overall(row))
    if not ids:
        raise ReleaseConfigError(
            "the selection is empty: no image matches the chosen sources, projects and rules"
        )
    table = _Rows(
        np.asarray(ids, dtype=np.int64),
        np.asarray(clusters, dtype=np.int64),
        # Sources by their rank in sorted order, so that strata (and the carried rounding)
        # don't depend on the order rows arrive in.
        _sorted_ranks(source_index)[np.asarray(sources, dtype=np.int64)],
        np.asarray(overall, dtype=np.float64),
    )
    uniq_ids, counts = np.unique(table.ids, return_counts=True)
    if uniq_ids.size != table.ids.size:
        dup = uniq_ids[counts > 1][:5].tolist()
        raise ReleaseDataError(f"image id(s) {dup} appear more than once in the selection")
    if (table.clusters < -1).any():
        raise ReleaseDataError("cluster ids must be non-negative")
    return table


def _sorted_ranks(index: dict[str, int]) -> np.ndarray:
    """For each index value, the rank of its name in sorted order."""
    ranks = np.empty(len(index), dtype=np.int64)
    for rank, name in enumerate(sorted(index)):
        ranks[index[name]] = rank
    return ranks


@dataclass(frozen=True)
class _Units:
    """The units of assignment: a near-duplicate cluster, or a lone image."""

    inv: np.ndarray  # row -> its unit
    size: np.ndarray  # rows per unit
    stratum: np.ndarray  # (source, score bin) of the unit's lowest image id
    key: np.ndarray  # hash of (seed, unit identity): the order within a stratum
    identity: np.ndarray  # the unit's identity: 2 x cluster id, or 2 x image id + 1

    def holding(self, ids: np.ndarray, id_set: Collection[int]) -> np.ndarray:
        """Per unit: does it hold one of these image ids?"""
        if not id_set:
            return np.zeros(self.size.size, dtype=bool)
        wanted = np.fromiter((int(i) for i in id_set), dtype=np.int64)
        hit = np.isin(ids, wanted)
        return np.bincount(self.inv, weights=hit, minlength=self.size.size) > 0

    def by_stratum(self) -> list[np.ndarray]:
        """The units stratum by stratum, each in hash order (ties by identity)."""
        order = np.lexsort((self.identity, self.key, self.stratum))
        return np.split(order, np.flatnonzero(np.diff(self.stratum[order])) + 1)


def _units(table: _Rows, config: ReleaseConfig) -> _Units:
    # Even identities are clusters, odd ones lone images.
    raw = np.where(table.clusters >= 0, table.clusters * 2, table.ids * 2 + 1)
    identity, inv = np.unique(raw, return_inverse=True)
    inv = inv.reshape(-1)
    size = np.bincount(inv, minlength=identity.size)
    by_unit = np.lexsort((table.ids, inv))
    first = by_unit[np.r_[0, np.flatnonzero(np.diff(inv[by_unit])) + 1]]  # lowest id per unit
    bins = np.minimum((table.overall * config.score_bins).astype(np.int64),
                      config.score_bins - 1)
    stratum = table.sources[first] * config.score_bins + bins[first]
    seed_mix = _splitmix64(np.array([config.seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    key = _splitmix64(identity.astype(np.uint64) ^ seed_mix)
    return _Units(inv, size, stratum, key, identity)


@dataclass(frozen=True)
class _Ratios:
    """The configured splits' ratios (canonical order) and where test is among them."""

    ratios: np.ndarray
    test: int  # index of test, -1 when there is no test split
    others: list[int]  # the indices that are not test (train and val, as configured)

    @classmethod
    def of(cls, config: ReleaseConfig) -> _Ratios:
        names = config.splits
        test = names.index("test") if "test" in names else -1
        ratios = np.array([config.split[s] for s in names], dtype=np.float64)
        return cls(ratios, test, [i for i in range(len(names)) if i != test])


def _assign_units(
    units: _Units, ratios: _Ratios, forced: np.ndarray, no_test: np.ndarray
) -> np.ndarray:
    """Each unit's split index. Units ever in test stay there; then stratum by stratum: the
    stratum's targets, test filled first from the units eligible for it, train and val share
    the rest, and what the stratum missed is carried to the next one."""
    n_splits = ratios.ratios.size
    unit_split = np.full(units.size.size, -1, dtype=np.int64)
    if ratios.test >= 0:
        unit_split[forced] = ratios.test
    carry = np.zeros(n_splits)
    # Bounded, so that an oversized old test set cannot starve later strata of test images.
    carry_cap = max(2.0, float(units.size.max()))
    for run in units.by_stratum():
        n_total = int(units.size[run].sum())
        wanted = ratios.ratios * n_total + carry
        n_forced = int(units.size[run[forced[run]]].sum())
        target = _stratum_targets(wanted, n_total, n_forced, ratios)
        free = run[~forced[run]]
        if ratios.test >= 0:
            need = int(target[ratios.test]) - n_forced
            unit_split[_fill_test(free, need, units.size, no_test)] = ratios.test
            free = free[unit_split[free] < 0]
        unit_split[free] = _share_rest(free, target, units.size, ratios)
        got = np.bincount(unit_split[run], weights=units.size[run], minlength=n_splits)
        carry = np.clip(wanted - got, -carry_cap, carry_cap)
    return unit_split


def _stratum_targets(
    wanted: np.ndarray, n_total: int, n_forced: int, ratios: _Ratios
) -> np.ndarray:
    """Rows per split for one stratum: its share plus the carry, by largest remainder. When the
    old test set is larger than test's share, it all stays in test and the other splits share
    the rest."""
    target = largest_remainder(wanted, n_total)
    if ratios.test >= 0 and target[ratios.test] < n_forced:
        target[ratios.test] = n_forced
        others = ratios.others
        share = ratios.ratios[others] / max(ratios.ratios[others].sum(), 1e-300)
        target[others] = largest_remainder(share * (n_total - n_forced), n_total - n_forced)
    return target


def _fill_test(
    free: np.ndarray, need: int, size: np.ndarray, no_test: np.ndarray
) -> np.ndarray:
    """The free units that go to test: those eligible for it (never trained on), highest hash
    first, each while its midpoint on the cumulative row count is below ``need``."""
    eligible = free[~no_test[free]][::-1]
    if need <= 0 or not eligible.size:
        return eligible[:0]
    mid = np.cumsum(size[eligible]) - size[eligible] / 2.0
    return eligible[mid < need]


def _share_rest(
    free: np.ndarray, target: np.ndarray, size: np.ndarray, ratios: _Ratios
) -> np.ndarray:
    """The split index of each unit left after test: train and val (whichever are configured)
    share them in proportion to their targets, in hash order, by the midpoint of each unit on
    the cumulative targets. With test the only split, they go to test."""
    rest = ratios.others
    if not free.size or not rest:
        return np.full(free.size, ratios.test, dtype=np.int64)
    n_free = int(size[free].sum())
    base = target[rest].astype(np.float64)
    if base.sum() <= 0:
        base = ratios.ratios[rest] if ratios.ratios[rest].sum() > 0 else np.ones(len(rest))
    edges = np.cumsum(largest_remainder(base / base.sum() * n_free, n_free))
    mid = np.cumsum(size[free]) - size[free] / 2.0
    pick = np.minimum(np.searchsorted(edges, mid, side="right"), len(rest) - 1)
    return np.asarray(rest, dtype=np.int64)[pick]


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
