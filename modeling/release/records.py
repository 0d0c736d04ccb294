"""One flat record per image: the columns of the Parquet and CSV files and the WebDataset json.

Column names come from the standard's keys: ``{key}`` (consensus MOS), ``{key}_std``,
``{key}_n`` (raters) and ``{key}_level`` (verbal level) for each of the 12 dimensions, in the
official order. Overall-only images have null dimension columns and their score in ``overall``.
"""

from __future__ import annotations

from bisect import bisect_right

from humanbeauty.standard import DIMENSIONS, LEVEL_THRESHOLDS, LEVELS

from .config import N_DIMS, ReleaseRow
from .errors import ReleaseDataError

KIND_OVERALL = "overall"  # HumanBeauty-58K style: an overall score only
KIND_EXPERT = "12dim"  # HumanBeauty-50K style: the 12 dimensions
KINDS = (KIND_OVERALL, KIND_EXPERT)

HEAD: tuple[tuple[str, str], ...] = (
    ("path", "string"),  # the image file, relative to the release directory
    ("image_id", "int64"),
    ("split", "string"),
    ("source", "string"),
    ("kind", "string"),
    ("is_expert", "bool"),
    ("overall", "float64"),
    ("overall_level", "string"),
)
DIMS: tuple[tuple[str, str], ...] = tuple(
    col
    for d in DIMENSIONS
    for col in (
        (d.key, "float64"),
        (f"{d.key}_std", "float64"),
        (f"{d.key}_n", "int32"),
        (f"{d.key}_level", "string"),
    )
)
TAIL: tuple[tuple[str, str], ...] = (
    ("name", "string"),  # stable file name, {sha256[:16]}.{ext}; also the WebDataset key stem
    ("sha256", "string"),  # of the original stored file
    ("phash", "string"),
    ("cluster", "int64"),  # near-duplicate cluster (null: alone)
    ("width", "int32"),  # of the released file (after any resize)
    ("height", "int32"),
    ("format", "string"),  # of the original stored file
    ("original_file", "string"),  # where the image was left, for images=none; else null
    ("licence", "string"),  # the image's terms: its own over its source's ("unknown": none)
    ("consent_basis", "string"),
)
COLUMNS: tuple[tuple[str, str], ...] = HEAD + DIMS + TAIL
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)
COL = {name: i for i, name in enumerate(COLUMN_NAMES)}
DIM_COLS = tuple(COL[d.key] for d in DIMENSIONS)
_NULL_DIMS: tuple[None, ...] = (None,) * len(DIMS)
_NONE12: tuple[None, ...] = (None,) * N_DIMS



def _fill_chain(i: int) -> tuple[int, ...]:
    chain = [i]
    key = DIMENSIONS[i].key
    while key in _PARENT:
        chain.append(_PARENT[key])
        key = DIMENSIONS[chain[-1]].key
    return tuple(chain)


# Used to fill a null ("not applicable") dimension in the official files, which hold numbers
# only: the dimension's parent, grandparent, ... (facial_brightness -> facial_aesthetic ->
# comprehensive_aesthetic), the first one rated; the overall score when none is.
_PARENT = {child: i for i, d in enumerate(DIMENSIONS) for child in d.children}
FILL_CHAIN: tuple[tuple[int, ...], ...] = tuple(_fill_chain(i) for i in range(N_DIMS))


def level_of(score: float) -> str:
    """``humanbeauty.standard.score_to_level`` for a score already checked to be in [0, 1]
    (bisect on the standard's thresholds: a few times faster, the same answer)."""
    return LEVELS[bisect_right(LEVEL_THRESHOLDS, score)]


def _unit(value, what: str, image_id: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReleaseDataError(f"image {image_id}: {what} {value!r} is not a number")
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ReleaseDataError(f"image {image_id}: {what} {value!r} is outside [0, 1]")
    return float(value)


def check_overall(row: ReleaseRow) -> float:
    value = row.overall
    if value is None and row.scores:
        value = row.scores[-1]
    if value is None:
        raise ReleaseDataError(
            f"image {row.image_id} has no overall score (neither `overall` nor a comprehensive "
            "score): leave it out of the selection or rate it"
        )
    return _unit(value, "overall score", row.image_id)


def dimension_columns(row: ReleaseRow) -> tuple:
    """The 48 dimension columns (score, std, n, level for each of the 12), checked."""
    scores = row.scores
    if scores is None:
        return _NULL_DIMS
    if len(scores) != N_DIMS:
        raise ReleaseDataError(
            f"image {row.image_id}: expected {N_DIMS} scores in the official order, "
            f"got {len(scores)}"
        )
    std = row.std if row.std is not None else _NONE12
    n = row.n if row.n is not None else _NONE12
    if len(std) != N_DIMS or len(n) != N_DIMS:
        raise ReleaseDataError(
            f"image {row.image_id}: std and n need {N_DIMS} values each, like scores"
        )
    out: list = []
    for dim, s, sd, k in zip(DIMENSIONS, scores, std, n, strict=True):
        if s is None:
            out += (None, None if sd is None else float(sd), k, None)
        else:
            s = _unit(s, dim.key, row.image_id)
            out += (s, None if sd is None else float(sd), k, level_of(s))
    return tuple(out)


def official_scores(dims: tuple, overall: float) -> tuple[list[float], list[bool] | None]:
    """The 12 numbers of a 50K label line, and the mask (True = rated) when one is null."""
    values = dims[0::4]
    if None not in values:
        return list(values), None
    filled = []
    for chain in FILL_CHAIN:
        for i in chain:
            if values[i] is not None:
                filled.append(values[i])
                break
        else:
            filled.append(overall)
    return filled, [v is not None for v in values]


# The WebDataset json of a sample: the same facts as a row, with no null anywhere, so that a
# reader that guesses types from the first few samples (``datasets``' "webdataset" loader)
# guesses them right whatever the order: the 12 dimensions as lists in the official order, a
# mask saying which are rated, and a fixed placeholder where a value is absent.
NO_SCORE = -1.0  # in ``scores``/``std`` where a dimension has no value (outside [0, 1])
WDS_JSON: tuple[tuple[str, str], ...] = (
    *HEAD,
    ("scores", "list:float64"),  # 12, official order; NO_SCORE where not rated
    ("score_mask", "list:bool"),  # True = rated
    ("std", "list:float64"),  # NO_SCORE where unknown
    ("n", "list:int32"),  # raters; 0 where none
    ("levels", "list:string"),  # "" where not rated
    *TAIL,
)
_TAIL_PLACEHOLDER = {"phash": "", "cluster": -1, "original_file": "", "licence": "",
                     "consent_basis": ""}  # for a null
_HEAD_N, _TAIL_START = len(HEAD), len(HEAD) + len(DIMS)


def wds_record(record: tuple) -> dict:
    """The typed WebDataset json of a row (a tuple in COLUMNS order)."""
    out = dict(zip((n for n, _ in HEAD), record[:_HEAD_N], strict=True))
    dims = record[_HEAD_N:_TAIL_START]
    scores, std, n, levels = dims[0::4], dims[1::4], dims[2::4], dims[3::4]
    out["scores"] = [NO_SCORE if v is None else v for v in scores]
    out["score_mask"] = [v is not None for v in scores]
    out["std"] = [NO_SCORE if v is None else v for v in std]
    out["n"] = [0 if v is None else int(v) for v in n]
    out["levels"] = ["" if v is None else v for v in levels]
    for (name, _t), value in zip(TAIL, record[_TAIL_START:], strict=True):
        out[name] = _TAIL_PLACEHOLDER[name] if value is None else value
    return out
