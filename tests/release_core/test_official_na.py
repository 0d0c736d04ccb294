"""The official layout's choices for not-applicable dimensions (``na``), its empty-test refusal,
and the model's label reader, which needs no torch and reads val under both names."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from humanbeauty.standard import DIMENSIONS, score_to_level
from modeling.release import (
    NA_POLICIES,
    ReleaseConfig,
    ReleaseConfigError,
    SplitPlan,
    build_release,
    check_official_test,
)
from modeling.release.images import image_ext, stable_name
from modeling.release.splits import SplitHistory
from tests.release_core.conftest import make_rows

REPO = Path(__file__).resolve().parents[2]
SPLIT_OF = ("train", "val", "test")
KEYS = [d.key for d in DIMENSIONS]
PARENT = {child: KEYS.index(d.key) for d in DIMENSIONS for child in d.children}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """12 overall-only and 18 12-dim rows: every 6th 12-dim row has no visible face (six null
    dimensions, filled from the comprehensive score); two more have one null facial feature
    (filled from the facial score) and a null outfit (from general appearance)."""
    made = make_rows(12, 18, folder=tmp_path_factory.mktemp("store"), cluster_every=10**6)
    out = []
    for r in made:
        if r.image_id in (14, 22):
            scores = list(r.scores)
            scores[KEYS.index("facial_skin_tone")] = None
            scores[KEYS.index("outfit")] = None
            r = replace(r, scores=tuple(scores))
        out.append(r)
    return out


def split_of(row) -> str:
    """Thirds by cluster (or image): no cluster straddles two splits."""
    key = row.cluster if row.cluster is not None else row.image_id
    return SPLIT_OF[key % 3]


def filled(scores: tuple) -> list[float]:
    """The nearest rated parent of each null dimension, walked up the standard's tree."""
    out = []
    for i, key in enumerate(KEYS):
        j = i
        while scores[j] is None:
            j = PARENT[KEYS[j]]
        out.append(scores[j])
        assert key == KEYS[i]
    return out


def expected_lines(rows, na: str) -> dict[str, list[dict]]:
    lines: dict[str, list[dict]] = {s: [] for s in SPLIT_OF}
    for r in rows:
        name = stable_name(r, image_ext(r.format))
        if r.scores is None:
            line = {"image_name": f"HumanBeauty-58K/images/{name}", "source": r.source,
                    "score": r.overall, "text_level": score_to_level(r.overall),
                    "is_expert": False}
        elif None not in r.scores:
            line = {"image_name": f"HumanBeauty-50K/images/{name}", "source": r.source,
                    "score": list(r.scores), "is_expert": True}
        elif na == "drop":
            continue
        elif na == "overall":
            line = {"image_name": f"HumanBeauty-50K/images/{name}", "source": r.source,
                    "score": r.scores[-1], "text_level": score_to_level(r.scores[-1]),
                    "is_expert": False}
        else:
            line = {"image_name": f"HumanBeauty-50K/images/{name}", "source": r.source,
                    "score": filled(r.scores), "is_expert": True,
                    "score_mask": [s is not None for s in r.scores]}
        lines[split_of(r)].append(line)
    return lines


def build(rows, out: Path, na: str, **kw) -> dict:
    config = ReleaseConfig(name="hb", version="1", na=na, formats=("official", "parquet"), **kw)
    splits = {r.image_id: split_of(r) for r in rows}
    return build_release(rows, splits, config, out, platform_version="t", extra_config={})


@pytest.mark.parametrize("na", NA_POLICIES)
def test_the_official_layout_line_by_line_for_each_na_policy(rows, tmp_path, na):
    with_na = [r for r in rows if r.scores is not None and None in r.scores]
    assert len(with_na) >= 4 and {split_of(r) for r in with_na} == set(SPLIT_OF)
    manifest = build(rows, tmp_path / "rel", na)
    root = tmp_path / "rel" / "HumanBeauty"
    expected = expected_lines(rows, na)
    for split in SPLIT_OF:
        got = [json.loads(x) for x in (root / f"{split}_label.jsonl").read_text().splitlines()]
        assert got == expected[split], split
        for line in got:  # key order as the official generate_split.py writes them
            assert list(line)[:3] == ["image_name", "source", "score"]
            assert (root / line["image_name"]).is_file()
    parts = {p: [json.loads(x) for x in (root / p / "label.jsonl").read_text().splitlines()]
             for p in ("HumanBeauty-50K", "HumanBeauty-58K")}
    all_lines = [x for s in SPLIT_OF for x in expected[s]]
    for part, lines in parts.items():
        mine = [x for x in all_lines if x["image_name"].startswith(part)]
        assert sorted(lines, key=json.dumps) == sorted(
            ({**x, "image_name": x["image_name"].rsplit("/", 1)[1]} for x in mine),
            key=json.dumps)
    n = len(with_na)
    assert manifest["counts"]["official"] == {
        "na": na, "with_na": n,
        "filled": n if na == "fill" else 0,
        "dropped": n if na == "drop" else 0,
        "as_overall": n if na == "overall" else 0,
        "lines": {s: len(expected[s]) for s in SPLIT_OF},
    }
    assert manifest["config"]["na"] == na
    # the other formats keep every image and its nulls, whatever the choice
    assert manifest["counts"]["images"] == len(rows)
    datasheet = (tmp_path / "rel" / "datasheet.md").read_text()
    assert f"(--na {na})" in datasheet and f"{n:,} such image(s)" in datasheet
    card = (tmp_path / "rel" / "README.md").read_text()
    assert "do not re-run the official generate_split.py" in card


