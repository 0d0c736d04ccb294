"""The demo's sample dataset: a manifest scoring the sample photos on a 1-10 scale, which
`manage.py demo` writes inside the first import root and the curator's page offers to import.
Spelled here once for the writer and the page."""

from __future__ import annotations

from pathlib import Path

NAME = "sample-portraits"
MANIFEST = Path(NAME) / "labels.csv"  # relative to the first import root
SCALE = (1, 10)
