"""Withdrawal notices of published releases (takedown requests), Django-free.

A release is immutable, yet an image taken down must stop being handed out. Its version gets
``withdrawn.jsonl`` beside its manifest: one line per withdrawn image, with the release files
that held it (path, sha256, size; no image content), and the download leaves those files out
from then on:

- a loose image file (``images/…``, the official layout's ``…/images/…``) is left out whole;
- a sample inside a WebDataset shard (``webdataset/{split}-NNNNNN.tar#{stem}.jpg`` and its
  ``.json`` record) is left out of the shard, which is streamed without it
  (`filtered_shard`).

An image's files are found by its stable name, ``{sha256[:16]}.{ext}``
(`modeling.release.images.stable_name`): in the manifest's file list for loose files, among
the shards' members for samples. A later version of the same name never holds the image (it
is gone from the pool); its datasheet counts the images withdrawn from the earlier versions
found beside it (`withdrawn_from_earlier`) or handed to the build (`withdrawn_from`).

A release is read through `modeling.release.store`: a folder (RELEASE_ROOT) or, kept in the
media storage, the objects under its prefix; every function takes either.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .store import LocalFiles, ReleaseFiles, files_of

NOTICE = "withdrawn.jsonl"
NOTICE_TEMP = f".{NOTICE}.tmp"  # the notice being rewritten (a folder's); never downloaded
MANIFEST = "manifest.json"
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE  # shards are padded to whole records, as tarfile pads them
_PIECE = 1 << 20

Root = ReleaseFiles | Path | str  # a release: its files, or the folder holding them


def _manifest(files: ReleaseFiles) -> dict[str, Any] | None:
    try:
        with files.open(MANIFEST) as fh:
            return json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError):
        return None


def _stem(name: str) -> str:
    return name.rsplit("/", 1)[-1].split(".", 1)[0]


def _is_shard(rel: str) -> bool:
    return rel.startswith("webdataset/") and rel.endswith(".tar")


def image_files(root: Root, sha256s: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Per image sha256 (full, lower-case hex): the files of the release at ``root`` that hold
    it, ``{"path", "sha256", "size"}`` each (a shard sample's path is ``{shard}#{member}``).
    An image the release holds no file of (``images=none``) maps to an empty list."""
    files = files_of(root)
    wanted = {s.lower()[:16]: s.lower() for s in sha256s}
    found: dict[str, list[dict[str, Any]]] = {s: [] for s in wanted.values()}
    manifest = _manifest(files)
    if manifest is None or not wanted:
        return found
    for entry in manifest.get("files", []):
        rel = entry["path"]
        if _is_shard(rel):
            for member in _shard_members(files, rel):
                sha = wanted.get(_stem(member["name"]))
                if sha is not None:
                    found[sha].append({"path": f"{rel}#{member['name']}",
                                       "sha256": member["sha256"], "size": member["size"]})
        elif "/images/" in f"/{rel}":
            sha = wanted.get(_stem(rel))
            if sha is not None:
                found[sha].append({"path": rel, "sha256": entry["sha256"],
                                   "size": entry["size"]})
    for listed in found.values():
        listed.sort(key=lambda f: f["path"])
    return found


def _shard_members(files: ReleaseFiles, rel: str) -> Iterator[dict[str, Any]]:
    with files.open(rel) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
        for info in tar:
            if not info.isfile():
                continue
            digest = hashlib.sha256()
            with tar.extractfile(info) as fh:
                while piece := fh.read(_PIECE):
                    digest.update(piece)
            yield {"name": info.name, "sha256": digest.hexdigest(), "size": info.size}


def read_notice(root: Root) -> list[dict[str, Any]]:
    """The withdrawal notice's lines (none when the release has no notice)."""
    files = files_of(root)
    if not files.exists(NOTICE):
        return []
    with files.open(NOTICE) as fh:
        text = fh.read().decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_notice(root: Root, entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Add ``entries`` ({"image_sha256", "image_id", "request", "withdrawn_at", "files"}) to
    the release's notice, one line each, an image already listed kept as it was; written
    whole (a folder's: to a temporary file renamed into place; a stored object: replaced in
    one write), so a reader never sees half a notice. Returns the lines added."""
    files = files_of(root)
    lines = read_notice(files)
    listed = {line["image_sha256"] for line in lines}
    added = [dict(e) for e in entries if e["image_sha256"] not in listed]
    if not added:
        return []
    lines += added
    text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
    files.replace(NOTICE, text.encode("utf-8"))
    return added


def omissions(root: Root) -> tuple[set[str], dict[str, set[str]]]:
    """What a download leaves out: loose files by relative path, and per shard the member
    names of withdrawn samples."""
    whole: set[str] = set()
    members: dict[str, set[str]] = {}
    for line in read_notice(root):
        for f in line.get("files", []):
            shard, sep, member = f["path"].partition("#")
            if sep:
                members.setdefault(shard, set()).add(member)
            else:
                whole.add(f["path"])
    return whole, members


def _kept_spans(files: ReleaseFiles, rel: str, drop: set[str]) -> list[tuple[int, int]]:
    """(start, end) byte spans of the members kept: each header with its padded data."""
    spans = []
    with files.open(rel) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
        for info in tar:
            if info.name in drop:
                continue
            padded = -(-info.size // _BLOCK) * _BLOCK
            spans.append((info.offset, info.offset_data + padded))
    return spans


def filtered_shard(root: Root, rel: str, drop: set[str]) -> tuple[int, Iterator[bytes]]:
    """The shard ``rel`` of the release without the members named in ``drop``: its size and
    its bytes in pieces (the kept members' headers and data copied as they are, then the
    end-of-archive blocks, padded to a whole record as the original was)."""
    files = files_of(root)
    spans = _kept_spans(files, rel, drop)
    body = sum(end - start for start, end in spans) + 2 * _BLOCK
    size = -(-body // _RECORD) * _RECORD

    def pieces() -> Iterator[bytes]:
        with files.open(rel) as fh:
            for start, end in spans:
                fh.seek(start)
                left = end - start
                while left:
                    piece = fh.read(min(_PIECE, left))
                    if not piece:
                        raise OSError(f"{rel} of {files.name} ended early: was it changed?")
                    left -= len(piece)
                    yield piece
        yield b"\0" * (size - body + 2 * _BLOCK)

    return size, pieces()


def withdrawn_from(releases: Iterable[Root], name: str, version: str) -> int:
    """How many images were withdrawn from the other versions of release ``name`` among
    ``releases`` (each told by its manifest)."""
    shas: set[str] = set()
    for root in releases:
        files = files_of(root)
        if not files.exists(NOTICE):
            continue
        manifest = _manifest(files)
        if manifest is None or manifest.get("name") != name or manifest.get("version") == version:
            continue
        shas.update(line["image_sha256"] for line in read_notice(files))
    return len(shas)


def withdrawn_from_earlier(parent: Path, name: str, version: str) -> int:
    """How many images were withdrawn from the other versions of release ``name`` that lie in
    ``parent`` (each release is a folder with its manifest; a version is never built outside
    the folder its earlier ones share in practice: RELEASE_ROOT)."""
    try:
        folders = [p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return 0
    return withdrawn_from((LocalFiles(f) for f in folders), name, version)
