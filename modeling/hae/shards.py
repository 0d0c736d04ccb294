"""Stream a release's WebDataset shards, from a local folder or an S3-compatible bucket.

The release root is a folder path or ``s3://bucket/prefix/``; a bucket is reached with the
standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_S3_ENDPOINT_URL``
for MinIO or another S3-compatible server, ``AWS_S3_REGION_NAME`` / ``AWS_DEFAULT_REGION``).
Nothing is copied to disk: each shard is one ``get_object`` read as a tar stream (``tarfile``
mode ``"r|"``), checked against the sha256 and size the release's ``manifest.json`` lists.

Which shards a split has, and how many samples each holds, come from the manifest (the release
cuts a split into shards of ``shard_size``, the last one shorter). A sample's labels come from
its ``json`` member (``modeling.release.records.wds_record``); its image from its ``jpg``
member, or, where the shards hold no images (the release also has a format that names loose
files), from the file its ``path`` names, read from the same place.

Shards are split across processes (each rank its own shards, every sample once per epoch) and
across DataLoader workers; :class:`ShardStream` yields whole collated batches, forever.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import torch
from torch.utils.data import IterableDataset, get_worker_info

from humanbeauty.standard import DIMENSIONS, StandardError, score_to_level, validate_scores

from .data import Sample, _score
from .errors import ReleaseError

BUCKET_SCHEME = "s3://"
MANIFEST = "manifest.json"
IMAGE_KEY = "jpg"  # the release stores every image under this key, whatever its encoding
_CHUNK = 1 << 20


def is_bucket_url(data: str | os.PathLike) -> bool:
    return str(data).startswith(BUCKET_SCHEME)


class Store(Protocol):
    """Where a release's files are: opened by path relative to the release root."""

    url: str

    def where(self, rel: str) -> str: ...

    def open(self, rel: str) -> BinaryIO: ...

    def read(self, rel: str) -> bytes: ...


@dataclass(frozen=True)
class LocalStore:
    root: Path

    @property
    def url(self) -> str:
        return str(self.root)

    def where(self, rel: str) -> str:
        return str(self.root / rel)

    def open(self, rel: str) -> BinaryIO:
        try:
            return (self.root / rel).open("rb")
        except FileNotFoundError:
            raise ReleaseError(f"{self.where(rel)} is missing") from None
        except OSError as exc:
            raise ReleaseError(f"cannot read {self.where(rel)}: {exc}") from None

    def read(self, rel: str) -> bytes:
        with self.open(rel) as fh:
            return fh.read()


