from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from humanbeauty.errors import DomainError
from modeling.release import ReleaseConfig, ReleaseConfigError, ReleaseDataError, assign_splits
from modeling.release.splits import largest_remainder

from .conftest import make_rows


def _clusters(rows):
    by = defaultdict(set)
    for r in rows:
        if r.cluster is not None:
            by[r.cluster].add(r.image_id)
    return by


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_clusters_never_straddle_splits(seed):
    rows = make_rows(6000, 4000, seed=seed, cluster_every=3)
    clusters = _clusters(rows)
    assert len(clusters) > 1000 and max(len(m) for m in clusters.values()) >= 4
    splits = assign_splits(rows, ReleaseConfig(name="x", version="1", seed=seed))
    assert set(splits) == {r.image_id for r in rows}
    for members in clusters.values():
        assert len({splits[i] for i in members}) == 1


def test_ratios_overall_per_source_and_per_score_bin():
    rows = make_rows(12000, 8000, seed=5)
    config = ReleaseConfig(name="x", version="1", split={"train": 0.7, "val": 0.1, "test": 0.2})
    splits = assign_splits(rows, config)
    total = Counter(splits.values())
    for s, ratio in config.split.items():
        assert abs(total[s] / len(rows) - ratio) < 0.003, (s, total)
    per = defaultdict(Counter)
    for r in rows:
        overall = r.overall if r.overall is not None else r.scores[-1]
        per[r.source][splits[r.image_id]] += 1
        per[f"bin{min(int(overall * 5), 4)}"][splits[r.image_id]] += 1
    for stratum, counts in per.items():
        n = sum(counts.values())
        for s, ratio in config.split.items():
            assert abs(counts[s] / n - ratio) < 0.02, (stratum, counts)


def test_deterministic_independent_of_row_order_and_seed_matters():
    rows = make_rows(3000, 2000, seed=1)
    config = ReleaseConfig(name="x", version="1", seed=11)
    first = assign_splits(rows, config)
    shuffled = rows[:]
    random.Random(4).shuffle(shuffled)
    assert assign_splits(shuffled, config) == first
    assert assign_splits(iter(rows), config) == first  # any iterable
    other = assign_splits(rows, ReleaseConfig(name="x", version="1", seed=12))
    moved = sum(first[i] != other[i] for i in first)
    assert moved > len(rows) * 0.1


def test_previous_test_stays_in_test_and_pulls_its_cluster():
    v1_rows = make_rows(3000, 2000, seed=2)
    config = ReleaseConfig(name="x", version="1", seed=0)
    v1 = assign_splits(v1_rows, config)
    previous_test = {i for i, s in v1.items() if s == "test"}
    previous_trainval = set(v1) - previous_test
    # Version 2: 2,500 new images, and a new image joins a cluster of an old test image.
    new_rows = make_rows(1500, 1000, seed=9, start_id=100_000)
    anchor = next(r for r in v1_rows if r.image_id in previous_test and r.cluster is not None)
    loner = next(r for r in new_rows if r.cluster is None)
    joined = type(loner)(**{**{f: getattr(loner, f) for f in loner.__dataclass_fields__},
                            "cluster": anchor.cluster})
    new_rows = [joined if r is loner else r for r in new_rows]
    v2_rows = v1_rows + new_rows
    v2 = assign_splits(v2_rows, ReleaseConfig(name="x", version="2", seed=7),
                       previous_test=previous_test | {999_999_999},  # unknown ids are ignored
                       previous_trainval=previous_trainval)
    assert all(v2[i] == "test" for i in previous_test)
    assert v2[joined.image_id] == "test"
    assert all(v2[i] != "test" for i in previous_trainval)  # nothing trained on moves to test
    counts = Counter(v2.values())
    assert abs(counts["test"] / len(v2_rows) - 0.1) < 0.005
    for members in _clusters(v2_rows).values():
        assert len({v2[i] for i in members}) == 1


def test_previous_test_larger_than_its_share_is_kept_whole():
    rows = make_rows(300, 200, seed=3)
    prev = {r.image_id for r in rows[:150]}
    splits = assign_splits(rows, ReleaseConfig(name="x", version="2"), previous_test=prev)
    assert all(splits[i] == "test" for i in prev)
    assert {"train", "val"} <= set(splits.values())


def test_two_way_split_and_one_way_split():
    rows = make_rows(600, 400)
    two = assign_splits(rows, ReleaseConfig(name="x", version="1",
                                            split={"train": 0.9, "test": 0.1}))
    assert set(two.values()) == {"train", "test"}
    assert abs(Counter(two.values())["test"] - 100) <= 4  # within one cluster
    one = assign_splits(rows, ReleaseConfig(name="x", version="1", split={"train": 1.0},
                                            formats=("parquet",)))
    assert set(one.values()) == {"train"}


def test_largest_remainder():
    assert largest_remainder([0.8 * 7, 0.1 * 7, 0.1 * 7], 7).tolist() == [5, 1, 1]
    assert largest_remainder([2.5, 2.5], 5).sum() == 5
    assert largest_remainder([-0.3, 1.3], 1).tolist() == [0, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": {"train": 0.8, "val": 0.1, "test": 0.2}}, "sum to 1"),
        ({"split": {"train": 0.9, "holdout": 0.1}}, "unknown split.*holdout"),
        ({"split": {"train": 1.2, "test": -0.2}}, ">= 0"),
        ({"split": {}}, "split must map"),
        ({"formats": ("official", "tfrecord")}, "unknown format.*tfrecord"),
        ({"formats": ()}, "at least one format"),
        ({"images": "move"}, "images must be one of"),
        ({"max_side": 0}, "max_side"),
        ({"images": "none", "max_side": 512}, "max_side"),
        ({"score_bins": 0}, "score_bins"),
        ({"seed": "x"}, "seed"),
        ({"version": " "}, "version"),
    ],
)
def test_bad_configurations_are_clear_errors(kwargs, message):
    with pytest.raises(ReleaseConfigError, match=message) as info:
        ReleaseConfig(**{"name": "x", "version": "1", **kwargs})
    assert isinstance(info.value, DomainError) and info.value.message


def test_formats_are_normalised():
    config = ReleaseConfig(name="x", version="1", formats="csv,official,csv")
    assert config.formats == ("official", "csv")


def test_empty_selection_and_bad_rows():
    config = ReleaseConfig(name="x", version="1")
    with pytest.raises(ReleaseConfigError, match="selection is empty"):
        assign_splits([], config)
    rows = make_rows(10, 0)
    with pytest.raises(ReleaseDataError, match="more than once"):
        assign_splits(rows + rows[:1], config)
    bad = type(rows[0])(**{**{f: getattr(rows[0], f) for f in rows[0].__dataclass_fields__},
                           "overall": 1.5})
    with pytest.raises(ReleaseDataError, match="outside"):
        assign_splits([bad], config)
    none = type(rows[0])(**{**{f: getattr(rows[0], f) for f in rows[0].__dataclass_fields__},
                            "overall": None})
    with pytest.raises(ReleaseDataError, match="no overall score"):
        assign_splits([none], config)
    with pytest.raises(ReleaseConfigError, match="no test split"):
        assign_splits(rows, ReleaseConfig(name="x", version="2", split={"train": 1.0},
                                          formats=("parquet",)),
                      previous_test={rows[0].image_id})
