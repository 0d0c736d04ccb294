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
        if not isinstance(self.name, str) or not self.name.strip():
            raise ReleaseConfigError("a release needs a name")
        if not isinstance(self.version, str) or not self.version.strip():
            raise ReleaseConfigError("a release needs a version")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ReleaseConfigError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.split, dict) or not self.split:
            raise ReleaseConfigError(
                "split must map split names to ratios, e.g. train=0.8,val=0.1,test=0.1"
            )
        unknown = sorted(set(map(str, self.split)) - set(SPLITS))
        if unknown:
            raise ReleaseConfigError(
                f"unknown split(s) {', '.join(unknown)}; splits are {', '.join(SPLITS)}"
            )
        for key, ratio in self.split.items():
            if (
                isinstance(ratio, bool)
                or not isinstance(ratio, int | float)
                or not math.isfinite(ratio)
                or ratio < 0
            ):
                raise ReleaseConfigError(
                    f"split ratio of {key} must be a number >= 0, got {ratio!r}"
                )
        total = math.fsum(self.split.values())
        if abs(total - 1.0) > 1e-9:
            raise ReleaseConfigError(
                f"split ratios must sum to 1, got {total:g} "
                f"({', '.join(f'{k}={v:g}' for k, v in self.split.items())})"
            )
        formats = self.formats
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
        # Canonical order, no repeats: the same formats in any order build the same release.
        object.__setattr__(self, "formats", tuple(f for f in FORMATS if f in formats))
        if self.images not in IMAGE_MODES:
            raise ReleaseConfigError(
                f"images must be one of {', '.join(IMAGE_MODES)}, got {self.images!r}"
            )
        if self.max_side is not None and (
            isinstance(self.max_side, bool) or not isinstance(self.max_side, int)
            or self.max_side < 1
        ):
            raise ReleaseConfigError(f"max_side must be a positive integer, got {self.max_side!r}")
        if self.max_side is not None and self.images == "none":
            raise ReleaseConfigError("max_side resizes copied images; it needs images=copy or link")
        for attr in ("score_bins", "shard_size"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ReleaseConfigError(f"{attr} must be a positive integer, got {value!r}")

        if (not isinstance(self.license, str) or not self.license
                or not all(c.isalnum() or c in "-._" for c in self.license)):
            raise ReleaseConfigError(
                f"license must be a licence identifier such as cc-by-4.0 or unknown, got "
                f"{self.license!r}"
            )

        try:
            object.__setattr__(self, "licence", declared_licence(self.licence))
        except TermsError as exc:
            raise ReleaseConfigError(exc.message) from None

        if self.na not in NA_POLICIES:
            raise ReleaseConfigError(
                f"na must be one of {', '.join(NA_POLICIES)}, got {self.na!r}"
            )
        if "official" in self.formats and not self.split.get("test"):
            raise ReleaseConfigError(
                "the official layout needs a test split (its scripts evaluate on "
                "test_label.jsonl): give test a ratio above 0, e.g. "
                "train=0.8,val=0.1,test=0.1, or leave the official format out"
            )

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
