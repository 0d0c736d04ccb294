"""Run a script in a fresh process on a SQLite database: the quick start's mode, for the tests
that check it keeps the same promises as PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_on_sqlite(script: Path, tmp_path: Path, timeout: float = 300) -> dict:
    """The JSON the script prints as its last line (it fails the test if the script fails)."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'quick.sqlite3'}",
           "CELERY_BROKER_URL": "", "MEDIA_ROOT": str(tmp_path / "media")}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])
