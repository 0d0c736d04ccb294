"""What each dimension of the standard means, and what each of its five levels looks like.

The defaults ship with the standard (keyed by `humanbeauty.standard`'s keys and levels, never
spelling the dimensions again); a project's managers may override any text. Pure Python: the
rules for a valid override live here so that any layer can check one.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import DomainError
from .standard import BY_KEY, DIMENSION_KEYS, LEVELS

DEFINITION_MAX = 600
DESCRIPTION_MAX = 300

# key -> (definition, one line per level, worst to best, in the order of standard.LEVELS)
DEFAULT_GUIDES: dict[str, tuple[str, tuple[str, str, str, str, str]]] = {
    "facial_brightness": (
        "How well the face is lit: exposure and evenness of the light on the face, not skin "
        "colour.",
        (
            "Face almost black or burnt out; features lost in shadow or glare.",
            "Clearly too dark or too bright; harsh shadows hide parts of the face.",
            "Acceptable exposure with some uneven light or minor shadows.",
            "Well exposed, soft and even light; small flaws only.",
            "Flattering, even, studio-quality light that models the face.",
        ),
    ),
    "facial_feature_clarity": (
        "How sharply the eyes, nose, mouth and brows are rendered: focus, motion blur, noise "
        "and compression.",
        (
            "Features unrecognisable: heavy blur, noise or blocky compression.",
            "Features visible but soft or smeared; details such as eyelashes lost.",
            "Features clear at normal size; softness shows when zoomed in.",
            "Sharp features with fine detail; little noise.",
            "Crisp, detailed features throughout, even at full size.",
        ),
    ),
    "facial_skin_tone": (
        "The quality of the skin's rendering: natural, even colour and texture (never the "
        "person's complexion itself).",
        (
            "Strong colour cast or blotches; skin looks unnatural or ill.",
            "Noticeable cast, redness or patchy, over-smoothed texture.",
            "Natural overall with some unevenness or slight cast.",
            "Even, natural colour and healthy texture.",
            "Flawless, natural, luminous rendering of the skin.",
        ),
    ),
    "facial_structure": (
        "The harmony of the face's proportions and symmetry as the photo shows them (pose and "
        "lens distortion included).",
        (
            "Strongly distorted or disproportionate (extreme lens, odd angle, deformation).",
            "Clearly unbalanced proportions or awkward angle.",
            "Ordinary proportions; some imbalance.",
            "Balanced, harmonious proportions.",
            "Exceptionally harmonious, well-proportioned face.",
        ),
    ),
    "facial_contour_clarity": (
        "How clearly the outline of the face (jaw, cheeks, chin) stands out from hair and "
        "background.",
        (
            "No visible outline: the face merges with its surroundings.",
            "Outline blurred or cut by shadows in large parts.",
            "Outline visible but soft in places.",
            "Clear, well-defined contour.",
            "Crisp, sculpted contour that separates the face cleanly.",
        ),
    ),
    "facial_aesthetic": (
        "Your overall judgement of the face in this photo, weighing the five facial "
        "dimensions above.",
        (
            "The face looks unattractive in this photo; most facial dimensions are bad.",
            "Below average; several facial dimensions are poor.",
            "An ordinary, average-looking face in this photo.",
            "An attractive face, well photographed.",
            "A striking face, photographed at its best.",
        ),
    ),
    "outfit": (
        "Clothing and accessories: fit, coordination, condition and how well they suit the "
        "person and setting.",
        (
            "Dirty, torn or badly clashing clothes.",
            "Ill-fitting or poorly coordinated outfit.",
            "Ordinary, unremarkable clothes.",
            "Well-fitting, coordinated, tasteful outfit.",
            "Stylish, flattering outfit that lifts the whole image.",
        ),
    ),
    "body_shape": (
        "How the body's proportions and posture appear in this photo (pose, angle and framing "
        "included).",
        (
            "Distorted or awkwardly cut body; unnatural posture.",
            "Unflattering pose or angle; proportions look off.",
            "Ordinary posture and proportions.",
            "Balanced proportions and a good, natural posture.",
            "Elegant posture and proportions, shown at their best.",
        ),
    ),
    "looks": (
        "The person's overall look: expression, grooming, hair and presence.",
        (
            "Unkempt or unpleasant look; expression spoils the image.",
            "Neglected grooming or an awkward expression.",
            "Ordinary look and expression.",
            "Well groomed, pleasant, engaging look.",
            "Charismatic, polished look that draws the eye.",
        ),
    ),
    "environment": (
        "The setting: background, composition, colour and light around the person.",
        (
            "Messy or distracting background; poor composition.",
            "Plain or cluttered setting that adds nothing.",
            "Neutral setting that neither helps nor hurts.",
            "Pleasant setting and composition that support the person.",
            "Beautiful setting and composition that make the image.",
        ),
    ),
    "general_appearance_aesthetic": (
        "Your overall judgement of the person's appearance, weighing outfit, body shape and "
        "looks.",
        (
            "Appearance spoils the image; outfit, body and looks mostly bad.",
            "Below average appearance.",
            "Average appearance.",
            "Attractive appearance.",
            "Outstanding appearance.",
        ),
    ),
    "comprehensive_aesthetic": (
        "The aesthetic quality of the whole image of a person: face, appearance and "
        "environment together.",
        (
            "An unpleasant image of a person; you would discard it.",
            "A weak image with clear flaws.",
            "An ordinary snapshot.",
            "A good image you would keep and share.",
            "An outstanding portrait, professional quality.",
        ),
    ),
}


class GuideError(DomainError, code="invalid_guide"):
    """An override that names an unknown dimension or level, or has text of the wrong shape."""


def default_guides() -> dict[str, dict[str, object]]:
    """The shipped texts as {key: {"definition": str, "levels": {level: str}}}."""
    return {
        key: {"definition": definition, "levels": dict(zip(LEVELS, lines, strict=True))}
        for key, (definition, lines) in DEFAULT_GUIDES.items()
    }


def _text(value: object, where: str, limit: int, errors: list[str]) -> str | None:
    """A cleaned override text; "" or None means: back to the default."""
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(f"{where}: expected text, got {type(value).__name__}")
        return None
    value = " ".join(value.split())
    if len(value) > limit:
        errors.append(f"{where}: at most {limit} characters (got {len(value)})")
        return None
    return value


def validate_overrides(data: object) -> dict[str, dict[str, object]]:
    """Check overrides {key: {"definition"?, "levels"?: {level: text}}} and return them
    cleaned. An empty text (or null) asks for the default back; every fault is listed."""
    if not isinstance(data, Mapping):
        raise GuideError("guides must be an object mapping dimension keys to their texts")
    errors: list[str] = []
    clean: dict[str, dict[str, object]] = {}
    for key, entry in data.items():
        if key not in BY_KEY:
            errors.append(f"unknown dimension {key!r}; expected one of {', '.join(DIMENSION_KEYS)}")
            continue
        if not isinstance(entry, Mapping):
            errors.append(f"{key}: expected an object with 'definition' and/or 'levels'")
            continue
        extra = sorted(set(entry) - {"definition", "levels"})
        if extra:
            errors.append(f"{key}: unknown field(s) {', '.join(map(str, extra))}")
        out: dict[str, object] = {}
        if "definition" in entry:
            text = _text(entry["definition"], f"{key}.definition", DEFINITION_MAX, errors)
            if text is not None:
                out["definition"] = text
        levels = entry.get("levels", {})
        if not isinstance(levels, Mapping):
            errors.append(f"{key}.levels: expected an object mapping level names to text")
            levels = {}
        out_levels: dict[str, str] = {}
        for level, value in levels.items():
            if level not in LEVELS:
                expected = ", ".join(LEVELS)
                errors.append(f"{key}: unknown level {level!r}; expected one of {expected}")
                continue
            text = _text(value, f"{key}.levels.{level}", DESCRIPTION_MAX, errors)
            if text is not None:
                out_levels[level] = text
        if out_levels:
            out["levels"] = out_levels
        clean[key] = out
    if errors:
        raise GuideError("; ".join(errors[:5]), errors=errors)
    return clean


def merge_overrides(
    current: Mapping[str, Mapping[str, object]], changes: Mapping[str, Mapping[str, object]]
) -> dict[str, dict[str, object]]:
    """`current` overrides with (validated) `changes` laid over them; empty texts drop out."""
    merged: dict[str, dict[str, object]] = {
        key: {"definition": entry.get("definition", ""), "levels": dict(entry.get("levels", {}))}
        for key, entry in current.items()
    }
    for key, entry in changes.items():
        target = merged.setdefault(key, {"definition": "", "levels": {}})
        if "definition" in entry:
            target["definition"] = entry["definition"]
        target["levels"].update(entry.get("levels", {}))
    result: dict[str, dict[str, object]] = {}
    for key in DIMENSION_KEYS:  # the standard's order; nothing empty or default is kept
        entry = merged.get(key)
        if not entry:
            continue
        definition, lines = DEFAULT_GUIDES[key]
        defaults = dict(zip(LEVELS, lines, strict=True))
        kept: dict[str, object] = {}
        if entry["definition"] and entry["definition"] != definition:
            kept["definition"] = entry["definition"]
        levels = {
            lv: entry["levels"][lv]
            for lv in LEVELS
            if entry["levels"].get(lv) and entry["levels"][lv] != defaults[lv]
        }
        if levels:
            kept["levels"] = levels
        if kept:
            result[key] = kept
    return result


def effective_guides(
    overrides: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[str, dict[str, object]]:
    """The texts a project shows: the defaults with its overrides laid over them, plus which
    texts are the project's own (`custom`: "definition" and/or level names)."""
    overrides = overrides or {}
    guides = default_guides()
    for key, guide in guides.items():
        own = overrides.get(key, {})
        custom: list[str] = []
        if own.get("definition"):
            guide["definition"] = own["definition"]
            custom.append("definition")
        for level, text in own.get("levels", {}).items():
            if text:
                guide["levels"][level] = text
                custom.append(level)
        guide["custom"] = custom
    return guides
