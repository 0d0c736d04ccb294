"""A job's summary is counted by the database: it must agree with a row-by-row count, overrides
included, on PostgreSQL and on the quick start's SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.selectors import job_summary
from tests.sqlite_support import run_on_sqlite

from .summary_data import make_job, reference_summary

SQLITE_SCRIPT = Path(__file__).with_name("sqlite_summary.py")


@pytest.mark.django_db
def test_the_summary_agrees_with_a_row_by_row_count():
    job = make_job()
    summary = job_summary(job)
    counts, reasons = reference_summary(job)
    assert summary["counts"] == counts and sum(counts.values()) == 300
    assert summary["reasons"] == reasons and list(summary["reasons"]) == sorted(reasons)
    assert 0 < counts["accepted"] < 300 and len(reasons) >= 5  # the data has every case


def test_the_summary_agrees_on_sqlite(tmp_path):
    report = run_on_sqlite(SQLITE_SCRIPT, tmp_path)
    assert report["db"] == report["python"]
    assert sum(report["db"][0].values()) == 300
