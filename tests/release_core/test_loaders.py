"""A release loads in each client's own loader with no option, and its card says how.

The release: mixed JPEG/PNG images, a dimension not applicable to any image (an all-null
column), a split of overall-only images (val) and an empty split (test). Every value read back
is compared with the rows it was built from.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import math
import os
import re
import warnings
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from humanbeauty.standard import DIMENSION_KEYS, score_to_level
from modeling.release import COLUMN_NAMES, ReleaseConfig, ReleaseConfigError, build_release
from modeling.release.card import CSV_NULLABLE_INTS, size_category

from .conftest import make_rows

SPLITS = {"train": "train", "validation": "val", "test": "test"}  # loader name: file name
LOADED = {"train": "train", "validation": "val"}  # test is empty: the card leaves it out
NA_DIM = DIMENSION_KEYS.index("environment")  # not applicable to any image of this release


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """`datasets` offline, its cache in a temporary folder (the snippets pass no cache_dir)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_DATASETS_OFFLINE", "1")  # read on import, if this is the first
        mp.setenv("HF_DATASETS_CACHE", str(tmp_path_factory.mktemp("hf-cache")))
        import datasets

        mp.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", Path(os.environ["HF_DATASETS_CACHE"]))
        yield datasets


def _release(tmp_path_factory, formats: tuple[str, ...]):
    """hb-1.0: train holds both kinds, val overall-only images, test nothing."""
    rows = make_rows(30, 24, folder=tmp_path_factory.mktemp("store"), cluster_every=6)
    rows = [r if r.scores is None else replace(
        r, scores=tuple(None if i == NA_DIM else v for i, v in enumerate(r.scores)),
        std=tuple(None if i == NA_DIM else v for i, v in enumerate(r.std)),
    ) for r in rows]
    # Whole clusters per split: 12-dim images and the first overall-only ones in train.
    splits = {r.image_id: "train" if r.scores is not None or r.image_id <= 15 else "val"
              for r in rows}
    clusters: dict[int, set[str]] = {}
    for r in rows:
        if r.cluster is not None:
            clusters.setdefault(r.cluster, set()).add(splits[r.image_id])
    straddling = {c for c, s in clusters.items() if len(s) > 1}
    splits = {r.image_id: "train" if r.cluster in straddling else splits[r.image_id]
              for r in rows}
    # No official layout: it needs a test split, and this release has none.
    config = ReleaseConfig(name="hb", version="1.0", seed=1, shard_size=8,
                           formats=formats, split={"train": 0.6, "val": 0.4, "test": 0.0})
    out = tmp_path_factory.mktemp("rel") / "hb-1.0"
    manifest = build_release(rows, splits, config, out, platform_version="t", extra_config={})
    assert {r.format for r in rows} == {"JPEG", "PNG"}
    assert {splits[r.image_id] for r in rows if r.scores is not None} == {"train"}
    assert manifest["counts"]["split_kinds"]["val"]["12dim"] == 0
    assert manifest["counts"]["splits"]["val"] > 0 and manifest["counts"]["splits"]["test"] == 0
    return out, {r.image_id: r for r in rows}, splits, manifest


@pytest.fixture(scope="module")
def rel(tmp_path_factory):
    """Parquet, CSV and WebDataset: the images stored once, as files the shards' json names."""
    return _release(tmp_path_factory, ("parquet", "webdataset", "csv"))


@pytest.fixture(scope="module")
def wds_rel(tmp_path_factory):
    """The same release as WebDataset only: the images stored once, inside the shards."""
    return _release(tmp_path_factory, ("webdataset",))


