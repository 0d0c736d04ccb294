"""What every source parser produces: records, per-line errors, and the errors that stop a parse.

Pure Python (no Django): the importers, the CLI and the tests share these types.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from humanbeauty.errors import DomainError
from humanbeauty.paths import AllowedRoots, PathOutsideRoots, resolve_inside

Scale = tuple[float, float]
MAX_SCALE = 1e9


@dataclass(frozen=True)
class SourceRecord:
    """One image of a source as its label file describes it.

    `path` is relative to the dataset root as the dataset lays it out (for a manifest: as written
    in the manifest, relative to the manifest's folder, or absolute). `normalized` is the raw score
    min-max normalised to [0, 1] over [score_min, score_max], clipped; None when there is no score.
    `extra` keeps everything else the label file says about the image (JSON-serialisable).
    """

    path: str
    raw_score: float | None
    score_min: float
    score_max: float
    normalized: float | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceError:
    """A line that could not be used: the other lines of the file are still imported."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass
class ParseResult:
    """The records and line errors of one parse, and where the record paths are rooted."""

    kind: str
    base: Path  # the folder that relative record paths are relative to
    label_files: list[Path]
    scale: Scale | None  # the declared scale (None for a manifest without --scale)
    records: list[SourceRecord] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def resolve(self, record: SourceRecord, roots: Iterable[str | Path] | AllowedRoots) -> Path:
        """The real file behind `record`, refused (PathOutsideRoots) outside the import roots.

        `roots` may be an AllowedRoots, to reuse its folder cache over many records.
        """
        return resolve_inside(record.path, roots, base=self.base)


class SourceFileError(DomainError, code="bad_source"):
    """The label file as a whole cannot be used (unreadable, wrong header, unknown kind...)."""


class MissingLabelFile(SourceFileError, FileNotFoundError):
    """The label file a dataset needs is not where the dataset puts it."""

    code = "missing_label_file"


def normalize(raw: float | None, score_min: float, score_max: float) -> float | None:
    """Min-max normalise `raw` from [score_min, score_max] to [0, 1], clipped; None stays None."""
    if raw is None:
        return None
    value = (raw - score_min) / (score_max - score_min)
    return min(1.0, max(0.0, value))


def check_scale(scale: Iterable[float], *, what: str = "scale") -> Scale:
    """A (min, max) pair of finite numbers with min < max, or ValueError saying what is wrong."""
    lo, hi = (float(v) for v in scale)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{what} must be finite numbers, got [{lo}, {hi}]")
    if lo >= hi:
        raise ValueError(f"{what} minimum must be below its maximum, got [{lo}, {hi}]")
    if max(abs(lo), abs(hi)) > MAX_SCALE:
        # A span beyond this squeezes every real score to one value (±1e308 made them all 0).
        raise ValueError(f"{what} must lie within ±{MAX_SCALE:g}, got [{lo:g}, {hi:g}]")
    return (lo, hi)


class LineError(ValueError):
    """Raised inside a parser for one bad line; the builder turns it into a SourceError."""


# A plain decimal number: Python's float() would also take "1_0", "inf" and "nan".
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def parse_number(text: Any, what: str = "score") -> float:
    """A finite float from a label-file field, or LineError naming the field and the value."""
    if isinstance(text, bool):
        raise LineError(f"{what} is not a number: {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        s = str(text).strip()
        if not s:
            raise LineError(f"{what} is missing")
        if not _NUMBER.fullmatch(s):
            raise LineError(f"{what} is not a number: {s!r}")
        value = float(s)
    if not math.isfinite(value):
        raise LineError(f"{what} is not a finite number: {text!r}")
    return value


def dataset_path(text: str) -> str:
    """A relative POSIX path inside the dataset root, or LineError (absolute, empty, `..` out)."""
    s = str(text).strip().replace("\\", "/")
    if not s:
        raise LineError("image path is empty")
    if "\x00" in s:
        raise LineError("image path contains a NUL byte")
    p = PurePosixPath(s)
    if p.is_absolute() or re.match(r"^[A-Za-z]:", s):
        raise LineError(f"image path must be relative to the dataset root: {s!r}")
    depth = 0
    for part in p.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise LineError(f"image path leaves the dataset root: {s!r}")
    return s


class RecordBuilder:
    """Collects records and errors for one parse: checks scores, drops duplicate paths.

    With `roots`, every record path is also resolved against `base` (symlinks followed) and a
    path outside the import roots becomes a line error instead of a record.
    """

    def __init__(
        self,
        kind: str,
        base: Path,
        label_files: list[Path],
        scale: Scale | None,
        roots: Iterable[str | Path] | None = None,
    ) -> None:
        self.result = ParseResult(kind=kind, base=base, label_files=label_files, scale=scale)
        self._seen: dict[str, str] = {}
        self._roots = None if roots is None else AllowedRoots(roots)
        self._base = str(base)

    def finish(self) -> ParseResult:
        """The result, its errors in file order then line order (files read in two passes)."""
        order = {str(f): i for i, f in enumerate(self.result.label_files)}
        self.result.errors.sort(key=lambda e: (order.get(e.file, len(order)), e.line or 0))
        return self.result

    def error(self, file: str | Path, line: int | None, message: str) -> None:
        self.result.errors.append(SourceError(str(file), line, message))

    def add(
        self,
        file: str | Path,
        line: int | None,
        path: str,
        raw: float | None,
        extra: dict[str, Any] | None = None,
        *,
        scale: Scale | None = None,
    ) -> SourceRecord | None:
        """Add one record; a score outside the scale or a repeated path becomes a line error."""
        lo, hi = scale or self.result.scale or (0.0, 1.0)
        if raw is not None:
            eps = 1e-9 * (hi - lo)
            if raw < lo - eps or raw > hi + eps:
                msg = f"score {raw:g} is outside the declared scale [{lo:g}, {hi:g}]"
                self.error(file, line, msg)
                return None
        where = f"{file}:{line}" if line is not None else str(file)
        if path in self._seen:
            msg = f"duplicate image path {path!r} (first listed at {self._seen[path]})"
            self.error(file, line, msg)
            return None
        if self._roots is not None:
            try:
                self._roots.real(path, self._base)
            except PathOutsideRoots as exc:
                self.error(file, line, exc.message)
                return None
        self._seen[path] = where
        record = SourceRecord(
            path=path,
            raw_score=raw,
            score_min=lo,
            score_max=hi,
            normalized=normalize(raw, lo, hi),
            extra=extra or {},
        )
        self.result.records.append(record)
        return record
