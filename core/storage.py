"""The media storage (settings.STORAGES["default"]: the file system or an S3 bucket), as the rest
of the platform sees it: names, never local paths.

Source imports may read from the storage too: an import path written `storage:PREFIX/...`
names a file of the media storage (the same bucket), allowed only under the `storage:` entries
of IMPORT_ROOTS. The confinement rule is the one of `humanbeauty.paths` (a path must lie under
a configured root, `..` resolved first, refusals naming only the path and the roots), applied
to storage names: an object store has no symbolic links, so the rule is lexical.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

from django.core.files.storage import Storage, default_storage

from humanbeauty.paths import PathOutsideRoots

SCHEME = "storage:"


def is_storage_path(path: object) -> bool:
    """Whether an import path (or a source's location) names the media storage (a `Path` made
    of one too: the command line's)."""
    try:
        return os.fspath(path).startswith(SCHEME)  # type: ignore[arg-type]
    except TypeError:
        return False


def has_local_paths(storage: Storage | None = None) -> bool:
    """True where stored files are files on this machine's disk (the file-system storage)."""
    storage = storage or default_storage
    try:
        storage.path("probe")
    except NotImplementedError:
        return False
    return True


def resolve_storage_inside(
    path: str,
    roots: Iterable[str],
    base: str | None = None,
    *,
    setting: str = "IMPORT_ROOTS",
) -> str:
    """The storage name of `path` (`storage:a/b.jpg`, or `b.jpg` relative to `base`, itself a
    `storage:` location), provided it lies under one of `roots` (storage prefixes, without the
    scheme). Raises PathOutsideRoots (the roots listed as `storage:PREFIX`) otherwise."""
    listed = [f"{SCHEME}{r}" for r in roots]
    prefixes = [r.strip("/") for r in roots if r.strip("/")]
    raw = os.fspath(path)
    if not prefixes:
        raise PathOutsideRoots(raw, listed, "no storage import roots are configured", setting)
    if "\x00" in raw or (base is not None and "\x00" in base):
        raise PathOutsideRoots(raw.replace("\x00", "\\x00"), listed, "the path has a NUL byte",
                               setting)
    if is_storage_path(raw):
        joined = raw[len(SCHEME):]
    elif base is None or not is_storage_path(base):
        raise PathOutsideRoots(raw, listed, "a relative path needs a storage base folder",
                               setting)
    else:
        if raw.startswith("/"):
            raise PathOutsideRoots(raw, listed, "an absolute path is not a storage name", setting)
        joined = posixpath.join(base[len(SCHEME):], raw)
    joined = joined.replace("\\", "/")
    if not joined.strip("/ "):
        raise PathOutsideRoots(raw, listed, "the path is empty", setting)
    if joined.startswith("/"):
        raise PathOutsideRoots(raw, listed, "a storage name is never absolute", setting)
    name = posixpath.normpath(joined)
    if name == ".." or name.startswith("../"):
        raise PathOutsideRoots(raw, listed, "its '..' climbs out of the storage", setting)
    if any(name == p or name.startswith(p + "/") for p in prefixes):
        return name
    reason = (
        "its '..' climbs out of the storage import roots"
        if ".." in joined.split("/")
        else "it is outside the storage import roots"
    )
    raise PathOutsideRoots(raw, listed, reason, setting)


def storage_location(name: str) -> str:
    """`storage:` + the folder of a storage name: a source's location, its records' base."""
    return SCHEME + posixpath.dirname(name)
