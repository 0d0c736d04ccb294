"""Full-decode validation of an image file (no Django): the gate every import and job passes.

`inspect_image` answers "is this a sound image, and what is it?" (size, format, sha256) and
raises `InvalidImage` otherwise; the web import registers images by its sha256.
`validate_image` adds the pool's rules (short side, aspect ratio) and returns every reason that
applies, as a filter job records them.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, Generic, Self, TypeVar

from PIL import Image, ImageFile, UnidentifiedImageError

from humanbeauty.errors import DomainError

T = TypeVar("T")

# Same order of magnitude as PIL's own default (89.5 Mpx), but ours is explicit and per call:
# PIL's limit is a process-wide global and only warns below twice its value.
DEFAULT_MAX_PIXELS = 90_000_000

# Formats the pool accepts. An allowlist keeps PIL from handing input to plugins that shell
# out or parse exotic containers (EPS runs Ghostscript). JPEG includes MPO, the multi-picture
# JPEG many cameras write: PIL's JPEG opener returns it.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

PathOrFile = str | Path | BinaryIO


class Reason(StrEnum):
    """Machine-readable rejection reasons (a stable contract: job reports print them)."""

    CORRUPT = "corrupt"  # not an image, unsupported format, truncated or undecodable
    DECOMPRESSION_BOMB = "decompression_bomb"  # more pixels than the configured maximum
    TOO_SMALL = "too_small"  # short side below the minimum
    ASPECT_RATIO = "aspect_ratio"  # long side / short side above the maximum


class InvalidImage(DomainError):
    """A file that is not a sound image.

    `reason` is a `Reason` value (plain str, also exposed as `code` for the API's error
    handler) and the message says what exactly was wrong.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = str(reason)
        self.code = self.reason

    def __reduce__(self) -> tuple[type[InvalidImage], tuple[str, str]]:
        # Pickle with both arguments: worker processes and task queues send it across.
        return (type(self), (self.reason, self.message))


@dataclass(frozen=True)
class FileOutcome(Generic[T]):
    """One file of a batch (`hash_files`, `ClipFilter.score_files`): its `value`, or why it
    has none: a `Reason` value, or "unreadable" for a file that could not be read, and what
    exactly was wrong. A bad file is an outcome, not an error: the batch goes on."""

    path: str
    value: T | None
    reason: str | None = None
    message: str = ""

    @classmethod
    def refused(cls, path: str, exc: InvalidImage | OSError) -> Self:
        if isinstance(exc, InvalidImage):
            return cls(path, None, exc.reason, exc.message)
        return cls(path, None, "unreadable", str(exc))


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str
    sha256: str

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_bytes(source: PathOrFile) -> bytes:
    """All bytes of a path or a file object; a file object is rewound before and after."""
    if isinstance(source, str | Path):
        return Path(source).read_bytes()
    source.seek(0)
    data = source.read()
    source.seek(0)
    return data


def open_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open (header only) an image from bytes, refusing unknown formats and bombs.

    Raises InvalidImage. The pixel count is checked from the header, before any pixel is
    decoded, so a bomb is refused without allocating it. Shared with `hashing` so that a file
    hashed without validation is guarded the same way.
    """
    if not data:
        raise InvalidImage(Reason.CORRUPT, "the file is empty")
    try:
        with warnings.catch_warnings():
            # PIL warns above its global limit; we apply our own limit below instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        # PIL refuses outright above twice its global limit, whatever max_pixels says.
        raise InvalidImage(Reason.DECOMPRESSION_BOMB, f"decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise InvalidImage(
            Reason.CORRUPT,
            "not an image file, or not one of the accepted formats " + ", ".join(ALLOWED_FORMATS),
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(Reason.CORRUPT, f"the image header cannot be read: {exc}") from None
    width, height = img.size
    if width < 1 or height < 1:
        raise InvalidImage(Reason.CORRUPT, f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise InvalidImage(
            Reason.DECOMPRESSION_BOMB,
            f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,}",
        )
    return img


def inspect_image(source: PathOrFile, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Decode the whole image and return its size, format and sha256, or raise InvalidImage."""
    return decode_checked(source, max_pixels=max_pixels)[0]