def test_na_is_checked_with_the_rest_of_the_configuration():
    with pytest.raises(ReleaseConfigError, match="na must be one of fill, drop, overall"):
        ReleaseConfig(name="a", version="1", na="zero")
    assert ReleaseConfig(name="a", version="1").na == "fill"


def test_an_official_layout_without_a_test_split_is_refused(rows, tmp_path):
    for split in ({"train": 0.9, "val": 0.1}, {"train": 0.9, "val": 0.1, "test": 0.0}):
        with pytest.raises(ReleaseConfigError, match="official layout needs a test split"):
            ReleaseConfig(name="a", version="1", split=split)
        ReleaseConfig(name="a", version="1", split=split, formats=("parquet",))  # fine
    config = ReleaseConfig(name="a", version="1")
    no_test = SplitPlan({1: "train", 2: "val"}, SplitHistory(), {}, ())
    with pytest.raises(ReleaseConfigError, match="test split is empty: none of the 2"):
        check_official_test(no_test, config)
    check_official_test(no_test, ReleaseConfig(name="a", version="1", formats=("parquet",)))
    check_official_test(SplitPlan({1: "test"}, SplitHistory(), {}, ()), config)


def test_a_test_split_emptied_by_na_drop_fails_the_build_and_leaves_nothing(rows, tmp_path):
    """Test holds only 12-dim images with a null dimension: dropped, test_label.jsonl would
    be empty, so the build refuses (the other policies build)."""
    test_rows = [r for r in rows if r.scores is not None and None in r.scores]
    keep = [r for r in rows if split_of(r) != "test" or r in test_rows]
    out = tmp_path / "drop"
    with pytest.raises(ReleaseConfigError, match=r"test split is empty \(\d+ test image\(s\) "
                                                 "dropped by --na drop"):
        build(keep, out, "drop")
    assert not out.exists() and not (tmp_path / ".drop.building").exists()
    build(keep, tmp_path / "overall", "overall")


NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails
from modeling.hae.data import ReleaseDataset, read_split
out = {}
for split in ("train", "val", "validation", "test"):
    samples = read_split(sys.argv[1], split)
    out[split] = sorted(s.image_name for s in samples)
ds = ReleaseDataset(read_split(sys.argv[1], "val"))
image, sample = ds[0]
out["item"] = [len(ds), image.size[0] > 0, sample.image_name]
print(__import__("json").dumps(out))
"""


def test_the_model_label_reader_needs_no_torch_and_reads_val_as_validation(rows, tmp_path):
    build(rows, tmp_path / "rel", "fill")
    result = subprocess.run([sys.executable, "-c", NO_TORCH, str(tmp_path / "rel")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    expected = expected_lines(rows, "fill")
    for split in SPLIT_OF:
        assert got[split] == sorted(x["image_name"] for x in expected[split]), split
    assert got["validation"] == got["val"] and got["val"]
    assert got["item"][0] == len(expected["val"]) and got["item"][1] is True
    # and torch really was out of reach: the same import of torch fails there
    probe = subprocess.run([sys.executable, "-c", 'import sys; sys.modules["torch"] = None\n'
                            "import torch"], cwd=REPO, capture_output=True, text=True)
    assert probe.returncode != 0 and "torch" in probe.stderr


def test_diff_splits_counts_and_lists_each_kind_of_change():
    from modeling.release import diff_splits

    before = {1: "train", 2: "val", 3: "test", 4: "train", 5: "train", 6: "val"}
    after = {1: "train", 2: "train", 3: "test", 6: "val", 7: "test", 8: "train", 5: "val"}
    diff = diff_splits(before, after, withheld=[4, 99])
    assert diff["counts"] == {"added": 2, "removed": 0, "withheld": 1, "moved": 2,
                              "unchanged": 3}
    assert diff["added"] == [7, 8] and diff["withheld"] == [4] and diff["removed"] == []
    assert diff["moved"] == [{"image_id": 2, "from": "val", "to": "train"},
                             {"image_id": 5, "from": "train", "to": "val"}]
    assert diff["moved_by_splits"] == {"train->val": 1, "val->train": 1}
    assert diff_splits(before, after)["removed"] == [4]  # not withheld: removed
    assert diff_splits(after, after)["counts"] == {"added": 0, "removed": 0, "withheld": 0,
                                                   "moved": 0, "unchanged": 7}
