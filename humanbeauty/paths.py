"""Allowed roots: every server path a request (or a dataset's label file) can name must really
lie under a configured root. The one check of the platform, for every kind of root: imports
(`IMPORT_ROOTS`), models and checkpoints (`MODEL_ROOTS`), releases (`RELEASE_ROOT`); the Django
layer passes the setting's roots and its name.

`resolve_inside` resolves symbolic links and `..` before comparing, so neither a `../` escape,
an absolute path elsewhere, nor a symlink that points out of a root gets through. A `..` that
stays inside a root is fine: what counts is where the file really is. A refusal names the path
as it was given and the roots, never where the path really leads outside them (that would map
the server's file system), and reads the same whether or not such a path exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

from humanbeauty.errors import DomainError

LABELS = {
    "IMPORT_ROOTS": "the import roots",
    "MODEL_ROOTS": "the model roots",
    "RELEASE_ROOT": "the release root",
    "IMPORT_ROOTS or MODEL_ROOTS": "the import and model roots",
}
# "no import roots are configured", "no release root is configured"
VERB = {True: "are", False: "is"}


class PathOutsideRoots(DomainError, ValueError):
    """A path that resolves outside every allowed root (or no roots are configured at all).
    Its code names the setting: `outside_import_roots`, `outside_model_roots`, ..."""

    def __init__(
        self, path: object, roots: list[Path], reason: str, setting: str = "IMPORT_ROOTS"
    ) -> None:
        self.path = str(path)
        self.roots = roots
        self.reason = reason
        self.setting = setting
        self.code = "outside_" + re.sub(r"\W+", "_", setting.lower())
        listed = ", ".join(str(r) for r in roots) if roots else "none configured"
        super().__init__(f"refused {self.path!r}: {reason} ({setting}: {listed})")


class AllowedRoots:
    """The check of resolve_inside, for many paths in a row (a dataset's 255,000 images).

    Resolving a path costs one lstat per component. Paths of one dataset share their folders,
    so the real path of each folder is remembered for the life of this object and only the last
    component is looked at per file: realpath(dir/name) == realpath(realpath(dir)/name) for a
    plain name. Use one object per parse; the file is opened later by its returned real path.
    """

    def __init__(
        self, roots: Iterable[str | os.PathLike[str]] | None, setting: str = "IMPORT_ROOTS"
    ) -> None:
        self.setting = setting
        self.label = LABELS.get(setting, setting)
        self.given = [Path(os.fspath(r)) for r in (roots or ())]
        self.roots = [r.resolve() for r in self.given]
        self._prefixes = [str(r).rstrip(os.sep) + os.sep for r in self.roots]
        self._exact = {str(r) for r in self.roots}
        self._dirs: dict[str, str] = {}
        self._bases: dict[str, str] = {}

    def _inside(self, real: str) -> bool:
        return real in self._exact or any(real.startswith(p) for p in self._prefixes)

    def _realpath(self, joined: str) -> str:
        head, tail = os.path.split(joined)
        if tail in ("", ".", ".."):
            return os.path.realpath(joined)
        real_head = self._dirs.get(head)
        if real_head is None:
            real_head = self._dirs[head] = os.path.realpath(head)
        candidate = os.path.join(real_head, tail)
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate

    def resolve(
        self, path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None
    ) -> Path:
        """See resolve_inside."""
        return Path(self.real(path, base))

    def real(self, path: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> str:
        """resolve() as a string (no Path object: the hot loop of a big import)."""
        raw = os.fspath(path)
        if not self.roots:
            reason = f"no {self.label[4:]} {VERB[self.label.endswith('s')]} configured"
            raise PathOutsideRoots(raw, [], reason, self.setting)
        base_s = None if base is None else os.fspath(base)
        if "\x00" in raw or (base_s is not None and "\x00" in base_s):
            msg = "the path has a NUL byte"
            raise PathOutsideRoots(raw.replace("\x00", "\\x00"), self.roots, msg, self.setting)
        if not raw.strip():
            raise PathOutsideRoots(raw, self.roots, "the path is empty", self.setting)
        if os.path.isabs(raw):
            joined = raw
        elif base_s is None:
            raise PathOutsideRoots(
                raw, self.roots, "a relative path needs a base folder", self.setting
            )
        else:
            abs_base = self._bases.get(base_s)
            if abs_base is None:
                abs_base = self._bases[base_s] = os.path.abspath(base_s)
            joined = os.path.join(abs_base, raw)
        # Resolve the path as written: realpath follows each symlink before applying the `..`
        # after it, as the OS does when it opens the file (dropping `..` first would not be the
        # same file).
        real = self._realpath(joined)
        if self._inside(real):
            return real
        self._refuse(raw, joined, real)

    def _refuse(self, raw: str, joined: str, real: str) -> NoReturn:
        lexical = os.path.abspath(joined)  # `..` dropped, symlinks kept: only to explain
        lexical_roots = self._exact | {str(r) for r in self.given}
        lexical_inside = lexical in lexical_roots or any(
            lexical.startswith(r.rstrip(os.sep) + os.sep) for r in lexical_roots
        )
        # Where it really leads stays unsaid: that is outside the roots.
        if real != lexical and lexical_inside:
            reason = f"it leads through a symbolic link out of {self.label}"
        elif ".." in Path(raw).parts:
            reason = f"its '..' climbs out of {self.label}"
        else:
            reason = f"it is outside {self.label}"
        raise PathOutsideRoots(raw, self.roots, reason, self.setting)


def resolve_inside(
    path: str | os.PathLike[str],
    roots: Iterable[str | os.PathLike[str]] | AllowedRoots | None,
    base: str | os.PathLike[str] | None = None,
    *,
    setting: str = "IMPORT_ROOTS",
) -> Path:
    """The real absolute path of `path`, provided it lies inside one of `roots`.

    A relative `path` is taken relative to `base` (a manifest's folder, a dataset root); an
    absolute one must itself resolve inside a root. Symlinks are resolved (on the path, on `base`
    and on the roots) before the check. Raises PathOutsideRoots naming the path and the roots.
    The file need not exist: a missing file inside a root is the caller's "not found", not ours.
    Open the returned path, not the one given: it is the one that was checked.
    """
    checker = roots if isinstance(roots, AllowedRoots) else AllowedRoots(roots, setting)
    return checker.resolve(path, base)
