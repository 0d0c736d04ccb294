"""Training reads a release from a bucket by its ``s3://`` URL (issue #16): the WebDataset shards
streamed from a real S3 server (moto, over HTTP), the same samples in the same order as from
the local folder, nothing copied to disk, and a missing or corrupt shard named in the error."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

import boto3
import pytest

from modeling.hae.errors import ReleaseError
from modeling.hae.shards import BucketStore, iter_samples, open_store, split_shards
from modeling.hae.train import main as train_main
from tests.modeling_core.test_torchrun import shard_release

PREFIX = "releases/tiny-1"


@pytest.fixture
def bucket(s3_server, monkeypatch):
    """A fresh bucket on the moto server, the AWS variables pointing at it (as a training box
    would have them), and its client."""
    env = {"AWS_S3_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "test-key",
           "AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_S3_REGION_NAME": "us-east-1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="test-key",
                          aws_secret_access_key="test-secret", region_name="us-east-1")
    name = f"hb-train-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name, client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)


@pytest.fixture
def uploaded(bucket, tmp_path):
    """A tiny release (images inside its shards) in a folder and under PREFIX in the bucket."""
    name, client = bucket
    release = shard_release(tmp_path / "tiny-1", {"train": 12, "val": 4, "test": 4},
                            shard_size=4)
    for path in sorted(release.rglob("*")):
        if path.is_file():
            key = f"{PREFIX}/{path.relative_to(release).as_posix()}"
            client.put_object(Bucket=name, Key=key, Body=path.read_bytes())
    return release, f"s3://{name}/{PREFIX}/", client, name


def _train(data: str, run: Path, *extra: str) -> None:
    config = run.parent / f"{run.name}.toml"
    config.write_text("batch_size = 2\nmax_steps = 4\nmetavoter_steps = 2\nlog_every = 1\n"
                      "shuffle_buffer = 4\n" + "".join(f"{line}\n" for line in extra))
    args = ["--data", data, "--out", str(run), "--backbone", "tiny", "--config", str(config),
            "--stream", "--trace"]
    assert train_main(args) == 0


def _trace(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "trace" / "rank-0.jsonl").read_text().splitlines()]


def test_training_from_the_bucket_reads_the_same_samples_as_from_the_folder(
    uploaded, tmp_path, monkeypatch
):
    release, url, _client, _name = uploaded
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    local = {s.image_name: (image, s) for image, s in iter_samples(
        split_shards(open_store(release), "train"))}
    store = open_store(url)
    assert isinstance(store, BucketStore) and store.prefix == f"{PREFIX}/"
    remote = [(image, s) for image, s in iter_samples(split_shards(store, "train"))]
    assert [s.image_name for _i, s in remote] == list(local)  # same order too
    for image, sample in remote:
        assert (image, sample) == local[sample.image_name]  # bytes and labels alike

    # One DataLoader worker (it opens its own connection to the bucket), in both runs: the
    # prompts' random choices are drawn where the batches are made.
    _train(str(release), tmp_path / "from-folder", "num_workers = 1")
    _train(url, tmp_path / "from-bucket", "num_workers = 1")
    folder, bucket = _trace(tmp_path / "from-folder"), _trace(tmp_path / "from-bucket")
    assert [r["names"] for r in bucket if "names" in r] == [
        r["names"] for r in folder if "names" in r]
    assert sum(len(r["names"]) for r in bucket if r.get("stage") == "heads") == 8
    assert bucket[-1]["weights_sha256"] == folder[-1]["weights_sha256"]
    report = json.loads((tmp_path / "from-bucket" / "eval_test.json").read_text())
    assert report["n_images"] == 4 and report["data"] == url

    # Streamed: no shard, image or temporary file was written anywhere on this machine.
    assert not list(scratch.iterdir())
    written = [p for p in (tmp_path / "from-bucket").rglob("*")
               if p.suffix in (".tar", ".jpg", ".png")]
    assert written == []


def test_a_missing_or_corrupt_shard_in_the_bucket_is_named(uploaded, tmp_path):
    _release, url, client, name = uploaded
    key = f"{PREFIX}/webdataset/train-000001.tar"
    shard_url = f"{url}webdataset/train-000001.tar"
    data = bytearray(client.get_object(Bucket=name, Key=key)["Body"].read())

    data[700] ^= 0xFF
    client.put_object(Bucket=name, Key=key, Body=bytes(data))
    with pytest.raises(ReleaseError, match=f"shard {shard_url} is corrupt"):
        list(iter_samples(split_shards(open_store(url), "train")))

    client.put_object(Bucket=name, Key=key, Body=b"not a tar file at all" * 40)
    with pytest.raises(ReleaseError, match=f"shard {shard_url} cannot be read"):
        list(iter_samples(split_shards(open_store(url), "train")))

    client.delete_object(Bucket=name, Key=key)
    with pytest.raises(SystemExit, match=f"{shard_url} is missing"):
        _train(url, tmp_path / "run")


def test_a_bucket_url_that_holds_no_release_is_a_clear_error(uploaded, tmp_path):
    _release, _url, _client, name = uploaded
    with pytest.raises(SystemExit, match=rf"s3://{name}/elsewhere/manifest\.json is missing"):
        _train(f"s3://{name}/elsewhere/", tmp_path / "run")
    with pytest.raises(ReleaseError, match="names no bucket"):
        open_store("s3:///prefix/")
