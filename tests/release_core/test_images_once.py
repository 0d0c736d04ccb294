"""Images are stored once per release whatever formats are asked, and WebDataset samples are
shuffled into shards deterministically (seeded from the release, not the split order)."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from modeling.release import ReleaseConfig, assign_splits, build_release

from .conftest import make_rows

IMAGE_SUFFIXES = (".jpg", ".png")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return make_rows(30, 20, folder=tmp_path_factory.mktemp("store"))


def _splits(rows) -> dict[int, str]:
    """Whole near-duplicate clusters per split (the build refuses a leak)."""
    return assign_splits(rows, ReleaseConfig(name="once", version="1", seed=5), frozenset())


def _build(rows, out: Path, **options) -> dict:
    config = ReleaseConfig(name="once", version="1", seed=5, shard_size=4, **options)
    return build_release(rows, _splits(rows), config, out, platform_version="t",
                         extra_config={})


def loose_images(root: Path) -> dict[str, bytes]:
    """Image files outside the shards, by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.suffix in IMAGE_SUFFIXES}


def shard_members(root: Path) -> list[tuple[str, str, bytes]]:
    """(shard, member name, bytes) of every member of every shard, in file order."""
    out = []
    for shard in sorted((root / "webdataset").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar.getmembers():
                out.append((shard.name, m.name, tar.extractfile(m).read()))
    return out


@pytest.mark.parametrize("images", ["copy", "link"])
def test_every_format_at_once_stores_each_image_once_as_a_file(rows, tmp_path, images):
    out = tmp_path / "all"
    manifest = _build(rows, out, images=images)  # official, parquet, webdataset, csv
    files = loose_images(out)
    assert len(files) == len(rows) == manifest["counts"]["image_files"]
    assert sorted(hashlib.sha256(b).hexdigest() for b in files.values()) == sorted(
        r.sha256 for r in rows)
    assert sum(map(len, files.values())) == sum(os.path.getsize(r.file) for r in rows)
    assert all(p.startswith("HumanBeauty/") for p in files)
    members = shard_members(out)
    assert {name.rsplit(".", 1)[1] for _s, name, _b in members} == {"json"}  # no 2nd copy
    assert len(members) == len(rows)


def test_webdataset_alone_holds_the_images_in_its_shards_and_nowhere_else(rows, tmp_path):
    out = tmp_path / "wds"
    manifest = _build(rows, out, formats=("webdataset",))
    assert loose_images(out) == {} and manifest["counts"]["image_files"] == 0
    jpgs = [(s, n, b) for s, n, b in shard_members(out) if n.endswith(".jpg")]
    assert sorted(hashlib.sha256(b).hexdigest() for _s, _n, b in jpgs) == sorted(
        r.sha256 for r in rows)
    image_bytes = sum(len(b) for _s, _n, b in jpgs)
    assert image_bytes == sum(os.path.getsize(r.file) for r in rows)
    # Each sample's path names the member that holds its image.
    for shard, name, data in shard_members(out):
        if name.endswith(".json"):
            assert json.loads(data)["path"] == (
                f"webdataset/{shard}#{name.removesuffix('.json')}.jpg")


def shard_order(root: Path) -> list[int]:
    return [json.loads(b)["image_id"] for _s, n, b in shard_members(root)
            if n.endswith(".json")]


def test_samples_are_shuffled_into_shards_the_same_on_every_rebuild(rows, tmp_path):
    _build(rows, tmp_path / "a", formats=("webdataset",), images="none")
    _build(rows, tmp_path / "b", formats=("webdataset",), images="none")
    a, b = shard_order(tmp_path / "a"), shard_order(tmp_path / "b")
    assert a == b
    for x, y in zip(sorted((tmp_path / "a").rglob("*.tar")),
                    sorted((tmp_path / "b").rglob("*.tar")), strict=True):
        assert x.read_bytes() == y.read_bytes()
    splits = _splits(rows)
    for split in ("train", "val", "test"):
        in_split = [i for i in a if splits[i] == split]
        # every image once, but not in the split's (row) order
        assert sorted(in_split) == sorted(i for i, s in splits.items() if s == split)
        if len(in_split) > 8:  # more than two shards: they hold no runs of the row order
            assert in_split != sorted(in_split)
    assert len([i for i in a if splits[i] == "train"]) > 8
    config = ReleaseConfig(name="once", version="1", seed=6, shard_size=4,
                           formats=("webdataset",), images="none")
    build_release(rows, splits, config, tmp_path / "c", platform_version="t", extra_config={})
    assert shard_order(tmp_path / "c") != a  # another seed, another shuffle
    assert sorted(shard_order(tmp_path / "c")) == sorted(a)


def test_a_shard_holds_at_most_shard_size_samples(rows, tmp_path):
    _build(rows, tmp_path / "s", formats=("webdataset",), images="none")
    splits = _splits(rows)
    for split in ("train", "val", "test"):
        shards = sorted((tmp_path / "s" / "webdataset").glob(f"{split}-*.tar"))
        n = sum(s == split for s in splits.values())
        assert len(shards) == -(-n // 4)
        sizes = []
        for shard in shards:
            with tarfile.open(shard) as tar:
                sizes.append(len(tar.getmembers()))
        assert sizes[:-1] == [4] * (len(shards) - 1) and 1 <= sizes[-1] <= 4


def test_a_resized_release_still_stores_each_image_once(rows, tmp_path):
    big = [replace(r, width=400, height=300) for r in rows[:3]]  # claims a large side
    manifest = _build(big, tmp_path / "r", formats=("parquet", "webdataset"), max_side=20)
    assert len(loose_images(tmp_path / "r")) == 3 == manifest["counts"]["image_files"]
    assert all(n.endswith(".json") for _s, n, _b in shard_members(tmp_path / "r"))