def card(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    _, head, body = text.split("---\n", 2)
    return yaml.safe_load(head), body


def check_row(rec: dict, row, split: str, *, csv: bool = False) -> None:
    """A Parquet/CSV-shaped record against the row it was built from."""
    num = float if csv else int  # the CSV card reads nullable integers as float64
    assert rec["split"] == split and rec["source"] == row.source
    assert rec["overall"] == row.overall and rec["overall_level"] == score_to_level(row.overall)
    assert rec["is_expert"] is (row.scores is not None)
    assert rec["sha256"] == row.sha256 and rec["phash"] == row.phash
    assert rec["cluster"] == (None if row.cluster is None else num(row.cluster))
    assert type(rec["cluster"]) in (type(None), num)
    assert rec["format"] == row.format and rec["original_file"] is None
    for i, key in enumerate(DIMENSION_KEYS):
        score = None if row.scores is None else row.scores[i]
        assert rec[key] == score
        assert rec[f"{key}_level"] == (None if score is None else score_to_level(score))
        assert rec[f"{key}_n"] == (None if row.scores is None else num(3))
        assert rec[f"{key}_std"] == (None if row.std is None else row.std[i])


def test_the_card_names_the_files_types_and_licence(rel, hf):
    out, rows, _splits, manifest = rel
    header, body = card(out / "README.md")
    assert header["license"] == "unknown" and header["task_categories"]
    assert header["size_categories"] == [size_category(len(rows))] == ["n<1K"]
    (config,) = header["configs"]
    assert config["data_files"] == [{"split": k, "path": f"parquet/{v}.parquet"}
                                    for k, v in LOADED.items()]
    features = hf.Features._from_yaml_list(header["dataset_info"]["features"])
    assert features == hf.Features.from_arrow_schema(pq.read_schema(out / "parquet/train.parquet"))
    table = {cells[0]: cells[1:] for line in body.splitlines() if line.startswith("| ")
             for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    for name, split in SPLITS.items():
        kinds = manifest["counts"]["split_kinds"][split]
        assert table[name] == [split, f"{kinds['overall']:,}", f"{kinds['12dim']:,}",
                               f"{manifest['counts']['splits'][split]:,}"]
    csv_header, _ = card(out / "csv" / "README.md")
    csv_features = hf.Features._from_yaml_list(csv_header["dataset_info"]["features"])
    assert [k for k in csv_features if csv_features[k] != features[k]] == [
        k for k in COLUMN_NAMES if k in CSV_NULLABLE_INTS]
    # The manifest lists the cards with their checksums.
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    for name in ("README.md", "csv/README.md", "webdataset/README.md"):
        assert listed[name] == hashlib.sha256((out / name).read_bytes()).hexdigest()


def test_datasets_loads_the_release_with_no_option(rel, hf):
    out, rows, splits, manifest = rel
    ds = hf.load_dataset(str(out))
    assert list(ds) == list(LOADED)
    want = hf.Features.from_arrow_schema(pq.read_schema(out / "parquet" / "train.parquet"))
    for name, split in LOADED.items():
        assert ds[name].features == want
        assert ds[name].num_rows == manifest["counts"]["splits"][split]
        records = ds[name].to_list()
        assert records == pq.read_table(out / "parquet" / f"{split}.parquet").to_pylist()
        for rec in records:
            check_row(rec, rows[rec["image_id"]], split)
    assert ds["validation"].num_rows and not any(ds["validation"]["is_expert"])
    assert set(ds["train"]["environment"]) == {None}  # the all-null column keeps its type
    assert ds["train"].features["environment"].dtype == "float64"


def test_csv_loads_with_pandas_and_with_datasets_through_its_card(rel, hf):
    import pandas as pd

    out, rows, _splits, manifest = rel
    ds = hf.load_dataset(str(out / "csv"))
    assert list(ds) == list(LOADED)
    for name, split in LOADED.items():
        assert ds[name].num_rows == manifest["counts"]["splits"][split]
        for rec in ds[name].to_list():
            check_row(rec, rows[rec["image_id"]], split, csv=True)
        frame = pd.read_csv(out / "csv" / f"{split}.csv")
        assert list(frame.columns) == list(COLUMN_NAMES)
        assert len(frame) == manifest["counts"]["splits"][split]
        for rec in frame.to_dict("records"):
            row = rows[rec["image_id"]]
            assert rec["overall"] == row.overall and rec["sha256"] == row.sha256
            fb = rec["facial_brightness"]
            assert math.isnan(fb) if row.scores is None or row.scores[0] is None else (
                fb == row.scores[0])
    # val has no 12-dim image: its dimension columns are all empty, and still typed
    assert ds["validation"].features == ds["train"].features
    assert set(ds["validation"]["facial_brightness_level"]) == {None}


def wds_check(record: dict, row, split: str) -> None:
    """The typed WebDataset json against its row: lists of 12, placeholders for absent."""
    assert record["image_id"] == row.image_id and record["split"] == split
    assert record["overall"] == row.overall and record["is_expert"] is (row.scores is not None)
    scores = row.scores or (None,) * 12
    assert record["scores"] == [-1.0 if v is None else v for v in scores]
    assert record["score_mask"] == [v is not None for v in scores]
    assert record["std"] == [-1.0 if v is None else v for v in (row.std or (None,) * 12)]
    assert record["n"] == ([3] * 12 if row.scores else [0] * 12)
    assert record["levels"] == ["" if v is None else score_to_level(v) for v in scores]
    assert record["cluster"] == (-1 if row.cluster is None else row.cluster)
    assert record["phash"] == row.phash and record["sha256"] == row.sha256
    assert record["format"] == row.format and record["original_file"] == ""


def test_webdataset_loads_in_datasets_with_and_without_its_card(wds_rel, hf):
    out, rows, splits, manifest = wds_rel
    shards = {name: sorted(str(p) for p in (out / "webdataset").glob(f"{split}-*.tar"))
              for name, split in SPLITS.items()}
    assert [len(shards[n]) for n in SPLITS] == [
        -(-manifest["counts"]["splits"][s] // 8) for s in SPLITS.values()]  # 8 per shard
    ds = hf.load_dataset(str(out / "webdataset"))
    # No card: types guessed from 5 samples of val, where every dimension is absent.
    raw = hf.load_dataset("webdataset", data_files={k: shards[k] for k in ("train", "validation")})
    for name, split in LOADED.items():
        assert ds[name].num_rows == manifest["counts"]["splits"][split]
        for sample in ds[name]:
            row = rows[sample["json"]["image_id"]]
            wds_check(sample["json"], row, split)
            assert sample["jpg"].size == (row.width, row.height)
    for name in ("train", "validation"):
        assert raw[name].num_rows == ds[name].num_rows
        json_type = raw[name].features["json"]
        assert json_type["scores"].feature.dtype == "float64"
        assert json_type["n"].feature.dtype == "int64"
        assert isinstance(raw[name].features["jpg"], hf.Image)
        for sample in raw[name]:
            row = rows[sample["json"]["image_id"]]
            wds_check(sample["json"], row, SPLITS[name])
            assert sample["jpg"].format == ("PNG" if row.format == "PNG" else "JPEG")


def test_webdataset_library_reads_every_sample_under_one_image_key(wds_rel):
    import webdataset as wds

    out, rows, _splits, manifest = wds_rel
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # webdataset leaves its shards open
        for split in SPLITS.values():
            shards = sorted(str(p) for p in (out / "webdataset").glob(f"{split}-*.tar"))
            if not manifest["counts"]["splits"][split]:
                assert shards == []  # an empty split has no shard
                continue
            for sample in wds.WebDataset(shards, shardshuffle=False):
                assert {k for k in sample if not k.startswith("__")} == {"jpg", "json"}
                record = json.loads(sample["json"])
                row = rows[record["image_id"]]
                wds_check(record, row, split)
                assert hashlib.sha256(sample["jpg"]).hexdigest() == row.sha256
                with Image.open(io.BytesIO(sample["jpg"])) as im:
                    assert im.format == ("PNG" if row.format == "PNG" else "JPEG")
                seen.append(row.image_id)
        gc.collect()
    assert sorted(seen) == sorted(rows) and len(seen) == manifest["counts"]["images"]


def snippets(path: Path) -> dict[str, str]:
    _, body = card(path)
    return dict(re.findall(r"### (\S+)\n\n```python\n(.*?)\n```", body, flags=re.S))


def test_every_snippet_of_the_card_runs_as_it_is(rel, hf, monkeypatch):
    out, rows, _splits, manifest = rel
    code = snippets(out / "README.md")
    assert list(code) == ["datasets", "pandas", "pyarrow", "webdataset"]
    monkeypatch.chdir(out.parent)  # beside the folder, as the card says
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for client, text in code.items():
            scope: dict = {}
            exec(compile(text, f"README.md:{client}", "exec"), scope)
            results[client] = scope
        gc.collect()
    n = manifest["counts"]["splits"]
    ds = results["datasets"]["ds"]
    assert {k: ds[k].num_rows for k in ds} == {k: n[v] for k, v in LOADED.items()}
    assert {k: results["datasets"]["ds_csv"][k].num_rows for k in ds} == {
        k: n[v] for k, v in LOADED.items()}
    assert results["datasets"]["ds_wds"]["train"].num_rows == n["train"]
    assert len(results["pandas"]["frame"]) == len(results["pandas"]["frame_csv"]) == n["train"]
    assert results["pyarrow"]["table"].num_rows == n["train"]
    image, record = results["webdataset"]["image"], results["webdataset"]["record"]
    assert image.size == (rows[record["image_id"]].width, rows[record["image_id"]].height)


def test_a_csv_only_release_without_images_loads_from_its_root(tmp_path, hf):
    rows = make_rows(12, 8)
    splits = {r.image_id: "train" if r.image_id <= 16 else "test" for r in rows}
    config = ReleaseConfig(name="small", version="2", formats=("csv", "webdataset"),
                           images="none", split={"train": 0.8, "test": 0.2})
    out = tmp_path / "small-2"
    build_release(rows, splits, config, out, platform_version="t", extra_config={})
    header, _ = card(out / "README.md")
    assert header["configs"][0]["data_files"][0] == {"split": "train", "path": "csv/train.csv"}
    ds = hf.load_dataset(str(out))
    assert {k: ds[k].num_rows for k in ds} == {"train": 16, "test": 4}
    by_id = {r.image_id: r for r in rows}
    for split in ("train", "test"):
        for rec in ds[split]:
            assert rec["overall"] == by_id[rec["image_id"]].overall
            assert rec["original_file"] is None  # rows without files
    code = snippets(out / "README.md")
    assert list(code) == ["datasets", "pandas", "webdataset"]
    assert '.to_tuple("json")' in code["webdataset"] and "jpg" not in code["webdataset"]
    wds_ds = hf.load_dataset(str(out / "webdataset"))
    assert "jpg" not in wds_ds["train"].features and wds_ds["test"].num_rows == 4


def test_shard_size_is_an_option_with_a_default_of_10000():
    assert ReleaseConfig(name="a", version="1").shard_size == 10_000
    assert ReleaseConfig(name="a", version="1", shard_size=3).to_dict()["shard_size"] == 3


def test_the_licence_is_an_identifier():
    assert ReleaseConfig(name="a", version="1").license == "unknown"
    assert ReleaseConfig(name="a", version="1", license="cc-by-4.0").to_dict()["license"] == (
        "cc-by-4.0")
    for bad in ("", "cc by", "x\nconfigs: []", None):
        with pytest.raises(ReleaseConfigError, match="license must be"):
            ReleaseConfig(name="a", version="1", license=bad)


def test_a_webdataset_only_release_loads_from_its_root(tmp_path, hf):
    rows = make_rows(10, 6, folder=tmp_path / "store")
    splits = {r.image_id: "train" if r.image_id <= 12 else "val" for r in rows}
    config = ReleaseConfig(name="w", version="1", formats=("webdataset",), shard_size=5,
                           split={"train": 0.75, "val": 0.25})
    out = tmp_path / "w-1"
    build_release(rows, splits, config, out, platform_version="t", extra_config={})
    ds = hf.load_dataset(str(out))  # the root card serves the WebDataset files
    assert {k: ds[k].num_rows for k in ds} == {"train": 12, "validation": 4}
    in_folder = hf.load_dataset(str(out / "webdataset"))  # as does their own card
    assert in_folder["train"]["json"] == ds["train"]["json"]
    by_id = {r.image_id: r for r in rows}
    for name, split in LOADED.items():
        for sample in ds[name]:
            row = by_id[sample["json"]["image_id"]]
            wds_check(sample["json"], row, split)
            assert sample["jpg"].size == (row.width, row.height)
    assert len(list((out / "webdataset").glob("train-*.tar"))) == 3  # 5 per shard


def test_two_releases_in_folders_of_one_name_do_not_share_the_datasets_cache(tmp_path, hf):
    """`datasets` caches a local folder by its name and its card: every release's csv/ has
    the same name, so the card names its files' digest, else the second loads the first."""
    loaded = {}
    for where, n in (("a", 6), ("b", 9)):
        rows = make_rows(n, 0)
        out = tmp_path / where / "hb-1"
        build_release(rows, {r.image_id: "train" for r in rows},
                      ReleaseConfig(name="hb", version="1", images="none",
                                    formats=("parquet", "csv"), split={"train": 1.0}),
                      out, platform_version="t", extra_config={})
        loaded[where] = (hf.load_dataset(str(out))["train"].num_rows,
                         hf.load_dataset(str(out / "csv"))["train"].num_rows)
    assert loaded == {"a": (6, 6), "b": (9, 9)}


def test_an_official_only_release_card_serves_no_loader_and_says_how_to_read_it(tmp_path):
    """The official layout is read by the official scripts, not by `datasets`: its card
    names no configs (load_dataset would find nothing to serve), keeps the licence and sizes,
    and its prose and platform snippet point to the split files that are there."""
    rows = make_rows(12, 8, folder=tmp_path / "store")
    splits = {r.image_id: "train" if r.image_id <= 16 else "test" for r in rows}
    config = ReleaseConfig(name="off", version="1", formats=("official",),
                           license="cc-by-4.0", split={"train": 0.8, "test": 0.2})
    out = tmp_path / "off-1"
    build_release(rows, splits, config, out, platform_version="t", extra_config={})
    header, body = card(out / "README.md")
    assert "configs" not in header and "dataset_info" not in header
    assert header["license"] == "cc-by-4.0" and header["size_categories"] == ["n<1K"]
    assert "official HumanAesExpert layout only" in body
    for name in ("train_label.jsonl", "test_label.jsonl"):
        assert name in body and (out / "HumanBeauty" / name).is_file()
    assert "datasets" not in snippets(out / "README.md")
    assert not (out / "parquet").exists() and not (out / "csv").exists()
