"""Where a built release's files are kept, as the code that reads them sees it.

A release is built into a local folder; it is then kept there (`LocalFiles`, the file-system
storage: RELEASE_ROOT) or copied to the media storage under a prefix (`StorageFiles`: a Django
storage, an S3 bucket in practice, handed in and used by its methods, so no Django is imported
here). The download, the withdrawal notices and a later version's datasheet read a release
through `ReleaseFiles` only, so the same code serves both.
"""

from __future__ import annotations

import io
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from humanbeauty.stored import save_replacing

STORAGE_SCHEME = "storage:"  # a location in the media storage (`core.storage.SCHEME`)
CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative POSIX path inside the release
    size: int
    mtime: float  # seconds since the epoch


@runtime_checkable
class ReleaseFiles(Protocol):
    """A release's files, by relative POSIX path."""

    name: str  # the release folder's name: a download's top folder

    def listing(self) -> list[StoredFile]:
        """Every file, ordered by path (folder by folder)."""
        ...

    def exists(self, rel: str) -> bool: ...

    def open(self, rel: str) -> BinaryIO:
        """A seekable binary reader that reads as it goes (never the whole file at once);
        FileNotFoundError when there is no such file."""
        ...

    def replace(self, rel: str, data: bytes) -> None:
        """Write a (small) file whole: a reader sees the old one or the new one, never half."""
        ...


def path_order(rel: str) -> list[str]:
    """The order of `listing`: by path parts, as `pathlib` sorts."""
    return rel.split("/")


class LocalFiles:
    """A release in a folder on this machine."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.name = self.root.name

    def __str__(self) -> str:
        return str(self.root)

    def listing(self) -> list[StoredFile]:
        found = []
        for path in sorted(p for p in self.root.rglob("*") if p.is_file() and not p.is_symlink()):
            stat = path.stat()
            found.append(StoredFile(path.relative_to(self.root).as_posix(), stat.st_size,
                                    stat.st_mtime))
        return found

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def open(self, rel: str) -> BinaryIO:
        return (self.root / rel).open("rb")

    def replace(self, rel: str, data: bytes) -> None:
        target = self.root / rel
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)


def _s3(storage: Any) -> Any:
    """The storage when it is django-storages' S3 backend (a boto3 bucket behind it), else
    None: such a storage is listed, read and emptied through the bucket itself."""
    if hasattr(storage, "bucket") and hasattr(storage, "_normalize_name"):
        return storage
    return None


class _ObjectReader(io.RawIOBase):
    """An S3 object read as it goes: one ranged GET from where reading starts, read in the
    caller's pieces, and a new one only after a seek away from it (skipping short gaps, as
    between a tar's members). `default_storage.open` would fetch the whole object first."""

    SKIP = 1 << 20  # reading past a gap costs less than another request

    def __init__(self, obj: Any, size: int):
        self._obj, self._size = obj, size
        self._pos = 0
        self._body: Any = None
        self._body_pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def readinto(self, buffer) -> int:
        if self._pos >= self._size or not len(buffer):
            return 0
        if self._body is not None and self._body_pos != self._pos:
            gap = self._pos - self._body_pos
            if 0 < gap <= self.SKIP and len(self._body.read(gap)) == gap:
                self._body_pos += gap
            else:
                self._drop_body()
        if self._body is None:
            self._body = self._obj.get(Range=f"bytes={self._pos}-")["Body"]
            self._body_pos = self._pos
        data = self._body.read(min(len(buffer), self._size - self._pos))
        if not data:
            raise OSError(f"{self._obj.key} ended at {self._pos} of {self._size} bytes")
        buffer[: len(data)] = data
        self._pos += len(data)
        self._body_pos += len(data)
        return len(data)

    def close(self) -> None:
        self._drop_body()
        super().close()


class StorageFiles:
    """A release kept in a (Django) media storage: the objects under ``prefix``."""

    def __init__(self, storage: Any, prefix: str, name: str):
        self.storage = storage
        self.prefix = prefix.strip("/")
        self.name = name

    def __str__(self) -> str:
        return f"{STORAGE_SCHEME}{self.prefix}"

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"

    def listing(self) -> list[StoredFile]:
        s3 = _s3(self.storage)
        found = []
        if s3 is not None:  # one listing gives sizes and dates: no request per file
            start = s3._normalize_name(self.prefix) + "/"
            for obj in s3.bucket.objects.filter(Prefix=start):
                found.append(StoredFile(obj.key[len(start):], obj.size,
                                        obj.last_modified.timestamp()))
        else:
            folders = [""]
            while folders:
                folder = folders.pop()
                subs, names = self.storage.listdir(self.key(folder).rstrip("/"))
                folders += [posixpath.join(folder, d) for d in subs]
                for n in names:
                    rel = posixpath.join(folder, n)
                    found.append(StoredFile(rel, self.storage.size(self.key(rel)),
                                            self.storage.get_modified_time(self.key(rel))
                                            .timestamp()))
        return sorted(found, key=lambda f: path_order(f.path))

    def exists(self, rel: str) -> bool:
        return self.storage.exists(self.key(rel))

    def open(self, rel: str) -> BinaryIO:
        s3 = _s3(self.storage)
        if s3 is None:
            return self.storage.open(self.key(rel), "rb")  # another backend: its own way
        from botocore.exceptions import ClientError

        obj = s3.bucket.Object(s3._normalize_name(self.key(rel)))
        try:
            size = obj.content_length  # a HEAD: a missing file is told here
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise FileNotFoundError(f"no stored file {self.key(rel)!r}") from None
            raise
        return io.BufferedReader(_ObjectReader(obj, size), CHUNK)

    def replace(self, rel: str, data: bytes) -> None:
        self._put(rel, io.BytesIO(data))  # one PUT: the object is replaced whole

    def upload(self, rel: str, path: Path) -> None:
        """Copy a local file to ``rel`` (streamed: a multipart upload for a big one)."""
        with path.open("rb") as fh:
            self._put(rel, fh)

    def _put(self, rel: str, content: BinaryIO) -> None:
        save_replacing(self.storage, self.key(rel), content)

    def delete_all(self) -> int:
        """Remove every object under the prefix; how many there were."""
        names = [self.key(f.path) for f in self.listing()]
        s3 = _s3(self.storage)
        if s3 is not None:
            for at in range(0, len(names), 1000):  # S3's batch limit
                s3.bucket.delete_objects(Delete={
                    "Objects": [{"Key": s3._normalize_name(n)} for n in names[at:at + 1000]],
                    "Quiet": True,
                })
        else:
            for n in names:
                self.storage.delete(n)
        return len(names)


def located(location: str, name: str, storage: Any) -> ReleaseFiles:
    """The files of a release recorded at ``location``: ``storage:PREFIX`` (in ``storage``,
    its download's folder called ``name``) or a folder."""
    if location.startswith(STORAGE_SCHEME):
        return StorageFiles(storage, location[len(STORAGE_SCHEME):], name)
    return LocalFiles(Path(location))


def files_of(root: ReleaseFiles | Path | str) -> ReleaseFiles:
    """`root` as a ReleaseFiles (a folder's path becomes its LocalFiles)."""
    if isinstance(root, str | os.PathLike):
        return LocalFiles(Path(root))
    return root
