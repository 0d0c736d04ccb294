"""Read a release in the official HumanAesExpert layout.

``HumanBeauty/{train,val,test}_label.jsonl``; the split may be named ``validation`` too (the
name loaders and the Hub use for ``val``). Parsing needs no torch (``ReleaseDataset`` is a
plain map-style dataset that ``torch.utils.data.DataLoader`` takes as it is).

Each line has ``image_name`` (relative to the ``HumanBeauty/`` root), ``source``, ``score`` (a
float for overall-only images, with ``text_level``; a list of 12 for 12-dimension images, null =
not applicable) and ``is_expert`` (JSON bool or 0/1). An overall-only image becomes eleven
absent scores and the overall score.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from humanbeauty.standard import (
    DIMENSIONS,
    LEVELS,
    StandardError,
    score_to_level,
    validate_scores,
    vector_to_scores,
)

from .errors import ReleaseError

SPLITS = ("train", "val", "test")
# Loader and Hub names of a split -> the file name the release writes.
SPLIT_ALIASES = {"validation": "val"}


@dataclass(frozen=True)
class Sample:
    image_path: Path
    image_name: str
    source: str
    scores: tuple[float | None, ...]  # official 12-score order; None = absent or not applicable
    is_expert: bool
    text_level: str  # level of the overall score (the file's text_level when given)

    @property
    def overall(self) -> float:
        value = self.scores[-1]
        assert value is not None  # the comprehensive score is never null
        return value

    def target_vector(self) -> list[float]:
        return [0.0 if s is None else float(s) for s in self.scores]

    def target_mask(self) -> list[bool]:
        return [s is not None for s in self.scores]


def find_root(release_dir: str | Path) -> Path:
    """The ``HumanBeauty/`` root: the directory itself or its ``HumanBeauty`` child."""
    base = Path(release_dir).expanduser()
    for root in (base, base / "HumanBeauty"):
        if (root / "train_label.jsonl").is_file() or (root / "test_label.jsonl").is_file():
            return root
    raise ReleaseError(
        f"'{base}' is not a release: expected train_label.jsonl / test_label.jsonl in it or in "
        "its HumanBeauty/ folder (the official HumanAesExpert layout)"
    )


def _score(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ReleaseError(f"{where}: score {value!r} is not a number")
    if not 0.0 <= value <= 1.0:
        raise ReleaseError(f"{where}: score {value} is outside [0, 1]")
    return float(value)


def parse_line(line: str, root: Path, where: str) -> Sample:
    try:
        item = json.loads(line)
        name, source, score = item["image_name"], item.get("source", ""), item["score"]
        is_expert = bool(item["is_expert"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ReleaseError(f"{where}: bad label line ({exc!r})") from None
    if isinstance(score, list):
        if not is_expert:
            raise ReleaseError(f"{where}: a list of scores needs is_expert true")
        mask = item.get("score_mask")
        if mask is not None:
            # Our releases fill a "not applicable" dimension for the official loader and mark
            # it false here; it is absent, not a score.
            if not isinstance(mask, list) or len(mask) != len(score):
                raise ReleaseError(f"{where}: score_mask must list one bool per score")
            score = [v if ok else None for v, ok in zip(score, mask, strict=True)]
        try:
            clean = validate_scores(vector_to_scores(score))
        except StandardError as exc:
            raise ReleaseError(f"{where}: {exc}") from None
        scores = tuple(clean[d.key] for d in DIMENSIONS)
        level = score_to_level(scores[-1])  # type: ignore[arg-type]
    else:
        if is_expert:
            raise ReleaseError(f"{where}: is_expert true needs a list of {len(DIMENSIONS)} scores")
        overall = _score(score, where)
        scores = (None,) * (len(DIMENSIONS) - 1) + (overall,)
        level = str(item.get("text_level") or score_to_level(overall)).strip().lower()
        if level not in LEVELS:
            raise ReleaseError(f"{where}: text_level {level!r} is not one of {LEVELS}")
    return Sample(root / name, name, str(source), scores, is_expert, level)


def read_parquet_split(release_dir: Path, split: str) -> list[Sample]:
    """The same samples from a Parquet release (`DIR/parquet/{split}.parquet`): one row per
    image, `path` relative to DIR, the 12 scores as columns named by the standard's keys."""
    import pyarrow.parquet as pq

    path = release_dir / "parquet" / f"{split}.parquet"
    if not path.is_file():
        raise ReleaseError(f"'{release_dir}' has no parquet/{path.name}")
    table = pq.read_table(
        path, columns=["path", "source", "is_expert", "overall", *(d.key for d in DIMENSIONS)]
    )
    columns = table.to_pydict()
    samples = []
    for i, rel in enumerate(columns["path"]):
        where = f"{path}: row {i}"
        if columns["is_expert"][i]:
            try:
                clean = validate_scores({d.key: columns[d.key][i] for d in DIMENSIONS})
            except StandardError as exc:
                raise ReleaseError(f"{where}: {exc}") from None
            scores = tuple(clean[d.key] for d in DIMENSIONS)
        else:
            scores = (None,) * (len(DIMENSIONS) - 1) + (_score(columns["overall"][i], where),)
        samples.append(
            Sample(
                image_path=release_dir / rel,
                image_name=rel,
                source=columns["source"][i] or "",
                scores=scores,
                is_expert=bool(columns["is_expert"][i]),
                text_level=score_to_level(scores[-1]),  # type: ignore[arg-type]
            )
        )
    if not samples:
        raise ReleaseError(f"{path} holds no rows")
    return samples


