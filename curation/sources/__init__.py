"""Parsers for the public datasets HumanBeauty-58K was built from, and for generic manifests.

Pure Python (no Django import): `parse_source(kind, path, scale=None, roots=None)` or
`PARSERS[kind](path, ...)` returns a ParseResult of SourceRecords (path relative to the dataset
root, raw score, its scale, the score min-max normalised to [0, 1], dataset-specific extras)
and SourceErrors (file, line, message) for the lines that could not be used. Each dataset module
documents the label layout it expects and where that layout was taken from.
`humanbeauty.paths.resolve_inside` (or an `AllowedRoots` reused over many paths) is the
import-roots check
every file access goes through.
"""

from humanbeauty.paths import AllowedRoots, PathOutsideRoots, resolve_inside

from .records import (
    MissingLabelFile,
    ParseResult,
    Scale,
    SourceError,
    SourceFileError,
    SourceRecord,
    check_scale,
    normalize,
)
from .registry import PARSERS, Parser, parse_source

__all__ = [
    "PARSERS",
    "AllowedRoots",
    "MissingLabelFile",
    "ParseResult",
    "Parser",
    "PathOutsideRoots",
    "Scale",
    "SourceError",
    "SourceFileError",
    "SourceRecord",
    "check_scale",
    "normalize",
    "parse_source",
    "resolve_inside",
]
