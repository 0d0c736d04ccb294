from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import os
import tarfile
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from humanbeauty.standard import DIMENSION_KEYS, LEVELS, score_to_level
from modeling.release import (
    COLUMN_NAMES,
    ReleaseConfig,
    ReleaseConfigError,
    ReleaseDataError,
    assign_splits,
    build_release,
)
from modeling.release.records import FILL_CHAIN, level_of

from .conftest import make_rows

PLATFORM = "0.1.0-test"
OVERALL_KEYS = ["image_name", "source", "score", "text_level", "is_expert"]
EXPERT_KEYS = ["image_name", "source", "score", "is_expert"]


def build(rows, config, out, previous_test=frozenset(), **kw):
    splits = assign_splits(rows, config, previous_test)
    manifest = build_release(rows, splits, config, out, platform_version=PLATFORM,
                             extra_config=kw.pop("extra_config", {"sources": ["all"]}), **kw)
    return splits, manifest


def files_on_disk(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel != "manifest.json":
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def release(image_rows, tmp_path_factory):
    """One full build (all formats, images copied) of 60 overall-only + 40 12-dim images."""
    out = tmp_path_factory.mktemp("rel") / "hb-1.0"
    config = ReleaseConfig(name="hb", version="1.0", seed=3, shard_size=16)
    calls = []
    splits, manifest = build(image_rows, config, out,
                             progress=lambda *a: calls.append(a))
    return out, splits, manifest, calls


def read_lines(path: Path) -> list[tuple[str, dict]]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return [(line, json.loads(line)) for line in text.splitlines()]


def check_label(line: str, item: dict, row, prefix: str) -> None:
    # Exactly the official writer's format: json.dumps with default separators, key order.
    assert line == json.dumps(item)
    name = item["image_name"]
    assert name.startswith(prefix) and "/" not in name[len(prefix):]
    assert item["source"] == row.source
    if row.scores is None:
        assert list(item) == OVERALL_KEYS
        assert item["is_expert"] is False
        assert type(item["score"]) is float and item["score"] == row.overall
        assert item["text_level"] == score_to_level(row.overall)
    else:
        assert list(item)[:4] == EXPERT_KEYS
        assert item["is_expert"] is True
        score = item["score"]
        assert isinstance(score, list) and len(score) == 12
        assert all(type(v) is float and 0.0 <= v <= 1.0 for v in score)
        if None in row.scores:
            # Null dimensions are filled from the nearest rated parent and flagged.
            assert list(item) == [*EXPERT_KEYS, "score_mask"]
            assert item["score_mask"] == [v is not None for v in row.scores]
            for i, v in enumerate(row.scores):
                if v is None:
                    fill = next(row.scores[j] for j in FILL_CHAIN[i] if row.scores[j] is not None)
                    assert score[i] == fill
                else:
                    assert score[i] == v
        else:
            assert list(item) == EXPERT_KEYS
            assert score == list(row.scores)


def test_official_layout_matches_the_specification_line_by_line(release, image_rows):
    out, splits, _manifest, _ = release
    root = out / "HumanBeauty"
    by_name = {}
    for part, expert in (("HumanBeauty-58K", False), ("HumanBeauty-50K", True)):
        lines = read_lines(root / part / "label.jsonl")
        rows = [r for r in image_rows if (r.scores is not None) == expert]
        assert len(lines) == len(rows)
        for (line, item), row in zip(lines, rows, strict=True):
            check_label(line, item, row, "")
            assert (root / part / "images" / item["image_name"]).is_file()
            by_name[f"{part}/images/{item['image_name']}"] = row
    seen = Counter()
    for split in ("train", "val", "test"):
        for line, item in read_lines(root / f"{split}_label.jsonl"):
            row = by_name[item["image_name"]]
            part = "HumanBeauty-50K" if row.scores is not None else "HumanBeauty-58K"
            check_label(line, item, row, f"{part}/images/")
            assert (root / item["image_name"]).is_file()
            assert splits[row.image_id] == split
            seen[row.image_id] += 1
    assert seen == Counter({r.image_id: 1 for r in image_rows})


def test_official_files_read_with_the_model_loader(release, image_rows):
    from modeling.hae.data import read_split

    out, splits, _m, _ = release
    samples = read_split(out, "train") + read_split(out, "test")
    assert len(samples) == sum(s in ("train", "test") for s in splits.values())
    rows = {r.sha256[:16]: r for r in image_rows}
    for sample in samples:
        row = rows[Path(sample.image_name).stem]
        assert sample.image_path.is_file() and sample.is_expert == (row.scores is not None)
        assert sample.overall == pytest.approx(row.overall)


def test_manifest_lists_every_file_with_its_checksum(release, image_rows):
    out, splits, manifest, calls = release
    on_disk = files_on_disk(out)
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert listed == on_disk
    assert [f["path"] for f in manifest["files"]] == sorted(on_disk)
    for f in manifest["files"]:
        assert f["size"] == (out / f["path"]).stat().st_size
    assert json.loads((out / "manifest.json").read_text()) == manifest
    counts = manifest["counts"]
    assert counts["images"] == counts["image_files"] == len(image_rows)
    assert counts["splits"] == dict(Counter(splits.values()))
    assert counts["kinds"] == {"overall": 60, "12dim": 40}
    assert sum(c["total"] for c in counts["sources"].values()) == len(image_rows)
    assert manifest["platform_version"] == PLATFORM
    assert manifest["config"]["seed"] == 3 and manifest["extra_config"] == {"sources": ["all"]}
    assert not (out.parent / f".{out.name}.building").exists()
    assert calls[-1] == ("manifest", 1, 1) and ("rows", 100, 100) in calls


def test_same_seed_gives_a_byte_identical_manifest_other_seed_does_not(image_rows, tmp_path):
    config = ReleaseConfig(name="hb", version="1.0", seed=3, shard_size=16)
    build(image_rows, config, tmp_path / "a")
    build(image_rows, config, tmp_path / "b")
    a = (tmp_path / "a" / "manifest.json").read_bytes()
    assert a == (tmp_path / "b" / "manifest.json").read_bytes()
    splits_c, manifest_c = build(image_rows, replace(config, seed=4), tmp_path / "c")
    assert a != (tmp_path / "c" / "manifest.json").read_bytes()
    assert manifest_c["splits_sha256"] != json.loads(a)["splits_sha256"]


def test_parquet_loads_with_pyarrow_pandas_and_datasets(release, image_rows, tmp_path):
    import datasets
    import pandas as pd

    out, splits, _m, _ = release
    rows = {r.image_id: r for r in image_rows}
    for split in ("train", "val", "test"):
        path = out / "parquet" / f"{split}.parquet"
        table = pq.read_table(path)
        assert table.column_names == list(COLUMN_NAMES)
        assert table.num_rows == sum(s == split for s in splits.values())
        for rec in table.to_pylist():
            row = rows[rec["image_id"]]
            assert rec["split"] == split and rec["source"] == row.source
            assert (out / rec["path"]).is_file()
            assert rec["overall"] == row.overall
            assert rec["overall_level"] == score_to_level(row.overall)
            assert rec["sha256"] == row.sha256 and rec["cluster"] == row.cluster
            assert rec["is_expert"] == (row.scores is not None)
            for i, key in enumerate(DIMENSION_KEYS):
                if row.scores is None:
                    assert rec[key] is None and rec[f"{key}_n"] is None
                else:
                    assert rec[key] == row.scores[i]  # nulls stay null here
                    assert rec[f"{key}_std"] == row.std[i] and rec[f"{key}_n"] == 3
                    want = None if row.scores[i] is None else score_to_level(row.scores[i])
                    assert rec[f"{key}_level"] == want
        frame = pd.read_parquet(path)
        assert len(frame) == table.num_rows and list(frame.columns) == list(COLUMN_NAMES)
    data = datasets.load_dataset(
        "parquet",
        data_files={s: str(out / "parquet" / f"{s}.parquet") for s in ("train", "val", "test")},
        cache_dir=str(tmp_path / "hf"),
    )
    assert {s: data[s].num_rows for s in data} == dict(Counter(splits.values()))
    assert data["train"].column_names == list(COLUMN_NAMES)
    assert data["train"].features["comprehensive_aesthetic"].dtype == "float64"


def test_webdataset_shards_read(release, image_rows):
    import webdataset as wds

    out, splits, _m, _ = release
    rows = {r.sha256[:16]: r for r in image_rows}
    seen = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # webdataset leaves its shards open
        seen = _read_shards(out, splits, rows, wds)
        gc.collect()
    assert seen == len(image_rows)


def _read_shards(out, splits, rows, wds) -> int:
    seen = 0
    for split in ("train", "val", "test"):
        shards = sorted(str(p) for p in (out / "webdataset").glob(f"{split}-*.tar"))
        n = sum(s == split for s in splits.values())
        assert len(shards) == -(-n // 16)  # 16 samples per shard
        for sample in wds.WebDataset(shards, shardshuffle=False, empty_check=False):
            row = rows[sample["__key__"]]
            meta = json.loads(sample["json"])
            # Images are stored once: the official layout's files, which the json names.
            assert "jpg" not in sample and meta["path"].startswith("HumanBeauty/")
            data = (out / meta["path"]).read_bytes()
            assert Image.open(io.BytesIO(data)).size == (row.width, row.height)
            assert hashlib.sha256(data).hexdigest() == row.sha256
            assert meta["image_id"] == row.image_id and meta["split"] == split
            assert meta["overall"] == row.overall
            seen += 1
        for shard in shards:  # plain tarfile too; fixed headers
            with tarfile.open(shard) as tar:
                assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    return seen


def test_csv(release, image_rows):
    import pandas as pd

    out, splits, _m, _ = release
    rows = {r.image_id: r for r in image_rows}
    for split in ("train", "val", "test"):
        with open(out / "csv" / f"{split}.csv", newline="") as fh:
            reader = csv.DictReader(fh)
            assert tuple(reader.fieldnames) == COLUMN_NAMES
            records = list(reader)
        assert len(records) == sum(s == split for s in splits.values())
        for rec in records:
            row = rows[int(rec["image_id"])]
            assert float(rec["overall"]) == row.overall and rec["split"] == split
            if row.scores is not None and row.scores[0] is None:
                assert rec["facial_brightness"] == "" and rec["facial_brightness_level"] == ""
        frame = pd.read_csv(out / "csv" / f"{split}.csv")
        assert len(frame) == len(records)


def test_datasheet(release):
    out, splits, manifest, _ = release
    md = (out / "datasheet.md").read_text()
    html = (out / "datasheet.html").read_text()
    for text in (md, html):
        assert "hb 1.0" in text and "AVA" in text and "hb-project" in text
        assert "Facial Brightness" in text and "Comprehensive Aesthetic Score" in text
        for n in Counter(splits.values()).values():
            assert f"{n:,}" in text
    for key in ("overall", *DIMENSION_KEYS):
        svg = out / "datasheet" / f"{key}.svg"
        assert f"(datasheet/{key}.svg)" in md and svg.read_text().startswith("<svg")
    assert html.count("<svg") == 13 and "<script" not in html
    assert manifest["scores"]["facial_brightness"]["not_applicable"] > 0


def test_images_link_none_and_max_side(image_rows, tmp_path):
    rows = image_rows[:30] + image_rows[-20:]
    _s, m_link = build(rows, ReleaseConfig(name="hb", version="1", images="link"),
                       tmp_path / "link")
    for row in rows:
        ext = "png" if row.format == "PNG" else "jpg"
        part = "HumanBeauty-50K" if row.scores is not None else "HumanBeauty-58K"
        linked = tmp_path / "link" / "HumanBeauty" / part / "images" / f"{row.sha256[:16]}.{ext}"
        assert os.path.samefile(linked, row.file)  # a hard link: the same inode
    assert m_link["counts"]["image_files"] == len(rows)
    # the datasheet says what the build did, as it counted it
    sheet = (tmp_path / "link" / "datasheet.md").read_text()
    assert f"Images: {len(rows):,} image files, {len(rows):,} of them hard links" in sheet

    _s, m_none = build(rows, ReleaseConfig(name="hb", version="1", images="none",
                                           formats=("parquet", "webdataset")), tmp_path / "none")
    assert not any(p.suffix in (".jpg", ".png") for p in (tmp_path / "none").rglob("*"))
    assert m_none["counts"]["image_files"] == 0
    assert "Images: none released" in (tmp_path / "none" / "datasheet.md").read_text()
    table = pq.read_table(tmp_path / "none" / "parquet" / "train.parquet").to_pylist()
    by_id = {r.image_id: r for r in rows}
    assert all(rec["original_file"] == by_id[rec["image_id"]].file for rec in table)
    assert all(rec["path"].startswith("images/") for rec in table)
    with tarfile.open(next((tmp_path / "none" / "webdataset").glob("train-*.tar"))) as tar:
        assert {Path(n).suffix for n in tar.getnames()} == {".json"}

    _s, m_small = build(rows, ReleaseConfig(name="hb", version="1", max_side=20,
                                            formats=("parquet",)), tmp_path / "small")
    table = pq.read_table(tmp_path / "small" / "parquet" / "train.parquet").to_pylist()
    assert table and all(rec["path"].endswith(".jpg") for rec in table)
    sums = {f["path"]: f["sha256"] for f in m_small["files"]}
    for rec in table:
        path = tmp_path / "small" / rec["path"]
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.size == (rec["width"], rec["height"])
            assert max(im.size) == 20 and im.size == (20, 15)  # 40x30 keeps its aspect
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[rec["path"]]


def test_changed_file_fails_and_leaves_nothing(tmp_path):
    rows = make_rows(5, 5, folder=tmp_path / "store")
    Path(rows[3].file).write_bytes(b"not the imported bytes")
    config = ReleaseConfig(name="hb", version="1")
    with pytest.raises(ReleaseDataError, match="changed since it was imported"):
        build(rows, config, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.building").exists()
    missing = replace(rows[0], file=None)
    with pytest.raises(ReleaseDataError, match="no stored file"):
        build([missing], config, tmp_path / "out")


def test_bad_build_inputs(image_rows, tmp_path):
    config = ReleaseConfig(name="hb", version="1", images="none")
    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    with pytest.raises(ReleaseConfigError, match="not empty"):
        build(image_rows, config, out)
    with pytest.raises(ReleaseConfigError, match="selection is empty"):
        build_release([], {}, config, tmp_path / "empty", platform_version="x", extra_config={})
    with pytest.raises(ReleaseDataError, match="has no split"):
        build_release(image_rows, {}, config, tmp_path / "nosplit", platform_version="x",
                      extra_config={})
    with pytest.raises(ReleaseConfigError, match="plain JSON"):
        build_release(image_rows, {}, config, tmp_path / "x", platform_version="x",
                      extra_config={"when": object()})
    bad = replace(image_rows[-1], scores=image_rows[-1].scores[:11])
    splits = {bad.image_id: "train"}
    with pytest.raises(ReleaseDataError, match="expected 12 scores"):
        build_release([bad], splits, config, tmp_path / "y", platform_version="x",
                      extra_config={})
    # A previous attempt that died mid-way is cleaned up, an empty target is fine.
    (tmp_path / ".z.building" / "junk").mkdir(parents=True)
    (tmp_path / "z").mkdir()
    build(image_rows, config, tmp_path / "z")
    assert not (tmp_path / "z" / "junk").exists() and (tmp_path / "z" / "manifest.json").exists()


def test_level_of_matches_the_standard():
    for i in range(0, 1001):
        assert level_of(i / 1000) == score_to_level(i / 1000)
    assert level_of(0.2) == LEVELS[1] and level_of(1.0) == LEVELS[-1]


def test_shard_members_are_what_tarfile_writes():
    from modeling.release.writers import tar_member

    items = [("abc.json", b'{"a": 1}'), ("0123456789abcdef.jpg", b"x" * 1000), ("e.png", b"")]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    ours = b"".join(tar_member(n, d) for n, d in items)
    assert buf.getvalue().startswith(ours)
    assert buf.getvalue()[len(ours):] == b"\0" * (len(buf.getvalue()) - len(ours))


def test_our_trainer_reads_masked_dimensions_as_absent(tmp_path):
    """A "not applicable" dimension is filled for the official loader and masked; our own
    reader turns it back into an absent score."""
    from modeling.hae.data import parse_line

    line = (
        '{"image_name": "HumanBeauty-50K/images/x.jpg", "source": "p", '
        '"score": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.6, 0.4, 0.5], '
        '"is_expert": true, '
        '"score_mask": [false, false, false, false, false, false, true, true, true, true, true, '
        "true]}"
    )
    sample = parse_line(line, tmp_path, "test")
    assert sample.scores[:6] == (None,) * 6
    assert sample.scores[6:] == (0.4, 0.4, 0.4, 0.6, 0.4, 0.5)


def test_a_parquet_only_release_reads_with_the_model_loader(image_rows, tmp_path):
    """Training works from the Parquet release too: same samples as the official layout."""
    from modeling.hae.data import read_split

    official = tmp_path / "official"
    parquet = tmp_path / "parquet-only"
    build(image_rows, ReleaseConfig(name="hb", version="1", seed=5, formats=("official",)),
          official)
    build(image_rows, ReleaseConfig(name="hb", version="1", seed=5, formats=("parquet",)),
          parquet)
    for split in ("train", "test"):
        a = sorted(read_split(official, split), key=lambda s: s.image_path.name)
        b = sorted(read_split(parquet, split), key=lambda s: s.image_path.name)
        assert len(a) == len(b) > 0
        for x, y in zip(a, b, strict=True):
            assert y.image_path.is_file() and x.is_expert == y.is_expert
            assert x.overall == pytest.approx(y.overall)
            assert [v is None for v in x.scores] == [v is None for v in y.scores]
