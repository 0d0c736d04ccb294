"""A job's summary is counted by the database: it must agree with a row-by-row count, overrides
included, on PostgreSQL and on the quick start's SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curation.selectors import job_summary

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
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite3'}",
           "CELERY_BROKER_URL": "", "MEDIA_ROOT": str(tmp_path / "media")}
    result = subprocess.run([sys.executable, str(SQLITE_SCRIPT)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["db"] == report["python"]
    assert sum(report["db"][0].values()) == 300