@dataclass
class BucketStore:
    """A release under ``s3://bucket/prefix/``. The boto3 client is made in each process that
    reads (DataLoader workers included): clients are not shared across a fork."""

    bucket: str
    prefix: str  # "" or ending in "/"
    _client: Any = field(default=None, repr=False, compare=False)
    _pid: int = field(default=0, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"{BUCKET_SCHEME}{self.bucket}/{self.prefix}"

    def where(self, rel: str) -> str:
        return self.url + rel

    def __getstate__(self) -> dict:
        return {"bucket": self.bucket, "prefix": self.prefix, "_client": None, "_pid": 0}

    @property
    def client(self):
        if self._client is None or self._pid != os.getpid():
            import boto3

            env = os.environ
            self._client = boto3.client(
                "s3",
                endpoint_url=env.get("AWS_S3_ENDPOINT_URL") or None,
                region_name=env.get("AWS_S3_REGION_NAME") or env.get("AWS_DEFAULT_REGION"),
            )
            self._pid = os.getpid()
        return self._client

    def open(self, rel: str) -> BinaryIO:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + rel)["Body"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ReleaseError(f"{self.where(rel)} is missing") from None
            raise ReleaseError(f"cannot read {self.where(rel)}: {code or exc}") from None
        except BotoCoreError as exc:
            raise ReleaseError(f"cannot read {self.where(rel)}: {exc}") from None

    def read(self, rel: str) -> bytes:
        body = self.open(rel)
        try:
            return body.read()
        except Exception as exc:  # a connection lost mid-read: urllib3 / botocore errors
            raise ReleaseError(f"cannot read {self.where(rel)}: {exc}") from None
        finally:
            body.close()


def open_store(data: str | os.PathLike) -> Store:
    """The store of a release root: ``s3://bucket/prefix/`` or a local folder."""
    text = str(data)
    if is_bucket_url(text):
        bucket, _, prefix = text[len(BUCKET_SCHEME):].partition("/")
        if not bucket:
            raise ReleaseError(f"'{text}' names no bucket: give s3://BUCKET/PREFIX/")
        prefix = prefix.strip("/")
        return BucketStore(bucket, prefix + "/" if prefix else "")
    root = Path(text).expanduser()
    if not root.is_dir():
        raise ReleaseError(f"'{root}' is not a folder (a release root)")
    return LocalStore(root)


# --- the manifest: which shards, how many samples each ----------------------------------------


@dataclass(frozen=True)
class Shard:
    rel: str  # webdataset/{split}-NNNNNN.tar
    count: int  # samples it holds
    sha256: str
    size: int


@dataclass(frozen=True)
class ShardSet:
    """Some shards of one split of a release (a split, or part of one)."""

    store: Store
    split: str
    shards: tuple[Shard, ...]

    def __len__(self) -> int:
        return sum(s.count for s in self.shards)

    def names(self) -> list[str]:
        return [s.rel for s in self.shards]


def read_manifest(store: Store) -> dict:
    try:
        text = store.read(MANIFEST)
    except ReleaseError as exc:
        raise ReleaseError(
            f"{exc}: a release's shards are listed in its {MANIFEST} (the release build writes "
            "it); is this the release root?"
        ) from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReleaseError(f"{store.where(MANIFEST)} is not JSON: {exc}") from None


def split_shards(store: Store, split: str, manifest: dict | None = None) -> ShardSet:
    """The shards of ``split`` as the manifest lists them (an empty set: the split is empty)."""
    manifest = read_manifest(store) if manifest is None else manifest
    where = store.where(MANIFEST)
    try:
        shard_size = int(manifest["config"]["shard_size"])
        formats = manifest["config"]["formats"]
        n = int(manifest["counts"]["splits"].get(split, 0))
        files = manifest["files"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ReleaseError(f"{where} lacks {exc}: not a release manifest") from None
    if "webdataset" not in formats:
        raise ReleaseError(
            f"the release at {store.url} has no WebDataset shards (formats: "
            f"{', '.join(formats)}): build it with the webdataset format to stream it"
        )
    pattern = re.compile(rf"webdataset/{re.escape(split)}-(\d{{6}})\.tar")
    found = sorted(
        (int(m.group(1)), f) for f in files if (m := pattern.fullmatch(str(f.get("path", ""))))
    )
    expected = math.ceil(n / shard_size)
    if [i for i, _ in found] != list(range(expected)):
        raise ReleaseError(
            f"{where} lists {len(found)} {split} shard(s) for {n} samples of {shard_size} per "
            f"shard (expected {expected}, numbered from 000000)"
        )
    shards = tuple(
        Shard(f["path"], min(shard_size, n - i * shard_size), str(f["sha256"]), int(f["size"]))
        for i, f in found
    )
    return ShardSet(store, split, shards)


# --- reading a shard --------------------------------------------------------------------------


class _Hashing:
    """A read-only stream that hashes what passes through (tarfile reads the shard by it)."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n) if n is not None and n >= 0 else self.raw.read()
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while chunk := self.read(_CHUNK):
            del chunk


@dataclass
class RawSample:
    key: str
    members: dict[str, bytes]  # extension -> bytes
    shard: str  # where it came from, for messages


def read_shard(store: Store, shard: Shard) -> Iterator[RawSample]:
    """The samples of one shard, in file order, streamed (one member in memory at a time).

    The stream is checked to its last byte against the manifest's sha256 and size, and the
    sample count against the manifest's, so a corrupt, truncated or replaced shard stops
    training with an error that names it (tar's stream reader alone ends quietly at a bad
    header)."""
    where = store.where(shard.rel)
    raw = store.open(shard.rel)
    stream = _Hashing(raw)
    count = 0
    current: RawSample | None = None
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                key, dot, ext = base.partition(".")
                if not dot:
                    raise ReleaseError(f"shard {where}: member {member.name} has no extension")
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                if current is not None and current.key != key:
                    count += 1
                    yield current
                    current = None
                if current is None:
                    current = RawSample(key, {}, where)
                current.members[ext] = data
        stream.drain()
    except ReleaseError:
        raise
    except Exception as exc:  # tarfile, zlib, socket, urllib3 and botocore errors alike
        raise ReleaseError(f"shard {where} cannot be read: {type(exc).__name__}: {exc}") from None
    finally:
        raw.close()
    if current is not None:
        count += 1
        yield current
    if stream.size != shard.size or stream.sha.hexdigest() != shard.sha256:
        raise ReleaseError(
            f"shard {where} is corrupt: {stream.size} bytes with sha256 "
            f"{stream.sha.hexdigest()[:12]}..., the manifest says {shard.size} bytes with "
            f"{shard.sha256[:12]}..."
        )
    if count != shard.count:
        raise ReleaseError(f"shard {where} holds {count} samples, the manifest says {shard.count}")


def record_sample(record: dict, where: str) -> Sample:
    """A :class:`data.Sample` from a shard's json (``records.wds_record``): the scores where
    ``score_mask`` is true (the others are not rated), or the overall score alone."""
    try:
        path, is_expert = str(record["path"]), bool(record["is_expert"])
        source = str(record.get("source") or "")
        if is_expert:
            values, mask = record["scores"], record["score_mask"]
            if len(values) != len(DIMENSIONS) or len(mask) != len(DIMENSIONS):
                raise ReleaseError(f"{where}: scores and score_mask need {len(DIMENSIONS)} values")
            given = {d.key: v if ok else None
                     for d, v, ok in zip(DIMENSIONS, values, mask, strict=True)}
            try:
                clean = validate_scores(given)
            except StandardError as exc:
                raise ReleaseError(f"{where}: {exc}") from None
            scores = tuple(clean.get(d.key) for d in DIMENSIONS)
            if scores[-1] is None:
                raise ReleaseError(f"{where}: a 12-dimension sample needs its comprehensive score")
        else:
            scores = (None,) * (len(DIMENSIONS) - 1) + (_score(record["overall"], where),)
    except (KeyError, TypeError) as exc:
        raise ReleaseError(f"{where}: bad sample json ({exc!r})") from None
    level = score_to_level(scores[-1])  # type: ignore[arg-type]
    return Sample(Path(path), path, source, scores, is_expert, level)


def decode_raw(store: Store, raw: RawSample) -> tuple[bytes, Sample]:
    """(the image's bytes, its Sample) of a raw sample."""
    where = f"shard {raw.shard}: sample {raw.key}"
    if "json" not in raw.members:
        raise ReleaseError(f"{where} has no json member (its labels)")
    try:
        record = json.loads(raw.members["json"])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReleaseError(f"{where}: its json is not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ReleaseError(f"{where}: its json is not an object")
    sample = record_sample(record, where)
    image = raw.members.get(IMAGE_KEY)
    if image is None:  # the shards hold labels only: the image is the loose file it names
        image = store.read(sample.image_name)
    return image, sample


def open_bytes(data: bytes, where: str):
    from .loading import read_rgb

    try:
        return read_rgb(data)
    except ReleaseError as exc:
        raise ReleaseError(f"{where}: {exc}") from None


def iter_samples(shards: ShardSet) -> Iterator[tuple[bytes, Sample]]:
    """Every sample of ``shards`` in order: (image bytes, Sample)."""
    for shard in shards.shards:
        for raw in read_shard(shards.store, shard):
            yield decode_raw(shards.store, raw)


# --- across processes and workers -------------------------------------------------------------


def epoch_plan(n_shards: int, seed: int, epoch: int, world: int) -> list[list[int]]:
    """Per rank, the shard indices it reads in ``epoch``: a seeded permutation dealt out in
    turn, so each shard goes to exactly one rank."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n_shards, generator=gen).tolist()
    return [order[r::world] for r in range(world)]


def check_world(shards: ShardSet, world: int) -> None:
    if len(shards.shards) < world:
        raise ReleaseError(
            f"the {shards.split} split has {len(shards.shards)} shard(s) for {world} "
            "processes: each process reads its own shards; rebuild the release with a smaller "
            "shard_size, or run fewer processes"
        )


class ShardStream(IterableDataset):
    """Collated batches of ``batch_size`` from one rank's shards, epoch after epoch, forever.

    Per epoch the shards are dealt out to the ranks (:func:`epoch_plan`); a rank whose shards
    hold fewer samples than the fullest rank's repeats its first ones, so every rank takes the
    same number of samples per epoch (as ``DistributedSampler`` pads). Within a rank, worker
    ``w`` of ``W`` reads the rank's shards ``w, w + W, ...`` (workers never outnumber the rank's
    shards: :meth:`workers`), shuffles with a seeded buffer, and batches on its own; the
    DataLoader takes the workers' batches in turn, so batch ``i`` comes from worker ``i % W``
    and a resumed run skips the ``skip`` batches it saw without decoding them."""

    def __init__(
        self,
        shards: ShardSet,
        collate: Callable[[list], Any],
        *,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        skip: int = 0,
        shuffle_buffer: int = 0,
    ):
        check_world(shards, world)
        self.shards, self.collate = shards, collate
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.skip, self.shuffle_buffer = skip, shuffle_buffer

    def quota(self, epoch: int) -> int:
        """Samples each rank takes in ``epoch``: what the fullest rank's shards hold."""
        counts = [s.count for s in self.shards.shards]
        plan = epoch_plan(len(counts), self.seed, epoch, self.world)
        return max(sum(counts[i] for i in mine) for mine in plan)

    def workers(self, wanted: int) -> int:
        """DataLoader workers to use: no more than this rank's shards."""
        return min(wanted, len(range(self.rank, len(self.shards.shards), self.world)))

    def epoch_samples(self, epoch: int, worker: int, n_workers: int) -> Iterator[RawSample]:
        """Worker ``worker``'s raw samples of ``epoch`` (worker 0 adds the rank's padding)."""
        shards = self.shards.shards
        plan = epoch_plan(len(shards), self.seed, epoch, self.world)
        mine = [shards[i] for i in plan[self.rank]]
        for shard in mine[worker::n_workers]:
            yield from read_shard(self.shards.store, shard)
        if worker == 0:
            pad = self.quota(epoch) - sum(s.count for s in mine)
            while pad > 0:
                for shard in mine:
                    for raw in read_shard(self.shards.store, shard):
                        if pad == 0:
                            break
                        pad -= 1
                        yield raw
                    if pad == 0:
                        break

    def raw_stream(self, worker: int, n_workers: int) -> Iterator[RawSample]:
        epoch = 0
        while True:
            items = self.epoch_samples(epoch, worker, n_workers)
            if self.shuffle_buffer > 1:
                rng = random.Random(f"{self.seed}:{epoch}:{self.rank}:{worker}")
                items = _shuffled(items, self.shuffle_buffer, rng)
            yield from items
            epoch += 1

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if worker >= self.workers(n_workers):
            raise ReleaseError(
                f"DataLoader worker {worker} has no shard of its own: use ShardStream.workers()"
            )
        mine_skipped = len(range(worker, self.skip, n_workers))  # my batches already seen
        stream = self.raw_stream(worker, n_workers)
        for _ in range(mine_skipped * self.batch_size):
            next(stream)
        store = self.shards.store
        while True:
            items = []
            for raw in (next(stream) for _ in range(self.batch_size)):
                image, sample = decode_raw(store, raw)
                items.append((open_bytes(image, f"shard {raw.shard}: sample {raw.key}"), sample))
            yield self.collate(items)


def _shuffled(items: Iterator[RawSample], size: int, rng: random.Random) -> Iterator[RawSample]:
    buf: list[RawSample] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        i = rng.randrange(size)
        yield buf[i]
        buf[i] = item
    rng.shuffle(buf)
    yield from buf


# --- who learns from what, streamed -----------------------------------------------------------


@dataclass(frozen=True)
class StreamedTrainingData:
    """`data.TrainingData` for a streamed release: whole shards instead of image lists. The
    MetaVoter's shards are the val split's, or, where the release has none, a seeded choice of
    train shards that the heads never read."""

    heads: ShardSet
    voter: ShardSet
    voter_from: str  # "val" or "train-holdout"

    def record(self) -> dict:
        return {
            "fitted_on": self.voter_from,
            "heads_images": len(self.heads),
            "voter_count": len(self.voter),
            "voter_shards": self.voter.names(),
        }


def streamed_training_data(
    data: str | os.PathLike, *, seed: int, world: int = 1, holdout: float = 0.1
) -> StreamedTrainingData:
    """The heads read the train split's shards; the MetaVoter the val split's, or a seeded
    ``holdout`` share of the train shards (at least one per process, as each process reads its
    own shards)."""
    store = open_store(data)
    manifest = read_manifest(store)
    train = split_shards(store, "train", manifest)
    if not train.shards:
        raise ReleaseError(f"the release at {store.url} has an empty train split")
    val = split_shards(store, "val", manifest) if "val" in manifest["counts"]["splits"] else None
    if val is not None and val.shards:
        check_world(train, world)
        check_world(val, world)
        return StreamedTrainingData(train, val, "val")
    n = len(train.shards)
    if n < 2 * world:
        raise ReleaseError(
            f"the release at {store.url} has no validation split and {n} train shard(s): the "
            f"MetaVoter needs shards the heads do not read, at least {world} for the heads and "
            f"{world} held out with {world} process(es) (add a val split, or rebuild with a "
            "smaller shard_size)"
        )
    k = min(n - world, max(world, round(holdout * n)))
    ranked = sorted(
        train.shards, key=lambda s: hashlib.sha256(f"{seed}:{s.rel}".encode()).hexdigest()
    )
    held = {s.rel for s in ranked[:k]}
    heads = tuple(s for s in train.shards if s.rel not in held)
    voter = tuple(s for s in train.shards if s.rel in held)
    return StreamedTrainingData(
        ShardSet(store, "train", heads), ShardSet(store, "train", voter), "train-holdout"
    )