def decode_checked(
    source: PathOrFile,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    prepare: Callable[[Image.Image], object] | None = None,
    measure: Callable[[Image.Image], T] | None = None,
) -> tuple[ImageInfo, T | None]:
    """Decode the whole image, after `prepare(img)` (a JPEG draft: it still entropy-decodes
    every coefficient), and return its ImageInfo and `measure(img)` of the decoded image; or
    raise InvalidImage. The one check of every way into the pool.

    Truncated files fail: decoding never pads missing data (PIL's LOAD_TRUNCATED_IMAGES must
    stay off; if some library turned it on we refuse to give a false "sound" answer).
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on in this process, so truncated images "
            "would decode silently; turn it off before validating images"
        )
    data = read_bytes(source)
    sha256 = hashlib.sha256(data).hexdigest()
    img = open_image(data, max_pixels=max_pixels)
    fmt = (img.format or "").upper()
    width, height = img.size
    measured = None
    try:
        with img:
            if prepare is not None:
                prepare(img)
            img.load()  # the full decode: raises on truncated or damaged pixel data
            if measure is not None:
                measured = measure(img)
        if fmt == "PNG":
            # A PNG whose pixel data is complete but whose last chunks are cut off decodes
            # fine; verify() walks every chunk and checks its CRC, and fails on those.
            with Image.open(io.BytesIO(data), formats=("PNG",)) as again:
                again.verify()
    except Image.DecompressionBombError as exc:  # e.g. a GIF/TIFF frame larger than the header
        raise InvalidImage(Reason.DECOMPRESSION_BOMB, f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        detail = "truncated" if "truncated" in str(exc).lower() else "damaged"
        raise InvalidImage(
            Reason.CORRUPT, f"the {fmt} file is {detail} and cannot be fully decoded: {exc}"
        ) from None
    return ImageInfo(width=width, height=height, format=fmt, sha256=sha256), measured


@dataclass(frozen=True)
class ValidationRules:
    """The pool's size rules; a filter job keeps a snapshot of these in its configuration."""

    min_short_side: int = 256
    # Long side / short side; 3.0 admits 3:1 panoramas and 1:3 phone screenshots, no strips.
    max_aspect_ratio: float = 3.0
    max_pixels: int = DEFAULT_MAX_PIXELS

    def reasons_for(self, width: int, height: int) -> list[str]:
        """Every size rule that (width, height) breaks, in Reason order."""
        reasons: list[str] = []
        short, long = min(width, height), max(width, height)
        if short < self.min_short_side:
            reasons.append(Reason.TOO_SMALL.value)
        if long > self.max_aspect_ratio * short:
            reasons.append(Reason.ASPECT_RATIO.value)
        return reasons

    def explain(self, width: int, height: int) -> str:
        parts = []
        short, long = min(width, height), max(width, height)
        if short < self.min_short_side:
            parts.append(f"short side {short} px < minimum {self.min_short_side} px")
        if long > self.max_aspect_ratio * short:
            parts.append(f"aspect ratio {long / short:.2f} > maximum {self.max_aspect_ratio:g}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Validation:
    """Outcome of `validate_image`: `info` is None when the file could not be decoded."""

    info: ImageInfo | None
    reasons: tuple[str, ...]
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.reasons


def validate_image(source: PathOrFile, rules: ValidationRules | None = None) -> Validation:
    """Full decode plus the size rules; never raises for a bad image, reports every reason."""
    rules = rules or ValidationRules()
    try:
        info = inspect_image(source, max_pixels=rules.max_pixels)
    except InvalidImage as exc:
        return Validation(info=None, reasons=(exc.reason,), message=exc.message)
    reasons = rules.reasons_for(info.width, info.height)
    return Validation(info, tuple(reasons), rules.explain(info.width, info.height))
