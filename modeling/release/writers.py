"""Streaming writers of the release formats. Each keeps only a batch in memory."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import ReleaseConfig
from .errors import ReleaseDataError
from .files import FileLog, HashedFile
from .records import COLUMN_NAMES, COLUMNS

OFFICIAL_ROOT = "HumanBeauty"
PARTS = {False: "HumanBeauty-58K", True: "HumanBeauty-50K"}
OFFICIAL_SPLITS = ("train", "test")  # always written (maybe empty): the official scripts read them


def image_dir(config: ReleaseConfig, expert: bool) -> str:
    """Where images live, relative to the release directory: inside the official layout when
    that format is built (so the paper's scripts find them), else ``images/``."""
    if "official" in config.formats:
        return f"{OFFICIAL_ROOT}/{PARTS[expert]}/images"
    return "images"


class LineFile:
    """A text file written in chunks through a HashedFile."""

    def __init__(self, log: FileLog, rel: str, chunk: int = 1 << 18):
        self._file = log.open(rel)
        self._buf: list[str] = []
        self._size = 0
        self._chunk = chunk

    def write(self, text: str) -> None:
        self._buf.append(text)
        self._size += len(text)
        if self._size >= self._chunk:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self._file.write("".join(self._buf).encode("utf-8"))
            self._buf.clear()
            self._size = 0

    def close(self) -> None:
        self.flush()
        self._file.close()


class OfficialWriter:
    """``HumanBeauty/HumanBeauty-{58K,50K}/{images/,label.jsonl}`` plus
    ``{train,test}_label.jsonl`` (and ``val_label.jsonl`` when val is configured) at the root.

    A line is ``{"image_name", "source", "score", "text_level", "is_expert": false}`` for an
    overall-only image and ``{"image_name", "source", "score": [12 floats], "is_expert": true}``
    for a 12-dim one (plus ``score_mask`` when a dimension was not applicable, see
    ``records.official_scores``), ``json.dumps`` with default separators as the official
    ``generate_split.py`` writes them. In ``label.jsonl`` image_name is the bare file name; in
    the split files it is relative to ``HumanBeauty/``. A 12-dim image written as an
    overall-only line (``na=overall``) stays in the 50K part, where its file is.
    """

    def __init__(self, log: FileLog, config: ReleaseConfig):
        self.parts = {
            e: LineFile(log, f"{OFFICIAL_ROOT}/{p}/label.jsonl") for e, p in PARTS.items()
        }
        for p in PARTS.values():  # the layout has both images/ folders, even if empty
            (log.root / OFFICIAL_ROOT / p / "images").mkdir(parents=True, exist_ok=True)
        names = [s for s in ("train", "val", "test") if s in OFFICIAL_SPLITS or s in config.split]
        self.splits = {s: LineFile(log, f"{OFFICIAL_ROOT}/{s}_label.jsonl") for s in names}
        self.lines = dict.fromkeys(names, 0)

    def write(self, name: str, split: str, expert: bool, source: str, score,
              text_level: str | None, mask: list[bool] | None, *,
              part: bool | None = None) -> None:
        """One line; ``part`` (default ``expert``) is the part whose images/ holds the file."""
        part = expert if part is None else part
        rest: dict = {"source": source, "score": score}
        if text_level is not None:
            rest["text_level"] = text_level
        rest["is_expert"] = expert
        if mask is not None:
            rest["score_mask"] = mask
        tail = json.dumps(rest)[1:]
        self.parts[part].write(f'{{"image_name": {json.dumps(name)}, {tail}\n')
        self.splits[split].write(
            f'{{"image_name": {json.dumps(f"{PARTS[part]}/images/{name}")}, {tail}\n'
        )
        self.lines[split] += 1

    def close(self) -> None:
        for f in (*self.parts.values(), *self.splits.values()):
            f.close()


class ParquetWriter:
    """``parquet/{split}.parquet``: one row group per batch, snappy, the schema of COLUMNS."""

    def __init__(self, log: FileLog, splits: tuple[str, ...]):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        types = {"string": pa.string(), "int64": pa.int64(), "int32": pa.int32(),
                 "float64": pa.float64(), "bool": pa.bool_()}
        self.schema = pa.schema([(name, types[t]) for name, t in COLUMNS])
        self._files: dict[str, HashedFile] = {}
        self._writers = {}
        for s in splits:
            self._files[s] = log.open(f"parquet/{s}.parquet")
            self._writers[s] = pq.ParquetWriter(self._files[s], self.schema, compression="snappy")

    def write_batch(self, split: str, columns: list[tuple]) -> None:
        pa = self._pa
        arrays = [pa.array(col, type=field.type) for col, field in zip(columns, self.schema,
                                                                         strict=True)]
        self._writers[split].write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        for s, w in self._writers.items():
            w.close()
            self._files[s].close()

    def abort(self) -> None:
        """After an error: end pyarrow's writers (else they write to closed files later)."""
        for w in self._writers.values():
            with contextlib.suppress(Exception):
                w.close()


class CsvWriter:
    """``csv/{split}.csv``: a header of COLUMNS, one line per image, null as an empty field."""

    def __init__(self, log: FileLog, splits: tuple[str, ...]):
        self._files = {s: LineFile(log, f"csv/{s}.csv") for s in splits}
        for f in self._files.values():
            f.write(",".join(COLUMN_NAMES) + "\n")

    def write_batch(self, split: str, rows: list[tuple]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        self._files[split].write(buf.getvalue())

    def close(self) -> None:
        for f in self._files.values():
            f.close()


def _ustar_template() -> tuple[bytearray, int]:
    """A ustar header with the fixed fields set (mode 644, uid/gid 0, mtime 0, regular file)
    and the sum of its bytes with name, size and checksum blank (checksum as spaces)."""
    h = bytearray(512)
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[136:148] = b"00000000000\0"
    h[148:156] = b"        "
    h[156:157] = b"0"
    h[257:265] = b"ustar\x0000"
    return h, sum(h)


_HEADER, _HEADER_SUM = _ustar_template()
_BLOCK = 512
_RECORD = 20 * _BLOCK  # tar files are padded to whole 10 KiB records, as tarfile does


def tar_member(name: str, data: bytes) -> bytes:
    """One regular-file member of a ustar archive (header, data, padding), as tarfile writes
    it with mtime 0, uid/gid 0, empty user/group names and mode 644 (names < 100 bytes)."""
    raw = name.encode()
    if len(raw) >= 100:
        raise ValueError(f"tar member name too long: {name}")
    size = b"%011o\0" % len(data)
    h = _HEADER.copy()
    h[0:len(raw)] = raw
    h[124:136] = size
    h[148:156] = b"%06o\0 " % (_HEADER_SUM + sum(raw) + sum(size))
    pad = -len(data) % _BLOCK
    return bytes(h) + data + b"\0" * pad


WDS_IMAGE_KEY = "jpg"


def shard_seed(config: ReleaseConfig) -> int:
    """The shuffle's seed, from the release itself: the same release shuffles alike on every
    rebuild, another version or seed differently."""
    key = f"{config.name}\0{config.version}\0{config.seed}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def plan_shards(splits: Mapping[int, str], names: tuple[str, ...], shard_size: int,
                seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per split, (its image ids sorted, each one's shard): a seeded permutation of the split,
    cut into shards of ``shard_size``, so a shard mixes sources, kinds and scores instead of
    holding a run of the release's row order."""
    ids = np.fromiter(splits.keys(), dtype=np.int64, count=len(splits))
    codes = np.fromiter((names.index(s) for s in splits.values()), dtype=np.int64,
                        count=len(splits))
    out = {}
    for c, split in enumerate(names):
        mine = np.sort(ids[codes == c])
        position = np.random.default_rng([seed, c]).permutation(mine.size)
        out[split] = (mine, position // shard_size)
    return out


class WebDatasetWriter:
    """``webdataset/{split}-{000000}.tar`` shards of ``shard_size`` samples; a sample is
    ``{key}.jpg`` (the image, when the shards hold the images: ``ReleaseConfig.shard_images``)
    and ``{key}.json`` (its typed record, ``records.wds_record``), key being the stable name
    without extension.

    Samples are shuffled into shards (``plan_shards``: seeded from the release, the same on a
    rebuild); within a shard they keep the release's row order, so read with a shuffle buffer
    as usual. Every image is stored under the one key ``jpg`` whatever its encoding (the
    bytes are the released file's, untouched; ``format`` in the json names the original
    encoding): readers that group a sample's members by extension (``datasets``'
    "webdataset" loader) need the same keys in every sample, and the usual
    ``decode("pil")`` / ``to_tuple("jpg", "json")`` then reads every sample (PIL recognises
    a PNG by its bytes).

    Headers are fixed (mtime 0, uid/gid 0, mode 644), so shards are byte-identical for the
    same input; written here rather than by ``tarfile``, which spends more time per member
    than everything else in a metadata-only build. All shards of a split fill at once, so a
    shard's buffer goes to disk by appending (no file stays open; memory stays at ``budget``).
    """

    def __init__(self, log: FileLog, config: ReleaseConfig, splits: Mapping[int, str],
                 budget: int = 8 << 20):
        self._log = log
        self._plan = plan_shards(splits, config.splits, config.shard_size, shard_seed(config))
        self._budget = budget
        self._buffered = 0
        self._buf: dict[str, list[bytes]] = {}
        self._hash: dict[str, Any] = {}
        self._size: dict[str, int] = {}

    def shard(self, split: str, image_id: int) -> str:
        """The shard file (relative to the release) that holds ``image_id``."""
        ids, shards = self._plan[split]
        i = int(np.searchsorted(ids, image_id))
        if i == ids.size or ids[i] != image_id:
            raise ReleaseDataError(f"image {image_id} is not in the {split} split's plan")
        return f"webdataset/{split}-{int(shards[i]):06d}.tar"

    def write(self, split: str, key: str, image: bytes | None, record: dict) -> None:
        rel = self.shard(split, record["image_id"])
        parts = self._buf.setdefault(rel, [])
        if image is not None:
            parts.append(tar_member(f"{key}.{WDS_IMAGE_KEY}", image))
            self._buffered += len(parts[-1])
        parts.append(tar_member(f"{key}.json", json.dumps(record).encode()))
        self._buffered += len(parts[-1])
        if self._buffered >= self._budget:
            for name in list(self._buf):
                self._flush(name)

    def _flush(self, rel: str) -> None:
        data = b"".join(self._buf.pop(rel, ()))
        if not data:
            return
        if rel not in self._hash:
            self._hash[rel], self._size[rel] = hashlib.sha256(), 0
            self._log.path(rel).unlink(missing_ok=True)
        with open(self._log.path(rel), "ab") as fh:
            fh.write(data)
        self._hash[rel].update(data)
        self._size[rel] += len(data)
        self._buffered -= len(data)

    def close(self) -> None:
        for rel in list(self._buf):
            self._flush(rel)
        for rel in sorted(self._hash):
            end = self._size[rel] + 2 * _BLOCK  # two zero blocks end the archive
            self._buf[rel] = [b"\0" * (2 * _BLOCK + (-end % _RECORD))]
            self._flush(rel)
            self._log.add(rel, self._hash[rel].hexdigest(), self._size[rel])