def read_split(release_dir: str | Path, split: str) -> list[Sample]:
    """A split of a release: the official layout (HumanBeauty/{split}_label.jsonl), or, where
    there is none, the Parquet release (parquet/{split}.parquet)."""
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise ReleaseError(
            f"unknown split {split!r}; expected one of {SPLITS} (or {', '.join(SPLIT_ALIASES)})"
        )
    base = Path(release_dir).expanduser()
    if (base / "parquet" / f"{split}.parquet").is_file() and not (
        (base / f"{split}_label.jsonl").is_file()
        or (base / "HumanBeauty" / f"{split}_label.jsonl").is_file()
    ):
        return read_parquet_split(base, split)
    root = find_root(release_dir)
    path = root / f"{split}_label.jsonl"
    if not path.is_file():
        raise ReleaseError(f"'{root}' has no {path.name}")
    samples = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                samples.append(parse_line(line, root, f"{path}:{number}"))
    if not samples:
        raise ReleaseError(f"{path} holds no label lines")
    return samples


# Share of the training images kept from the heads for the MetaVoter when a release has no
# validation split.
VOTER_HOLDOUT = 0.1


@dataclass(frozen=True)
class TrainingData:
    """Who learns from what. The MetaVoter weighs the heads' answers, so it must see images
    the heads never trained on: on images they fit, it learns to trust whichever head over-fits
    most."""

    heads: list[Sample]  # stage 1 (LoRA, regression and Expert heads)
    voter: list[Sample]  # stage 2 (the MetaVoter); never one of `heads`' images
    voter_from: str  # "val" (the release's validation split) or "train-holdout"

    def record(self) -> dict:
        """What `final/metavoter_data.json` states, so the promise can be checked."""
        return {
            "fitted_on": self.voter_from,
            "heads_images": len(self.heads),
            "voter_images": sorted(s.image_name for s in self.voter),
        }


def _holdout_rank(name: str, seed: int) -> str:
    # A seeded hash of the name: the same images are held out on every run and --resume,
    # whatever the file order.
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def training_data(
    release_dir: str | Path, *, seed: int, holdout: float = VOTER_HOLDOUT
) -> TrainingData:
    """The heads train on the train split; the MetaVoter is fitted on the validation split, or,
    where the release has none, on a seeded ``holdout`` share of train that the heads never see.
    """
    train = read_split(release_dir, "train")
    try:
        val = read_split(release_dir, "val")
    except ReleaseError:
        val = []
    train_names = {s.image_name for s in train}
    val = [s for s in val if s.image_name not in train_names]
    if val:
        return TrainingData(train, val, "val")
    if len(train) < 2:
        raise ReleaseError(
            f"'{release_dir}' has no validation split and {len(train)} training image: the "
            "MetaVoter needs images the heads do not train on (add a val split or more images)"
        )
    ranked = sorted(train, key=lambda s: _holdout_rank(s.image_name, seed))
    n_voter = min(len(train) - 1, max(1, round(holdout * len(train))))
    voter_names = {s.image_name for s in ranked[:n_voter]}
    heads = [s for s in train if s.image_name not in voter_names]
    voter = [s for s in train if s.image_name in voter_names]
    return TrainingData(heads, voter, "train-holdout")


def open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"cannot read image '{path}': {exc}") from None


class ReleaseDataset:
    """Items are (RGB image, Sample); batching/tokenising happens in a collate function.

    Map-style (``__len__`` and ``__getitem__``), which is all a DataLoader needs: no torch
    import to read labels."""

    def __init__(self, samples: list[Sample]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, Sample]:
        sample = self.samples[index]
        return open_image(sample.image_path), sample
