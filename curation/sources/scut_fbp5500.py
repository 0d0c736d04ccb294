"""SCUT-FBP5500 (Liang et al., ICPR 2018): `All_labels.txt`, mean beauty score on [1, 5].

Layout (the SCUT-FBP5500_v2 archive linked from HCIILAB/SCUT-FBP5500-Database-Release; "all the
images are labeled with beauty scores ranging from [1, 5] by totally 60 volunteers"; public
loaders read train_test_files/All_labels.txt as "<file> <score>" and the images from Images/):

    SCUT-FBP5500_v2/
      Images/<file>                       AF*/AM*/CF*/CM*.jpg (Asian/Caucasian, female/male)
      train_test_files/All_labels.txt     "<file> <mean score>" per line, e.g. "CF437.jpg 2.883333"
      train_test_files/split_of_60%training and 40%testing/train.txt, test.txt   (same format)
      train_test_files/5_folders_cross_validations_files/cross_validation_<k>/train_<k>.txt,
                                                                             test_<k>.txt
      All_Ratings.xlsx                    optional: every rater's rating, columns
                                          Rater, Filename, Rating, original Rating (the sheet
                                          named "ALL" when there is one, else the first)

Score: the mean of the 60 raters' scores from All_labels.txt, on [1, 5]. `extra`: group (AF, AM,
CF, CM), race and gender from it, split ("train"/"test" in the 60/40 split), cv_test_fold (the
cross-validation fold k whose test_<k>.txt lists the image), and, with All_Ratings.xlsx,
ratings {rater: rating}, original_ratings {rater: original rating} where they differ, n_raters.
PATH may be the dataset folder or All_labels.txt.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .common import check_roots, existing_path, expect_file, text_lines
from .records import (
    LineError,
    ParseResult,
    RecordBuilder,
    Scale,
    check_scale,
    dataset_path,
    parse_number,
)
from .xlsx import Cell, XlsxError, iter_rows, sheet_names

KIND = "scut-fbp5500"
SCALE: Scale = (1.0, 5.0)
# The official repository's README: "The SCUT-FBP5500 database can be only used for
# non-commercial research purpose".
ORIGIN = (
    "Liang et al., SCUT-FBP5500: A Diverse Benchmark Dataset for Multi-Paradigm Facial "
    "Beauty Prediction, ICPR 2018; "
    "https://github.com/HCIILAB/SCUT-FBP5500-Database-Release"
)
LICENCE = "research-only"

LABEL_DIR = "train_test_files"
LABEL_FILE = f"{LABEL_DIR}/All_labels.txt"
SPLIT_DIR = f"{LABEL_DIR}/split_of_60%training and 40%testing"
CV_DIR = f"{LABEL_DIR}/5_folders_cross_validations_files"
RATINGS_FILE = "All_Ratings.xlsx"
IMAGE_DIR = "Images"
GROUPS = {
    "AF": ("asian", "female"),
    "AM": ("asian", "male"),
    "CF": ("caucasian", "female"),
    "CM": ("caucasian", "male"),
}


def _names_in(path: Path) -> set[str]:
    """The file names listed in a split file ("<file> <score>" lines)."""
    if not path.is_file():
        return set()
    return {line.split()[0] for _, line in text_lines(path) if line.split()}


def _cv_test_folds(root: Path) -> dict[str, int]:
    folds: dict[str, int] = {}
    cv = root / CV_DIR
    if cv.is_dir():
        for d in sorted(cv.iterdir()):
            m = re.fullmatch(r"cross_validation_(\d+)", d.name)
            if m:
                for name in _names_in(d / f"test_{m.group(1)}.txt"):
                    folds.setdefault(name, int(m.group(1)))
    return folds


def _key(value: Cell) -> str:
    """A rater id as a JSON key: 12.0 -> "12", text as written."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _ratings(path: Path, b: RecordBuilder) -> dict[str, dict[str, dict[str, float]]]:
    """{file name: {"ratings": {rater: r}, "original": {rater: r}}} from All_Ratings.xlsx."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    try:
        names = sheet_names(path)
        sheet = next((n for n in names if n.strip().upper() == "ALL"), None)
        rows = iter_rows(path, sheet)
        header_row = next(rows, None)
        if header_row is None:
            b.error(path, None, "the ratings sheet is empty")
            return out
        header = [str(h).strip().lower() if h is not None else "" for h in header_row[1]]
        need = ("rater", "filename", "rating")
        if any(c not in header for c in need):
            b.error(
                path,
                header_row[0],
                "ratings sheet needs columns Rater, Filename, Rating "
                f"(found: {', '.join(h for h in header if h)})",
            )
            return out
        i_rater, i_file, i_rating = (header.index(c) for c in need)
        i_orig = header.index("original rating") if "original rating" in header else None
        for number, cells in rows:
            if not any(c is not None and str(c).strip() for c in cells):
                continue
            cells = cells + [None] * (len(header) - len(cells))
            name = str(cells[i_file] or "").strip()
            try:
                if not name:
                    raise LineError("Filename is empty")
                rating = parse_number(
                    cells[i_rating] if cells[i_rating] is not None else "", "Rating"
                )
                if not SCALE[0] <= rating <= SCALE[1]:
                    raise LineError(f"Rating {rating:g} is outside [1, 5]")
                original = None
                if i_orig is not None and cells[i_orig] is not None:
                    original = parse_number(cells[i_orig], "original Rating")
            except LineError as exc:
                b.error(path, number, str(exc))
                continue
            entry = out.setdefault(name, {"ratings": {}, "original": {}})
            rater = _key(cells[i_rater])
            entry["ratings"][rater] = rating
            if original is not None and original != rating:
                entry["original"][rater] = original
    except XlsxError as exc:
        b.error(path, None, f"per-rater ratings not read: {exc}")
    return out


def parse(path: str | os.PathLike[str], *, scale: Scale | None = None, roots=None) -> ParseResult:
    """Parse a SCUT-FBP5500 folder (or its All_labels.txt). See the module docstring."""
    p = existing_path(path, KIND)
    if p.is_file():
        label = p
        root = p.parent.parent if p.parent.name == LABEL_DIR else p.parent
    else:
        root = p
        label = expect_file(root / LABEL_FILE, KIND, "pass the SCUT-FBP5500_v2 folder or the file")
    ratings_file = root / RATINGS_FILE
    files = [label] + ([ratings_file] if ratings_file.is_file() else [])
    check_roots(files, roots)
    scale = check_scale(scale or SCALE)
    b = RecordBuilder(KIND, root, files, scale, roots)

    train = _names_in(root / SPLIT_DIR / "train.txt")
    test = _names_in(root / SPLIT_DIR / "test.txt")
    folds = _cv_test_folds(root)
    ratings = _ratings(ratings_file, b) if ratings_file.is_file() else {}

    for number, line in text_lines(label):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 2:
                raise LineError(f"expected 2 columns (file name, score), found {len(fields)}")
            name = dataset_path(fields[0])
            raw = parse_number(fields[1])
        except LineError as exc:
            b.error(label, number, str(exc))
            continue
        extra: dict = {}
        group = name[:2].upper()
        if group in GROUPS:
            extra["group"] = group
            extra["race"], extra["gender"] = GROUPS[group]
        if name in train:
            extra["split"] = "train"
        elif name in test:
            extra["split"] = "test"
        if name in folds:
            extra["cv_test_fold"] = folds[name]
        if name in ratings:
            extra["ratings"] = ratings[name]["ratings"]
            extra["n_raters"] = len(ratings[name]["ratings"])
            if ratings[name]["original"]:
                extra["original_ratings"] = ratings[name]["original"]
        b.add(label, number, f"{IMAGE_DIR}/{name}", raw, extra)
    return b.finish()
