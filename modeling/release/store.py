"""Where a built release's files are kept, as the code that reads them sees it.

A release is built into a local folder; it is then kept there (`LocalFiles`, the file-system
storage: RELEASE_ROOT) or copied to the media storage under a prefix (the Django side's
`modeling.services.releases.StoredRelease`, an S3 bucket). The download, the withdrawal notices
and a later version's datasheet read a release through `ReleaseFiles` only, so the same code
serves both, Django-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


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


def files_of(root: ReleaseFiles | Path | str) -> ReleaseFiles:
    """`root` as a ReleaseFiles (a folder's path becomes its LocalFiles)."""
    if isinstance(root, str | os.PathLike):
        return LocalFiles(Path(root))
    return root
