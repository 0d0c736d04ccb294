"""Distributed training for real: ``torchrun --nproc_per_node=2`` (gloo, CPU) on a tiny release,
its WebDataset shards streamed from the folder. Each rank reads its own shards (disjoint, and
together every training sample once per epoch), gradients are all-reduced (both ranks end with
the same weights), rank 0 alone writes the run's outputs, and a step takes world x batch
samples. Also: the shard stream itself (shards dealt out to ranks and workers, padding,
resume) and the errors of a bad shard."""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

from modeling.hae.data import read_parquet_split
from modeling.hae.errors import ReleaseError
from modeling.hae.shards import (
    ShardStream,
    iter_samples,
    open_store,
    split_shards,
    streamed_training_data,
)
from modeling.hae.synthetic import Factors, render

REPO = Path(__file__).resolve().parents[2]


def shard_release(
    out: Path,
    counts: dict[str, int],
    *,
    shard_size: int,
    formats: tuple[str, ...] = ("webdataset",),
    seed: int = 0,
) -> Path:
    """A tiny release built by the platform's own builder (``modeling.release``): synthetic
    images whose scores follow from their look, half of them 12-dimension ones; with only the
    webdataset format, the images live inside the shards."""
    from modeling.release import ReleaseConfig, ReleaseRow, build_release

    rng = random.Random(seed)
    store = out.parent / f"{out.name}-store"
    store.mkdir(parents=True)
    rows, splits = [], {}
    image_id = 0
    for split, n in counts.items():
        for _ in range(n):
            image_id += 1
            f = Factors(*(rng.random() for _ in range(4)))
            path = store / f"{image_id}.png"
            render(f, (48, 40), rng).save(path)
            expert = image_id % 2 == 0
            rows.append(ReleaseRow(
                image_id=image_id, file=str(path),
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(), phash=None, cluster=None,
                source="synthetic", width=48, height=40, format="PNG",
                overall=round(f.overall(), 6),
                scores=tuple(f.dimensions()) if expert else None,
            ))
            splits[image_id] = split
    total = sum(counts.values())
    config = ReleaseConfig(
        name="tiny", version="1", seed=seed, formats=formats, shard_size=shard_size,
        split={s: n / total for s, n in counts.items()},
    )
    build_release(rows, splits, config, out, platform_version="test", extra_config={})
    return out


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """16 train samples in 4 shards, 8 val in 2, 4 test in 1; images inside the shards."""
    out = tmp_path_factory.mktemp("wds") / "tiny-1"
    return shard_release(out, {"train": 16, "val": 8, "test": 4}, shard_size=4)


def _split_names(release: Path, split: str) -> set[str]:
    return {s.image_name for _b, s in iter_samples(split_shards(open_store(release), split))}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _trace(run: Path, rank: int) -> list[dict]:
    path = run / "trace" / f"rank-{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _names(records: list[dict], stage: str) -> list[str]:
    return [n for r in records if r.get("stage") == stage for n in r["names"]]


