"""Sources whose files live in the media storage (a bucket) rather than on a disk every worker
would have to share: an import path `storage:PREFIX/…/manifest.csv`, allowed under the
`storage:` entries of IMPORT_ROOTS (core.storage.resolve_storage_inside: the one rule of the
import roots, for storage names).

The manifest is read from the storage (a fresh copy each time: it may have changed since the
last import) and parsed by the ordinary manifest parser; the source's location is
`storage:PREFIX/…` (the manifest's folder) and its records' paths are relative to it. A job
opens an item's file through the scratch cache (`item_file` → `core.scratch.local_copy`), so
every worker reads it from the bucket, whatever its own disk holds. Only manifests are taken
from the storage: the dataset layouts (AVA, TAD66K, ...) name folders that an object store does
not have.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from core import scratch
from core.storage import SCHEME, is_storage_path, resolve_storage_inside

from ..sources import (
    MissingLabelFile,
    ParseResult,
    Scale,
    SourceFileError,
    SourceRecord,
    parse_source,
)

__all__ = ["StoredParseResult", "check_stored_path", "is_storage_path", "parse_stored",
           "stored_item_file"]


def check_stored_path(path: str, *, kind: str = "manifest") -> str:
    """The storage name of an import path, refused (PathOutsideRoots) outside the storage
    import roots, or (SourceFileError) for a kind that cannot be read from the storage."""
    name = resolve_storage_inside(path, settings.IMPORT_STORAGE_ROOTS)
    if kind != "manifest":
        raise SourceFileError(
            f"a source in the storage ({SCHEME}…) is imported from a manifest; {kind!r} "
            "needs its dataset's folder on a disk (IMPORT_ROOTS)"
        )
    return name


@dataclass
class StoredParseResult(ParseResult):
    """A parse of a manifest kept in the storage: `base` is its `storage:` folder."""

    def resolve(self, record: SourceRecord, roots=None) -> str:  # type: ignore[override]
        """The storage name of a record, refused (PathOutsideRoots) outside the storage roots
        (`roots`, the disk's import roots, do not apply here)."""
        return resolve_storage_inside(
            record.path, settings.IMPORT_STORAGE_ROOTS, base=str(self.base)
        )


def parse_stored(
    kind: str, path: str | os.PathLike[str], *, scale: Scale | None = None
) -> StoredParseResult:
    """Parse a manifest that lies in the storage (see the module's text)."""
    path = os.fspath(path)
    name = check_stored_path(path, kind=kind)
    with tempfile.TemporaryDirectory(prefix="stored-manifest-") as tmp:
        local = Path(tmp) / (posixpath.basename(name) or "manifest")
        try:
            with default_storage.open(name, "rb") as src, local.open("wb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)
        except FileNotFoundError:
            raise MissingLabelFile(f"manifest: {path} does not exist") from None
        except OSError as exc:
            raise SourceFileError(f"manifest: {path} cannot be read ({exc})") from None
        except Exception as exc:  # a remote storage's own error for a missing key
            if not default_storage.exists(name):
                raise MissingLabelFile(f"manifest: {path} does not exist") from None
            raise SourceFileError(f"manifest: {path} cannot be read") from exc
        parsed = parse_source(kind, local, scale=scale)
    location = SCHEME + posixpath.dirname(name)
    # The label file is named as the user gave it, never as the temporary copy.
    errors = [
        type(e)(path if e.file == str(local) else e.file, e.line, e.message)
        for e in parsed.errors
    ]
    return StoredParseResult(
        kind=parsed.kind,
        base=location,  # type: ignore[arg-type]  # a storage folder, not a Path
        label_files=[path],  # type: ignore[list-item]
        scale=parsed.scale,
        records=parsed.records,
        errors=errors,
    )


def stored_item_file(item_path: str, location: str) -> Path:
    """A local copy (core.scratch) of a stored source's file, refused outside the roots."""
    return scratch.local_copy(
        resolve_storage_inside(item_path, settings.IMPORT_STORAGE_ROOTS, base=location)
    )
