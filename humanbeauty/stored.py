"""Writing a file to a media storage under the name asked for, replacing what is there.

Pure Python (the storage is handed in: a Django storage, duck-typed), so the release writers
use it as well as the services. Django storages may save under another name rather than
overwrite (`get_available_name`); for a part, a release file or a model file that would leave
the old file in place and a second one beside it, so it is refused, never kept.
"""

from __future__ import annotations

from typing import Any

from .errors import DomainError


class StorageWouldNotReplace(DomainError, code="storage_would_not_replace"):
    """The storage saved a file under another name instead of replacing it."""


def save_replacing(storage: Any, name: str, content: Any) -> None:
    """Save `content` (a Django File or file object) at `name`, replacing any file there."""
    saved = storage.save(name, content)
    if saved != name:  # a storage that keeps both files
        storage.delete(saved)
        raise StorageWouldNotReplace(
            f"the storage did not replace '{name}' (it wrote '{saved}'); configure it to "
            "overwrite files"
        )