def test_torchrun_two_processes_share_the_data_and_end_with_the_same_weights(release, tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "run.toml"
    # 16 train samples, 2 ranks x batch 2: 4 steps make one epoch.
    config.write_text(
        "batch_size = 2\nmax_steps = 4\nmetavoter_steps = 2\nsave_every = 2\nlog_every = 1\n"
        "num_workers = 2\nshuffle_buffer = 3\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        f"--master_port={_free_port()}", "-m", "modeling.hae.train",
        "--data", str(release), "--out", str(run), "--backbone", "tiny", "--config", str(config),
        "--stream", "--trace",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    ranks = [_trace(run, 0), _trace(run, 1)]
    train, val = _split_names(release, "train"), _split_names(release, "val")
    seen = [_names(r, "heads") for r in ranks]
    # Each rank: 4 micro-batches of 2 distinct samples; together, every training sample once.
    assert [len(s) for s in seen] == [8, 8]
    assert set(seen[0]).isdisjoint(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(train)
    # Each rank read whole shards of its own.
    shards = [{n.split("#")[0] for n in s} for s in seen]
    assert len(shards[0]) == len(shards[1]) == 2 and shards[0].isdisjoint(shards[1])
    # The MetaVoter read the val split, each rank its own shard, never a training image.
    voter = [_names(r, "metavoter") for r in ranks]
    assert set(voter[0]) | set(voter[1]) <= val and set(voter[0]).isdisjoint(voter[1])
    # Gradients were all-reduced: the same weights on both ranks, which trained.
    finals = [next(r for r in rk if r.get("event") == "final") for rk in ranks]
    assert finals[0]["world"] == finals[1]["world"] == 2
    assert finals[0]["weights_sha256"] == finals[1]["weights_sha256"]

    # Rank 0 alone wrote the outputs: one metrics log, one record per step, each step of
    # world x per-rank batch samples.
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    heads = [r for r in log if r.get("stage") == "heads"]
    assert [r["step"] for r in heads] == [1, 2, 3, 4]
    assert {r["samples"] for r in heads} == {4}
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-0000002", "step-0000004"]
    assert json.loads((run / "final" / "metavoter_data.json").read_text())["fitted_on"] == "val"
    report = json.loads((run / "eval_test.json").read_text())
    assert report["n_images"] == 4  # the test shard, streamed and scored by rank 0


def _batch_names(items: list) -> list[str]:
    return [sample.image_name for _image, sample in items]


def _as_is(batch):
    return batch


def _flat(batches: list[list[str]]) -> list[str]:
    return [name for batch in batches for name in batch]


def _stream(shards, rank: int, workers: int, *, batch_size: int = 2, skip: int = 0,
            batches: int = 6) -> list[list[str]]:
    """The first ``batches`` batches (sample names) of rank ``rank`` of 2."""
    stream = ShardStream(shards, _batch_names, batch_size=batch_size, seed=1, rank=rank,
                         world=2, skip=skip)
    loader = DataLoader(stream, batch_size=None, collate_fn=_as_is,
                        num_workers=stream.workers(workers))
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == batches:
            return out
    raise AssertionError("the stream ended")


def test_shards_are_dealt_to_ranks_padded_and_resumable(tmp_path):
    # 10 samples in shards of 3, 3, 3, 1: two ranks get unequal shards; the short one pads.
    out = shard_release(tmp_path / "r", {"train": 10, "test": 2}, shard_size=3)
    shards = split_shards(open_store(out), "train")
    assert [s.count for s in shards.shards] == [3, 3, 3, 1]
    epoch = [_flat(_stream(shards, r, 1, batches=3)) for r in (0, 1)]  # quota: 6 per rank
    every = {s.image_name for _b, s in iter_samples(shards)}
    assert set(epoch[0]) | set(epoch[1]) == every
    assert set(epoch[0]).isdisjoint(epoch[1])
    short = 0 if len(set(epoch[0])) == 4 else 1  # the rank with shards of 3 + 1 repeats 2
    assert len(set(epoch[short])) == 4 and len(set(epoch[1 - short])) == 6
    # A resumed stream continues with the very batches it had not seen, workers or not.
    for workers in (1, 2):
        full = _stream(shards, 0, workers)
        assert _stream(shards, 0, workers, skip=4, batches=2) == full[4:]


def test_workers_split_a_ranks_shards_between_them(tmp_path):
    # 4 shards of 3: each rank reads 2 per epoch, each of its 2 workers one (a batch).
    out = shard_release(tmp_path / "r", {"train": 12, "test": 2}, shard_size=3)
    shards = split_shards(open_store(out), "train")
    for rank in (0, 1):
        one = _stream(shards, rank, 1, batch_size=3, batches=4)  # two epochs
        two = _stream(shards, rank, 2, batch_size=3, batches=4)
        assert Counter(_flat(two)) == Counter(_flat(one))
        for batches in (one, two):  # batch by batch, a whole shard
            assert all(len({n.split("#")[0] for n in b}) == 1 for b in batches)
        assert {n.split("#")[0] for n in _flat(two[0:2])} == {
            n.split("#")[0] for n in _flat(one[0:2])}  # epoch 0: the same two shards


def test_a_corrupt_or_missing_shard_is_an_error_that_names_it(tmp_path):
    out = shard_release(tmp_path / "r", {"train": 6, "test": 2}, shard_size=3)
    store = open_store(out)
    shard = out / "webdataset" / "train-000001.tar"
    data = bytearray(shard.read_bytes())
    data[600] ^= 0xFF  # inside the first member's data
    shard.write_bytes(bytes(data))
    with pytest.raises(ReleaseError, match=r"train-000001\.tar is corrupt"):
        list(iter_samples(split_shards(store, "train")))

    shard.write_bytes(bytes(data[:700]))  # cut short mid-member
    with pytest.raises(ReleaseError, match=r"shard .*train-000001\.tar cannot be read"):
        list(iter_samples(split_shards(store, "train")))

    shard.unlink()
    with pytest.raises(ReleaseError, match=r"train-000001\.tar is missing"):
        list(iter_samples(split_shards(store, "train")))


def test_streamed_labels_are_the_releases_and_holdout_is_whole_shards(tmp_path):
    # With Parquet too, the shards hold the labels and the images are loose files they name.
    both = shard_release(tmp_path / "both", {"train": 8, "test": 2}, shard_size=3,
                         formats=("webdataset", "parquet"))
    streamed = {s.image_name: (image, s) for image, s in iter_samples(
        split_shards(open_store(both), "train"))}
    parquet = {s.image_name: s for s in read_parquet_split(both, "train")}
    assert streamed.keys() == parquet.keys() and len(parquet) == 8
    for name, sample in parquet.items():
        image, streamed_sample = streamed[name]
        assert streamed_sample.scores == pytest.approx(sample.scores)
        assert streamed_sample.is_expert == sample.is_expert
        assert image == sample.image_path.read_bytes()
    # No val split: whole train shards are held out for the MetaVoter, seeded.
    out = shard_release(tmp_path / "noval", {"train": 16, "test": 2}, shard_size=2)
    data = streamed_training_data(out, seed=3, world=2)
    assert data.voter_from == "train-holdout" and len(data.voter.shards) == 2
    assert set(data.voter.names()).isdisjoint(data.heads.names())
    assert len(data.heads) + len(data.voter) == 16
    with pytest.raises(ReleaseError, match="MetaVoter needs shards the heads do not read"):
        streamed_training_data(out, seed=3, world=5)


def test_a_release_without_shards_cannot_stream(tmp_path):
    out = shard_release(tmp_path / "r", {"train": 4, "test": 2}, shard_size=2,
                        formats=("parquet",))
    with pytest.raises(ReleaseError, match="has no WebDataset shards"):
        split_shards(open_store(out), "train")
    with pytest.raises(ReleaseError, match=r"manifest\.json is missing"):
        split_shards(open_store(tmp_path), "train")


def test_member_names_in_a_shard_are_the_release_keys(release):
    # The reader groups members by key: each sample of a shard is a jpg and its json.
    with tarfile.open(release / "webdataset" / "train-000000.tar") as tar:
        exts = Counter(m.name.split(".", 1)[1] for m in tar.getmembers())
    assert exts == {"jpg": 4, "json": 4}


def test_a_resumed_streamed_run_continues_with_the_batches_it_had_not_seen(release, tmp_path):
    from modeling.hae.train import main as train_main

    def run(out: Path, steps: int, *extra: str) -> list[list[str]]:
        config = tmp_path / "run.toml"
        config.write_text("batch_size = 2\nmetavoter_steps = 1\nsave_every = 1\n"
                          "eval_at_end = false\nshuffle_buffer = 3\n")
        args = ["--data", str(release), "--out", str(out), "--backbone", "tiny", "--config",
                str(config), "--stream", "--trace", "--max-steps", str(steps), *extra]
        assert train_main(args) == 0
        return [r["names"] for r in _trace(out, 0) if r.get("stage") == "heads"]

    straight = run(tmp_path / "straight", 10)  # 16 samples, batch 2: past one epoch
    run(tmp_path / "resumed", 3)
    both = run(tmp_path / "resumed", 10, "--resume")
    assert both[3:] == straight[3:] and len(both) == 10
    epoch = [n for names in straight[:8] for n in names]
    assert sorted(epoch) == sorted(_split_names(release, "train"))


def test_lite_refuses_to_stream(release, tmp_path):
    from modeling.hae.train import main as train_main

    args = ["--data", str(release), "--out", str(tmp_path / "run"), "--backbone", "lite",
            "--clip-model", "tiny", "--stream"]
    with pytest.raises(SystemExit, match="does not stream shards"):
        train_main(args)


def test_resume_across_nodes_without_a_shared_run_dir_stops_with_the_reason(release, tmp_path):
    """Two one-process "nodes" (node 0 with RUN_DIR's checkpoints, node 1 with an empty folder
    of its own): they would train different numbers of steps and hang; they stop instead."""
    from modeling.hae.train import main as train_main

    shared, other = tmp_path / "node0-run", tmp_path / "node1-run"
    config = tmp_path / "run.toml"
    config.write_text("batch_size = 2\nmetavoter_steps = 1\neval_at_end = false\n")
    base = ["--data", str(release), "--backbone", "tiny", "--config", str(config), "--stream"]
    assert train_main([*base, "--out", str(shared), "--max-steps", "1"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    port = _free_port()
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
             f"--node_rank={rank}", "--master_addr=127.0.0.1", f"--master_port={port}",
             "-m", "modeling.hae.train", *base, "--out", str(out), "--resume",
             "--max-steps", "3"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank, out in ((0, shared), (1, other))
    ]
    outputs = [node.communicate(timeout=240)[0] for node in nodes]
    assert [node.returncode for node in nodes] != [0, 0]
    assert "--resume across nodes needs RUN_DIR on storage that every node sees" in outputs[0]
    log = [json.loads(line) for line in (shared / "metrics.jsonl").read_text().splitlines()]
    assert not [r for r in log if r.get("event") == "resume"]  # stopped before resuming
    assert not list(other.glob("checkpoints/*"))
