"""The source kinds `import_source` accepts, each with its parser and default score scale."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from humanbeauty.paths import resolve_inside

from . import agiqa3k, ava, baid, manifest, mebeauty, scut_fbp5500, tad66k
from .records import ParseResult, Scale, SourceFileError


@dataclass(frozen=True)
class Parser:
    """One source kind: call it with the PATH of the command line.

    `parser(path, scale=None, roots=None) -> ParseResult`. `scale` replaces the default scale
    (for a manifest it is --scale MIN MAX). With `roots`, the label files and every record path
    must resolve inside those import roots: a label file outside raises PathOutsideRoots, a record
    outside becomes a line error.
    """

    kind: str
    title: str
    default_scale: Scale | None
    layout: str  # the one-line reminder of what PATH must be
    func: Callable[..., ParseResult]
    # What the dataset publishes about itself (see each module): a citation or URL, its
    # licence ("unknown" where its terms could not be verified) and the consent basis; blank
    # for a kind that is no one dataset (a manifest): nothing is recorded for it.
    origin: str = ""
    licence: str = ""
    consent_basis: str = ""

    def __call__(
        self, path: str | os.PathLike[str], *, scale: Scale | None = None,
        roots: Iterable[str | Path] | None = None,
    ) -> ParseResult:
        if roots is not None:
            # Roots first: a refused path must not reveal whether anything exists there.
            resolve_inside(os.path.abspath(os.fspath(path)), list(roots))
        return self.func(path, scale=scale, roots=roots)


PUBLIC_TERMS = "public_dataset_terms"  # the consent basis of a published dataset

PARSERS: dict[str, Parser] = {
    p.kind: p
    for p in (
        Parser(
            "ava",
            "AVA",
            ava.SCALE,
            "the AVA folder (AVA.txt, images/<id>.jpg) or AVA.txt",
            ava.parse,
            ava.ORIGIN,
            ava.LICENCE,
            PUBLIC_TERMS,
        ),
        Parser(
            "tad66k",
            "TAD66K",
            tad66k.SCALE,
            "the TAD66K folder (labels/merge/{train,test}.csv, imgs/) or one of the CSVs",
            tad66k.parse,
            tad66k.ORIGIN,
            tad66k.LICENCE,
            PUBLIC_TERMS,
        ),
        Parser(
            "scut-fbp5500",
            "SCUT-FBP5500",
            scut_fbp5500.SCALE,
            "the SCUT-FBP5500_v2 folder (train_test_files/All_labels.txt, Images/)",
            scut_fbp5500.parse,
            scut_fbp5500.ORIGIN,
            scut_fbp5500.LICENCE,
            PUBLIC_TERMS,
        ),
        Parser(
            "mebeauty",
            "MEBeauty",
            mebeauty.SCALE,
            "the MEBeauty folder (scores/*_universal_scores.csv, images/) or one score CSV",
            mebeauty.parse,
            mebeauty.ORIGIN,
            mebeauty.LICENCE,
            PUBLIC_TERMS,
        ),
        Parser(
            "baid",
            "BAID",
            baid.SCALE,
            "the BAID folder (dataset/{train,val,test}_set.csv, images/) or one of the CSVs",
            baid.parse,
            baid.ORIGIN,
            baid.LICENCE,
            PUBLIC_TERMS,
        ),
        Parser(
            "agiqa-3k",
            "AGIQA-3K",
            agiqa3k.SCALE,
            "the AGIQA-3K folder (data.csv and the images) or data.csv",
            agiqa3k.parse,
            agiqa3k.ORIGIN,
            agiqa3k.LICENCE,
            PUBLIC_TERMS,
        ),
        Parser(
            "manifest",
            "Manifest",
            None,
            "a CSV (with header) or JSONL file with path, score, score_min, score_max",
            manifest.parse,
        ),
    )
}


def parse_source(
    kind: str,
    path: str | os.PathLike[str],
    *,
    scale: Scale | None = None,
    roots: Iterable[str | Path] | None = None,
) -> ParseResult:
    """PARSERS[kind](path, ...), with a clear error for an unknown kind."""
    try:
        parser = PARSERS[kind]
    except KeyError:
        raise SourceFileError(
            f"unknown source kind {kind!r}; choose one of {', '.join(PARSERS)}"
        ) from None
    return parser(path, scale=scale, roots=roots)
