"""Local copies of stored files, for the work that needs a file on disk (a face detector, CLIP,
a contact sheet's thumbnails, a hashing process) while the files live in object storage.

`local_copy(name)` answers a path on this machine: with the file-system storage, the stored file
itself (nothing is copied); otherwise a copy under SCRATCH_DIR, fetched on first use. The folder
is a cache bounded by SCRATCH_MAX_BYTES (least recently used copies go first) and safe for many
processes at once: a copy appears whole (written under a hidden name, then renamed), two
processes fetching the same file each write their own and the last rename wins (same bytes), and
a copy used in the last GRACE_SECONDS is never evicted (its user may still be reading it). It is
only a cache: lose it at any moment (a worker's machine replaced) and files are fetched again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.storage import Storage, default_storage

from .storage import has_local_paths

GRACE_SECONDS = 600.0
CHUNK = 1024 * 1024


@dataclass
class ScratchCache:
    """A size-bounded folder of local copies, keyed by storage name."""

    root: Path
    max_bytes: int
    grace_s: float = GRACE_SECONDS

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._added = 0  # bytes fetched since the folder was last measured
        self._measured = False

    def target(self, name: str) -> Path:
        key = hashlib.sha256(name.encode()).hexdigest()
        suffix = posixpath.splitext(name)[1][:12]
        return self.root / key[:2] / f"{key}{suffix}"

    def fetch(self, name: str, storage: Storage) -> Path:
        """The local copy of `name`, fetched now unless there is one. Raises FileNotFoundError
        (an OSError) when the storage has no such file."""
        target = self.target(name)
        if target.is_file():
            with contextlib.suppress(OSError):
                os.utime(target)  # recently used: last to be evicted
                return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    src = storage.open(name, "rb")
                except FileNotFoundError:
                    raise
                except Exception as exc:  # a remote storage's own error for a missing key
                    if not storage.exists(name):
                        raise FileNotFoundError(f"no stored file {name!r}") from exc
                    raise
                with src:
                    shutil.copyfileobj(src, out, CHUNK)
            size = os.path.getsize(partial)
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
        self._note(size, keep=target)
        return target

    def _note(self, size: int, *, keep: Path) -> None:
        with self._lock:
            self._added += size
            due = not self._measured or self._added >= max(1, self.max_bytes // 20)
            if due:
                self._added = 0
                self._measured = True
        if due:
            self.evict(keep=keep)

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, size, path) of every copy and every abandoned partial file."""
        found = []
        if not self.root.is_dir():
            return found
        for sub in os.scandir(self.root):
            if not sub.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(FileNotFoundError), os.scandir(sub.path) as files:
                for entry in files:
                    if not entry.is_file(follow_symlinks=False):
                        continue  # only copies live here; anything else is not ours to evict
                    with contextlib.suppress(OSError):
                        st = entry.stat(follow_symlinks=False)
                        found.append((st.st_mtime, st.st_size, Path(entry.path)))
        return found

    def size(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def evict(self, *, keep: Path | None = None) -> int:
        """Remove the least recently used copies until the folder is within its bound (copies
        used within the grace period stay); returns the bytes freed."""
        entries = sorted(self.entries())
        total = sum(size for _, size, _ in entries)
        now = time.time()
        freed = 0
        for used, size, path in entries:  # least recently used first
            partial = path.name.startswith(".")
            abandoned = partial and used < now - self.grace_s  # its writer died
            if not abandoned and (
                total <= self.max_bytes or partial or path == keep or used > now - self.grace_s
            ):
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                total -= size
                freed += size
        return freed


_caches: dict[tuple[str, int], ScratchCache] = {}
_caches_lock = threading.Lock()


def cache() -> ScratchCache:
    """This process's cache for the current settings."""
    key = (str(settings.SCRATCH_DIR), int(settings.SCRATCH_MAX_BYTES))
    with _caches_lock:
        if key not in _caches:
            _caches[key] = ScratchCache(Path(key[0]), key[1])
        return _caches[key]


def local_copy(name: str, *, storage: Storage | None = None) -> Path:
    """A path on this machine holding the stored file `name` (see the module's text)."""
    storage = storage or default_storage
    if has_local_paths(storage):
        return Path(storage.path(name))
    return cache().fetch(name, storage)
