"""The HumanBeauty 12-dimensional aesthetic standard.

This is the only place where the twelve dimensions, their hierarchy and the five verbal levels
are spelled out. Every layer (database columns, API, rater page, exports, model heads) reads
them from here. Pure Python on purpose: model code imports it on machines without Django.

Facts follow the HumanAesExpert paper and its official code (order and names as they use them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Dimension:
    index: int  # 1-based, the position in the official 12-score vector
    key: str
    name: str
    group: str  # "face", "general_appearance", "environment" or "overall"
    children: tuple[str, ...] = ()  # keys this score aggregates (empty for a leaf)
    # A rater may answer "not applicable" (stored as null, never 0): a face hidden by a back
    # view or a mask, a close-up that shows no outfit or body.
    nullable: bool = False

    @property
    def is_leaf(self) -> bool:
        return not self.children


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(1, "facial_brightness", "Facial Brightness", "face", nullable=True),
    Dimension(2, "facial_feature_clarity", "Facial Feature Clarity", "face", nullable=True),
    Dimension(3, "facial_skin_tone", "Facial Skin Tone", "face", nullable=True),
    Dimension(4, "facial_structure", "Facial Structure", "face", nullable=True),
    Dimension(5, "facial_contour_clarity", "Facial Contour Clarity", "face", nullable=True),
    Dimension(
        6,
        "facial_aesthetic",
        "Facial Aesthetic Score",
        "face",
        children=(
            "facial_brightness",
            "facial_feature_clarity",
            "facial_skin_tone",
            "facial_structure",
            "facial_contour_clarity",
        ),
        nullable=True,
    ),
    Dimension(7, "outfit", "Outfit", "general_appearance", nullable=True),
    Dimension(8, "body_shape", "Body Shape", "general_appearance", nullable=True),
    Dimension(9, "looks", "Looks", "general_appearance"),
    Dimension(10, "environment", "Environment", "environment"),
    Dimension(
        11,
        "general_appearance_aesthetic",
        "General Appearance Aesthetic Score",
        "general_appearance",
        children=("outfit", "body_shape", "looks"),
    ),
    Dimension(
        12,
        "comprehensive_aesthetic",
        "Comprehensive Aesthetic Score",
        "overall",
        children=("facial_aesthetic", "environment", "general_appearance_aesthetic"),
    ),
)

DIMENSION_KEYS: tuple[str, ...] = tuple(d.key for d in DIMENSIONS)
BY_KEY: dict[str, Dimension] = {d.key: d for d in DIMENSIONS}
LEAF_KEYS: tuple[str, ...] = tuple(d.key for d in DIMENSIONS if d.is_leaf)
PARENT_KEYS: tuple[str, ...] = tuple(d.key for d in DIMENSIONS if not d.is_leaf)
OVERALL_KEY = "comprehensive_aesthetic"

GROUPS: tuple[tuple[str, str], ...] = (
    ("face", "Face"),
    ("general_appearance", "General appearance"),
    ("environment", "Environment"),
    ("overall", "Comprehensive"),
)

# The five verbal levels, worst to best. A score s in [0, 1] has level LEVELS[i] when
# LEVEL_THRESHOLDS[i-1] <= s < LEVEL_THRESHOLDS[i] (1.0 itself is "excellent").
LEVELS: tuple[str, ...] = ("bad", "poor", "fair", "good", "excellent")
LEVEL_THRESHOLDS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
LEVEL_MIDPOINTS: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)


class StandardError(ValueError):
    """A score set that breaks the standard; the message says which key and why."""


def level_index(score: float) -> int:
    """0-based level of a score in [0, 1]."""
    if not 0.0 <= score <= 1.0 or math.isnan(score):
        raise StandardError(f"score {score!r} is outside [0, 1]")
    for i, threshold in enumerate(LEVEL_THRESHOLDS):
        if score < threshold:
            return i
    return len(LEVELS) - 1


def score_to_level(score: float) -> str:
    return LEVELS[level_index(score)]


def level_to_score(level: str | int) -> float:
    """The midpoint score of a level, given by name or by 1-based number (1 = bad)."""
    if isinstance(level, int):
        if not 1 <= level <= len(LEVELS):
            raise StandardError(f"level number {level} is not in 1..{len(LEVELS)}")
        return LEVEL_MIDPOINTS[level - 1]
    try:
        return LEVEL_MIDPOINTS[LEVELS.index(level.strip().lower())]
    except ValueError:
        raise StandardError(f"unknown level {level!r}; expected one of {LEVELS}") from None


def validate_scores(scores: Mapping[str, object]) -> dict[str, float | None]:
    """Check a full 12-dimension score set and return it normalised to floats/None.

    Every key must be present; null ("not applicable") only where the standard allows it; a
    hidden face means no facial feature can be rated either.
    """
    if not isinstance(scores, Mapping):
        raise StandardError("scores must be an object mapping dimension keys to numbers or null")
    unknown = sorted(set(scores) - set(DIMENSION_KEYS))
    if unknown:
        raise StandardError(f"unknown dimension key(s): {', '.join(map(str, unknown))}")
    missing = [k for k in DIMENSION_KEYS if k not in scores]
    if missing:
        raise StandardError(f"missing dimension key(s): {', '.join(missing)}")
    clean: dict[str, float | None] = {}
    for dim in DIMENSIONS:
        value = scores[dim.key]
        if value is None:
            if not dim.nullable:
                raise StandardError(f"{dim.key}: '{dim.name}' cannot be 'not applicable'")
            clean[dim.key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StandardError(f"{dim.key}: expected a number in [0, 1] or null, got {value!r}")
        value = float(value)
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            raise StandardError(f"{dim.key}: {value} is outside [0, 1]")
        clean[dim.key] = value
    face = BY_KEY["facial_aesthetic"]
    if clean[face.key] is None:
        rated = [k for k in face.children if clean[k] is not None]
        if rated:
            raise StandardError(
                "facial_aesthetic is 'not applicable' (no visible face), so the facial features "
                f"must be too; got scores for {', '.join(rated)}"
            )
    return clean


def scores_to_vector(scores: Mapping[str, float | None]) -> list[float | None]:
    """The official 12-float order."""
    return [scores.get(k) for k in DIMENSION_KEYS]


def vector_to_scores(vector: list[float | None]) -> dict[str, float | None]:
    if len(vector) != len(DIMENSIONS):
        raise StandardError(f"expected {len(DIMENSIONS)} scores, got {len(vector)}")
    return dict(zip(DIMENSION_KEYS, vector, strict=True))


def describe() -> list[dict[str, object]]:
    """The standard as plain data (for the API and the rater page)."""
    return [
        {
            "index": d.index,
            "key": d.key,
            "name": d.name,
            "group": d.group,
            "children": list(d.children),
            "nullable": d.nullable,
        }
        for d in DIMENSIONS
    ]
