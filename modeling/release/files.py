"""Files of a release: every file is written through a FileLog, which hashes it on the way."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .errors import ReleaseDataError


class FileLog:
    """Writes files under ``root`` and keeps (sha256, size) of each, by relative POSIX path."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, tuple[str, int]] = {}
        self._dirs: set[Path] = set()
        self.open_files: set[HashedFile] = set()

    def path(self, rel: str) -> Path:
        target = self.root / rel
        parent = target.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        return target

    def add(self, rel: str, sha256: str, size: int) -> None:
        if rel in self.files:
            raise ReleaseDataError(f"two images would be written to the same file {rel}")
        self.files[rel] = (sha256, size)

    def open(self, rel: str) -> HashedFile:
        return HashedFile(self, rel)

    def write_bytes(self, rel: str, data: bytes, sha256: str | None = None) -> None:
        with open(self.path(rel), "wb") as fh:
            fh.write(data)
        self.add(rel, sha256 or hashlib.sha256(data).hexdigest(), len(data))

    def link_or_copy(self, src: str, rel: str, sha256: str, size: int) -> bool:
        """Hard-link ``src`` to ``rel``; copy where links are impossible (another file system,
        a file system without links). True when linked."""
        target = self.path(rel)
        try:
            os.link(src, target)
            linked = True
        except OSError:
            shutil.copyfile(src, target)
            linked = False
        self.add(rel, sha256, size)
        return linked

    def close_all(self) -> None:
        """Close what is still open (after an error: the files are thrown away)."""
        for f in list(self.open_files):
            f.discard()

    def sorted_entries(self) -> list[dict[str, object]]:
        return [
            {"path": rel, "sha256": sha, "size": size}
            for rel, (sha, size) in sorted(self.files.items())
        ]


class HashedFile:
    """A binary file that hashes what is written (pyarrow, tarfile and text writers use it)."""

    def __init__(self, log: FileLog, rel: str):
        self._log = log
        self._rel = rel
        self._fh = open(log.path(rel), "wb")  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        self._size = 0
        self.closed = False
        log.open_files.add(self)

    def write(self, data) -> int:
        data = bytes(data) if not isinstance(data, bytes) else data
        self._hash.update(data)
        self._size += len(data)
        self._fh.write(data)
        return len(data)

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        self._fh.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            self.discard()
            self._log.add(self._rel, self._hash.hexdigest(), self._size)

    def discard(self) -> None:
        """Close without recording the file."""
        if not self.closed:
            self._fh.close()
            self.closed = True
            self._log.open_files.discard(self)

    def __enter__(self) -> HashedFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
