"""The quick start's SQLite mode keeps the same promises, serialised by IMMEDIATE transactions."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HAMMER = Path(__file__).with_name("sqlite_hammer.py")


@pytest.mark.slow
def test_concurrent_raters_on_sqlite(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'q.sqlite3'}",
           "CELERY_BROKER_URL": "", "MEDIA_ROOT": str(tmp_path / "media")}
    result = subprocess.run([sys.executable, str(HAMMER)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert set(report["counts"].values()) == {3}
    pairs = [tuple(p) for p in report["pairs"]]
    assert len(pairs) == len(set(pairs)) == 8 * 3
