"""What a release is built from: rows (one per image) and a configuration.

Pure Python (no Django): the Django side selects rows from the database and streams them in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from curation.sources.terms import UNKNOWN, TermsError, declared_licence, licence_of
from humanbeauty.standard import DIMENSION_KEYS

from .errors import ReleaseConfigError

SPLITS: tuple[str, ...] = ("train", "val", "test")  # canonical order everywhere
FORMATS: tuple[str, ...] = ("official", "parquet", "webdataset", "csv")
IMAGE_MODES: tuple[str, ...] = ("copy", "link", "none")
# What the official layout does with a 12-dim image that has a not-applicable dimension: fill
# it from the nearest rated parent (flagged in score_mask), drop the image from the layout, or
# write it as an overall-only line. The other formats keep the nulls whatever the choice.
NA_POLICIES: tuple[str, ...] = ("fill", "drop", "overall")
# Formats that name each image by its file path: with one of them the images are loose files.
FILE_FORMATS: tuple[str, ...] = ("official", "parquet", "csv")
N_DIMS = len(DIMENSION_KEYS)


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """One image as the release sees it.

    ``overall`` is the normalised overall score in [0, 1] (for 12-dimension rows, the
    comprehensive score); ``scores``/``std``/``n`` are the 12 consensus values in the official
    order (``humanbeauty.standard.DIMENSION_KEYS``), ``None`` for an overall-only row; a
    ``None`` inside ``scores`` means "not applicable".
    """

    image_id: int
    file: str | None  # absolute path of the stored image file (None: no file)
    sha256: str
    phash: str | None  # hex
    cluster: int | None  # near-duplicate cluster id (None: alone)
    source: str  # source name, or the rating project's name for 12-dim images
    width: int
    height: int
    format: str
    overall: float | None
    scores: tuple[float | None, ...] | None = None
    std: tuple[float | None, ...] | None = None
    n: tuple[int, ...] | None = None
    # The terms that hold for the image (its own over its source's; curation.sources.terms).
    licence: str = UNKNOWN
    consent_basis: str = UNKNOWN

    @property
    def is_expert(self) -> bool:
        return self.scores is not None


def _default_split() -> dict[str, float]:
    return {"train": 0.8, "val": 0.1, "test": 0.1}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int to Python


def _require_text(value: object, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ReleaseConfigError(f"a release needs a {what}")


def _require_positive(attr: str, value: object) -> None:
    if not _is_int(value) or value < 1:
        raise ReleaseConfigError(f"{attr} must be a positive integer, got {value!r}")


def _check_split(split: object) -> None:
    """Known split names, each with a finite ratio >= 0, the ratios summing to 1."""
    if not isinstance(split, dict) or not split:
        raise ReleaseConfigError(
            "split must map split names to ratios, e.g. train=0.8,val=0.1,test=0.1"
        )
    unknown = sorted(set(map(str, split)) - set(SPLITS))
    if unknown:
        raise ReleaseConfigError(
            f"unknown split(s) {', '.join(unknown)}; splits are {', '.join(SPLITS)}"
        )
    for key, ratio in split.items():
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, int | float)
            or not math.isfinite(ratio)
            or ratio < 0
        ):
            raise ReleaseConfigError(
                f"split ratio of {key} must be a number >= 0, got {ratio!r}"
            )
    total = math.fsum(split.values())
    if abs(total - 1.0) > 1e-9:
        raise ReleaseConfigError(
            f"split ratios must sum to 1, got {total:g} "
            f"({', '.join(f'{k}={v:g}' for k, v in split.items())})"
        )


def _canonical_formats(formats: str | tuple[str, ...]) -> tuple[str, ...]:
    """The formats (a tuple, or "a,b" as the command line gives them) in FORMATS' order."""
    if isinstance(formats, str):
        formats = tuple(f for f in formats.split(",") if f)
    formats = tuple(formats)
    bad = sorted(set(formats) - set(FORMATS))
    if bad:
        raise ReleaseConfigError(
            f"unknown format(s) {', '.join(map(str, bad))}; formats are {', '.join(FORMATS)}"
        )
    if not formats:
        raise ReleaseConfigError(f"choose at least one format of {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in formats)


def _check_images(images: str, max_side: int | None) -> None:
    if images not in IMAGE_MODES:
        raise ReleaseConfigError(
            f"images must be one of {', '.join(IMAGE_MODES)}, got {images!r}"
        )
    if max_side is not None:
        _require_positive("max_side", max_side)
        if images == "none":
            raise ReleaseConfigError(
                "max_side resizes copied images; it needs images=copy or link"
            )


def _check_card_license(identifier: object) -> None:
    """The card's `license:` is a Hub identifier: letters, digits and -._ only."""
    if (not isinstance(identifier, str) or not identifier
            or not all(c.isalnum() or c in "-._" for c in identifier)):
        raise ReleaseConfigError(
            f"license must be a licence identifier such as cc-by-4.0 or unknown, got "
            f"{identifier!r}"
        )


def _check_na(na: str) -> None:
    if na not in NA_POLICIES:
        raise ReleaseConfigError(
            f"na must be one of {', '.join(NA_POLICIES)}, got {na!r}"
        )


def _require_official_test(formats: tuple[str, ...], split: dict[str, float]) -> None:
    if "official" in formats and not split.get("test"):
        raise ReleaseConfigError(
            "the official layout needs a test split (its scripts evaluate on "
            "test_label.jsonl): give test a ratio above 0, e.g. "
            "train=0.8,val=0.1,test=0.1, or leave the official format out"
        )


@dataclass(frozen=True)
class ReleaseConfig:
    """How to build a release. Checked on creation: a bad value raises ReleaseConfigError."""

    name: str
    version: str
    seed: int = 0
    split: dict[str, float] = field(default_factory=_default_split)
    formats: tuple[str, ...] = FORMATS
    images: str = "copy"  # copy | link (hard link, copy across filesystems) | none
    max_side: int | None = None  # resize larger images when copying (keeps aspect; JPEG)
    score_bins: int = 5  # equal-width bins of the overall score on [0, 1], for stratification
    shard_size: int = 10_000  # WebDataset samples per tar shard
    license: str = "unknown"  # the dataset card's licence: a Hub identifier (e.g. cc-by-4.0)
    na: str = "fill"  # the official layout's not-applicable dimensions: NA_POLICIES
    # The licence the release declares, from the platform's table (curation.sources.terms);
    # the build refuses images whose terms it does not allow. "": none declared (nothing is
    # refused; the mix of the images' licences is stated).
    licence: str = ""

    def __post_init__(self) -> None:
        _require_text(self.name, "name")
        _require_text(self.version, "version")
        if not _is_int(self.seed):
            raise ReleaseConfigError(f"seed must be an integer, got {self.seed!r}")
        _check_split(self.split)
        # Canonical order, no repeats: the same formats in any order build the same release.
        object.__setattr__(self, "formats", _canonical_formats(self.formats))
        _check_images(self.images, self.max_side)
        for attr in ("score_bins", "shard_size"):
            _require_positive(attr, getattr(self, attr))
        _check_card_license(self.license)
        try:
            object.__setattr__(self, "licence", declared_licence(self.licence))
        except TermsError as exc:
            raise ReleaseConfigError(exc.message) from None
        _check_na(self.na)
        _require_official_test(self.formats, self.split)

    @property
    def loose_images(self) -> bool:
        """Images stored once, as files (images/, or the official layout's folders), which
        every format names by path: whenever a format that reads files is built."""
        return self.images != "none" and any(f in self.formats for f in FILE_FORMATS)

    @property
    def shard_images(self) -> bool:
        """Images stored once, inside the WebDataset shards: when no format reads files (else
        the shards' json names the loose file instead of holding a second copy)."""
        return self.images != "none" and "webdataset" in self.formats and not self.loose_images

    @property
    def card_license(self) -> str:
        """The card's `license:`: the one given, else the declared licence's identifier."""
        if self.license == "unknown" and self.licence:
            return licence_of(self.licence).hub_id
        return self.license

    @property
    def splits(self) -> tuple[str, ...]:
        """The configured splits in canonical order (train, val, test)."""
        return tuple(s for s in SPLITS if s in self.split)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, keys in a fixed order (for the manifest and the datasheet)."""
        return {
            "name": self.name,
            "version": self.version,
            "seed": self.seed,
            "split": {s: float(self.split[s]) for s in self.splits},
            "formats": list(self.formats),
            "images": self.images,
            "max_side": self.max_side,
            "score_bins": self.score_bins,
            "shard_size": self.shard_size,
            "license": self.license,
            "na": self.na,
            "licence": self.licence,
        }
