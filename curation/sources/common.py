"""Helpers the dataset parsers share: finding label files, reading text and CSV line by line."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from humanbeauty.paths import resolve_inside

from .records import (
    LineError,
    MissingLabelFile,
    ParseResult,
    RecordBuilder,
    Scale,
    SourceFileError,
    check_scale,
    dataset_path,
    parse_number,
)


def existing_path(path: str | os.PathLike[str], kind: str) -> Path:
    """`path` made absolute (symlinks kept), or MissingLabelFile if nothing is there."""
    p = Path(os.path.abspath(os.fspath(path)))
    if not p.exists():
        raise MissingLabelFile(f"{kind}: {p} does not exist")
    return p


def expect_file(path: Path, kind: str, hint: str) -> Path:
    """`path` if it is a file, else MissingLabelFile naming the file the dataset needs."""
    if not path.is_file():
        raise MissingLabelFile(f"{kind}: expected label file {path} not found ({hint})")
    return path


def check_roots(files: Iterable[Path], roots: Iterable[str | Path] | None) -> None:
    """With roots given, every label file must itself lie inside them (else PathOutsideRoots)."""
    if roots is None:
        return
    roots = list(roots)
    for f in files:
        resolve_inside(f.absolute(), roots)


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its newline) of a UTF-8 text file (BOM tolerated)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for number, line in enumerate(fh, start=1):
                yield number, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise SourceFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise SourceFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def csv_rows(
    path: Path,
    builder: RecordBuilder,
    required: Iterable[str],
    *,
    delimiter: str = ",",
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: value}) for each data row of a CSV file with a header.

    A header that lacks a required column stops the parse (SourceFileError naming the columns
    found); a row with the wrong number of fields is a line error and is skipped; blank lines are
    skipped. Column names are matched as written, after stripping spaces.
    """
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise SourceFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    with fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader, None)
            while header is not None and not any(h.strip() for h in header):
                header = next(reader, None)  # leading blank lines
        except UnicodeDecodeError as exc:
            raise SourceFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        except csv.Error as exc:
            raise SourceFileError(f"{path}: unreadable header ({exc})") from exc
        if header is None:
            raise SourceFileError(f"{path}: the file is empty (a header line is required)")
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise SourceFileError(
                f"{path}: header has no {', '.join(repr(c) for c in missing)} column "
                f"(found: {', '.join(repr(h) for h in header)})"
            )
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise SourceFileError(f"{path}: not UTF-8 text ({exc.reason})") from exc
            except csv.Error as exc:
                builder.error(path, reader.line_num, f"unreadable CSV row: {exc}")
                continue
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                builder.error(
                    path,
                    reader.line_num,
                    f"expected {len(header)} columns ({', '.join(header)}), found {len(row)}",
                )
                continue
            yield reader.line_num, dict(zip(header, row, strict=True))


def pick_image_dir(root: Path, candidates: tuple[str, ...], names: Iterable[str]) -> str:
    """Which of the candidate image folders (relative to root, "" = root) holds the images.

    Published archives of one dataset do not always unpack to the same folder name. The first
    candidate that contains one of the first few listed images wins; failing that, the first
    candidate that exists as a folder; failing that, the first candidate.
    """
    sample = [n for _, n in zip(range(5), names, strict=False)]
    for cand in candidates:
        folder = root / cand if cand else root
        if any((folder / n).is_file() for n in sample):
            return cand
    for cand in candidates:
        if cand and (root / cand).is_dir():
            return cand
    return candidates[0]


def join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}" if folder else name


def split_from_name(stem: str) -> str | None:
    """'train', 'val' or 'test' from a label file's name (train_set, test_universal_scores...)."""
    head = stem.lower().replace("-", "_").split("_")[0]
    return _SPLITS.get(head)


_SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class CsvDataset:
    """The common shape of the CSV datasets: one row per image, an image column and a score.

    `label_files` are relative to the dataset root and all live in one folder (e.g.
    "dataset/train_set.csv"); those that exist are read, in order, and none existing is a
    MissingLabelFile naming them. PATH may also be one label file: only it is read, and the root
    is found by stripping that folder from its location. Image paths are the image column under
    the detected image folder (see pick_image_dir); `extra` maps a row to the record's extra, to
    which the split named by the file ("train", "val", "test") is added.
    """

    kind: str
    scale: Scale  # the default; a parse's `scale` replaces it
    label_files: tuple[str, ...]
    image_dirs: tuple[str, ...]
    image_column: str = "image"
    score_column: str = "score"
    extra: Callable[[dict[str, str]], dict] | None = None

    def parse(
        self,
        path: str | os.PathLike[str],
        *,
        scale: Scale | None = None,
        roots: Iterable[str | Path] | None = None,
    ) -> ParseResult:
        """Parse the dataset folder (or one of its label files). See the dataset's module."""
        kind, label_files = self.kind, self.label_files
        image_column, score_column = self.image_column, self.score_column
        p = existing_path(path, kind)
        folder_parts = Path(label_files[0]).parent.parts
        if p.is_file():
            files = [p]
            n = len(folder_parts)
            root = p.parent
            if n and p.parent.parts[-n:] == folder_parts:
                for _ in range(n):
                    root = root.parent
        else:
            root = p
            files = [root / f for f in label_files if (root / f).is_file()]
            if not files:
                raise MissingLabelFile(
                    f"{kind}: expected label file {root / label_files[0]} not found ({kind} "
                    f"keeps its labels in {', '.join(label_files)} under the dataset folder)"
                )
        check_roots(files, roots)
        scale = check_scale(scale or self.scale)
        b = RecordBuilder(kind, root, files, scale, roots)

        rows = []
        for f in files:
            split = split_from_name(f.stem)
            for number, row in csv_rows(f, b, (image_column, score_column)):
                rows.append((f, number, split, row))
        folder = pick_image_dir(root, self.image_dirs, (r[image_column].strip() for *_, r in rows))
        for f, number, split, row in rows:
            try:
                name = dataset_path(row[image_column])
                raw = parse_number(row[score_column], score_column)
            except LineError as exc:
                b.error(f, number, str(exc))
                continue
            info = self.extra(row) if self.extra else {}
            if split:
                info["split"] = split
            b.add(f, number, join(folder, name), raw, info)
        return b.finish()
