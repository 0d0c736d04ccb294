"""The quick start's SQLite mode keeps the same promises, serialised by IMMEDIATE transactions."""

from pathlib import Path

import pytest

from tests.sqlite_support import run_on_sqlite

HAMMER = Path(__file__).with_name("sqlite_hammer.py")


@pytest.mark.slow
def test_concurrent_raters_on_sqlite(tmp_path):
    report = run_on_sqlite(HAMMER, tmp_path)
    assert report["errors"] == []
    assert set(report["counts"].values()) == {3}
    pairs = [tuple(p) for p in report["pairs"]]
    assert len(pairs) == len(set(pairs)) == 8 * 3
