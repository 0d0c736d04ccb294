"""The generic manifest: a CSV file with a header, or a JSONL file, one image per row.

`python manage.py import_source manifest FILE --name NAME [--scale MIN MAX]`

Fields (CSV columns or JSON keys):
    path                  required: relative to the manifest's folder, or absolute (inside an
                          import root; the importer checks with resolve_inside)
    score                 optional: the image's score; empty / null means no score
    score_min, score_max  optional, together: the row's own scale. A row without them uses
                          --scale; a row with a score and neither is a line error
    anything else         kept in the record's `extra` (CSV: as text, empty cells left out;
                          JSONL: as the JSON value)

The format follows the extension: .jsonl / .ndjson are JSON Lines, .tsv is tab-separated, any
other file is CSV unless its first non-blank character is "{" (then JSON Lines). A row without a
score gets raw_score and normalized None and the scale it would have used, or [0, 1] if none.
Record paths are kept as written in the manifest (job reports echo them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from humanbeauty.strictjson import loads_strict

from .common import check_roots, csv_rows, existing_path, text_lines
from .records import (
    LineError,
    ParseResult,
    RecordBuilder,
    Scale,
    SourceFileError,
    check_scale,
    parse_number,
)

KIND = "manifest"
RESERVED = ("path", "score", "score_min", "score_max")


NO_SCALE = (
    "the manifest has scores (line {line}) but no score scale: give the lowest and highest "
    "possible score (the import form's scale, `scale` in the API, --scale MIN MAX on the "
    "command line), or add score_min and score_max columns; nothing was imported"
)

def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".tsv":
        return "tsv"
    if suffix != ".csv":
        for _, line in text_lines(path):
            if line.strip():
                return "jsonl" if line.lstrip().startswith("{") else "csv"
    return "csv"


def _jsonl_rows(path: Path, b: RecordBuilder) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in text_lines(path):
        if not line.strip():
            continue
        try:
            # Strict: a NaN, a huge number, a NUL, a lone surrogate or deep nesting is this
            # line's error, never the whole import's.
            row = loads_strict(line)
        except ValueError as exc:
            b.error(path, number, f"not valid JSON: {exc}")
            continue
        if not isinstance(row, dict):
            b.error(path, number, f"expected a JSON object, found {type(row).__name__}")
            continue
        yield number, row


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _row_scale(row: dict[str, Any], default: Scale | None) -> Scale | None:
    lo, hi = row.get("score_min"), row.get("score_max")
    if _blank(lo) and _blank(hi):
        return default
    if _blank(lo) or _blank(hi):
        raise LineError("score_min and score_max go together: give both or neither")
    try:
        return check_scale((parse_number(lo, "score_min"), parse_number(hi, "score_max")))
    except ValueError as exc:
        raise LineError(str(exc)) from exc


def parse(path: str | os.PathLike[str], *, scale: Scale | None = None, roots=None) -> ParseResult:
    """Parse a manifest file (see the module docstring). `scale` is --scale MIN MAX."""
    p = existing_path(path, KIND)
    if not p.is_file():
        raise SourceFileError(f"{KIND}: {p} is a folder; pass the manifest file (CSV or JSONL)")
    check_roots([p], roots)
    if scale is not None:
        try:
            scale = check_scale(scale, what="--scale")
        except ValueError as exc:
            raise SourceFileError(str(exc)) from exc
    b = RecordBuilder(KIND, p.parent, [p], scale, roots)

    fmt = _format(p)
    rows: Iterator[tuple[int, dict[str, Any]]]
    if fmt == "jsonl":
        rows = _jsonl_rows(p, b)
    else:
        rows = csv_rows(p, b, ("path",), delimiter="\t" if fmt == "tsv" else ",")
    for number, row in rows:
        try:
            raw_path = row.get("path")
            if not isinstance(raw_path, str) or not raw_path.strip():
                raise LineError("path is missing" if _blank(raw_path) else "path must be a string")
            if "\x00" in raw_path:
                raise LineError("path contains a NUL byte")
            row_scale = _row_scale(row, scale)
            raw = None if _blank(row.get("score")) else parse_number(row["score"])
            if raw is not None and row_scale is None:
                if "score_min" not in row and "score_max" not in row:
                    # No row can carry its own scale: the whole file needs one, said once.
                    raise SourceFileError(NO_SCALE.format(line=number))
                raise LineError(
                    "the row has a score but no scale: pass --scale MIN MAX (the import's "
                    "scale) or give score_min and score_max"
                )
        except LineError as exc:
            b.error(p, number, str(exc))
            continue
        extra = {k: v for k, v in row.items() if k not in RESERVED}
        if fmt != "jsonl":
            extra = {k: v for k, v in extra.items() if not _blank(v)}
        b.add(p, number, raw_path.strip(), raw, extra, scale=row_scale)
    return b.finish()
