"""Issue #10 in the Django-free release core: the version promise when a test cluster grows,
the split-share warning, and figures the build counts from its own output (a planted
straddling cluster fails the build; nothing is claimed that was not checked)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

from modeling.release import (
    ReleaseConfig,
    ReleaseDataError,
    SplitHistory,
    assign_splits,
    build_release,
    plan_splits,
)
from tests.release_core.conftest import make_rows


@pytest.fixture(autouse=True)
def _media_root():
    """No Django settings needed here (overrides tests/conftest.py's fixture)."""
    yield


CONFIG = ReleaseConfig(name="hb", version="1", seed=4, images="none", formats=("parquet",))


def build(rows, splits, out, **kw):
    return build_release(rows, splits, CONFIG, out, platform_version="t", extra_config={}, **kw)


def test_a_grown_test_cluster_withholds_what_earlier_versions_trained_on():
    rows = make_rows(400, 200, seed=3)
    v1 = plan_splits(rows, CONFIG).splits
    test = sorted(i for i, s in v1.items() if s == "test")
    trained = sorted(i for i, s in v1.items() if s != "test")
    anchor = test[0]
    anchor_cluster = next(r.cluster for r in rows if r.image_id == anchor) or 999_999
    dragged = trained[:4]
    both = trained[4]  # against the promise, an earlier version had it in test and in train
    grown = [replace(r, cluster=anchor_cluster)
             if r.image_id in (anchor, *dragged) else r for r in rows]
    history = SplitHistory(frozenset(test) | {both}, {i: v1[i] for i in trained})
    v2 = plan_splits(grown, replace(CONFIG, version="2"), history)
    assert all(v2.splits[i] == "test" for i in test)
    assert not [i for i in trained if v2.splits.get(i) == "test"]
    assert set(v2.withheld) == {*dragged, both} and not set(v2.withheld) & set(v2.splits)
    assert {v2.withheld[i]["reason"] for i in dragged} == {"trained_on_in_an_earlier_version"}
    assert v2.withheld[both]["reason"] == "in_an_earlier_test_and_an_earlier_train_split"
    assert all(v2.withheld[i]["cluster"] == anchor_cluster for i in dragged)
    assert "withheld" in v2.warnings[0]
    # the same answer whatever the row order
    assert plan_splits(grown[::-1], replace(CONFIG, version="2"), history) == v2
    # assign_splits, which answers splits only, refuses rather than drop rows silently
    with pytest.raises(ReleaseDataError, match="withheld"):
        assign_splits(grown, CONFIG, history.test, previous_trainval=history.trained)


def test_split_shares_off_by_more_than_five_points_are_warned():
    rows = make_rows(300, 0, seed=1)
    earlier_test = {r.image_id for r in rows[:120]}  # 40 % stays in test; 10 % requested
    plan = plan_splits(rows, CONFIG, SplitHistory.of(earlier_test))
    assert Counter(plan.splits.values())["test"] >= 120
    train, test = plan.warnings
    assert test.startswith("split test holds") and "points above the requested 10.0%" in test
    assert train.startswith("split train holds") and "below the requested 80.0%" in train
    assert not plan_splits(rows, CONFIG).warnings  # within 5 points: no warning


def test_a_planted_straddling_cluster_fails_the_build(tmp_path):
    rows = make_rows(60, 40, seed=2)
    splits = assign_splits(rows, CONFIG)
    a, b = [r.image_id for r in rows if r.cluster is not None and r.cluster == rows[0].cluster][:2]
    planted = {**splits, b: "test" if splits[a] != "test" else "train"}  # one cluster, 2 splits
    with pytest.raises(ReleaseDataError, match="1 near-duplicate cluster"):
        build(rows, planted, tmp_path / "leak")
    assert not (tmp_path / "leak").exists()


def test_a_build_breaking_the_version_promise_by_hand_fails(tmp_path):
    rows = [r for r in make_rows(60, 40, seed=5) if r.cluster is None]  # no cluster straddles
    plan = plan_splits(rows, CONFIG)
    trained = next(i for i, s in plan.splits.items() if s == "train")
    kept_out = next(i for i, s in plan.splits.items() if s == "val")
    leaked = replace(plan, splits={**plan.splits, trained: "test"},
                     history=SplitHistory(frozenset({kept_out}), {trained: "train"}))
    with pytest.raises(ReleaseDataError, match=r"1 image\(s\) of an earlier test split are "
                       r"not in test; 1 image\(s\) an earlier version trained on are in test"):
        build(rows, leaked, tmp_path / "promise")
    assert not (tmp_path / "promise").exists()


def test_figures_come_from_checks_never_from_defaults(tmp_path):
    rows = make_rows(60, 40, seed=6)
    unhashed = {r.image_id for r in rows[:7]}
    rows = [replace(r, phash=None) if r.image_id in unhashed else r for r in rows]
    manifest = build(rows, plan_splits(rows, CONFIG), tmp_path / "r",
                     excluded={"open_flag": [10**6]})
    checks = manifest["checks"]
    clustered = Counter(r.cluster for r in rows if r.cluster is not None)
    assert checks["hashed"] == 93 and checks["images"] == 100
    assert checks["near_duplicate_clusters"] == sum(n > 1 for n in clustered.values())
    assert checks["straddling_clusters"] == 0 and "clustered" not in checks
    sheet = (tmp_path / "r" / "datasheet.md").read_text()
    assert "93 of 100 images have a perceptual hash" in sheet
    assert "was not checked by this build" in sheet  # clustering was not verified here
    assert "No near-duplicate cluster straddles" not in sheet
    assert "previous version's test images stay in test" not in sheet
    assert "No earlier version's splits were given" in sheet
    assert "1 image(s) with an open flag" in sheet and "1000000" in sheet
    on_disk = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert on_disk["checks"] == checks and on_disk["excluded"] == {"open_flag": [10**6]}
