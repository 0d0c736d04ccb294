"""Who may enter the pool: checks that apps above register, asked at every door.

The takedown blocklist lives above curation (an app higher in the chain registers its check in
its `AppConfig.ready()`, as annotation registers who may see an image), yet every way into the
pool is here: `services.images.register_image` (uploads, filter jobs over sources) and
`check_and_store` (`import_images`, the demo). Each door takes one `Screen` and refuses a file
it names before anything is stored, with the reason `blocked` and the check's message.

A check is built fresh for each screen (`register(loader)`: the loader reads the current
blocklist) and must be picklable: `import_directory` sends the screen to its hashing processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .imaging.hashing import ImageHashes
from .imaging.validate import InvalidImage

BLOCKED = "blocked"


class Check(Protocol):
    def __call__(self, info: ImageHashes) -> str | None:
        """The reason these bytes may not enter the pool, or None."""


_loaders: list[Callable[[], Check | None]] = []


def register(loader: Callable[[], Check | None]) -> None:
    """Add a check to every door; `loader()` builds it from the current state (None: nothing
    to check now). Registering the same loader twice has no effect."""
    if loader not in _loaders:
        _loaders.append(loader)


def unregister(loader: Callable[[], Check | None]) -> None:
    if loader in _loaders:
        _loaders.remove(loader)


@dataclass(frozen=True)
class Screen:
    checks: tuple[Check, ...] = ()

    def refuse(self, info: ImageHashes) -> None:
        """Raise InvalidImage("blocked", why) when a check names these bytes."""
        for check in self.checks:
            why = check(info)
            if why:
                raise InvalidImage(BLOCKED, why)


def screen() -> Screen:
    """The checks as they stand now (one per door pass: a batch import loads them once)."""
    return Screen(tuple(c for c in (load() for load in _loaders) if c is not None))
