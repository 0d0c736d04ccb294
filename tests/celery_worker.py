"""A real Celery worker process on the test database, for the tests about workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def worker_env(**extra: str) -> dict[str, str]:
    """This process's environment, pointed at the test database, media and import roots."""
    assert settings.CELERY_BROKER_URL, "run the suite with a broker: `make test` sets one"
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "IMPORT_ROOTS": ",".join(str(r) for r in settings.IMPORT_ROOTS),
        **extra,
    }


def start_worker(env: dict[str, str], queue: str | None = None) -> subprocess.Popen:
    """A solo-pool worker in its own process group (so it can be killed whole)."""
    args = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
            "--loglevel", "warning", "--without-heartbeat", "--without-gossip",
            "--without-mingle"]
    if queue:
        args += ["-Q", queue]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(worker: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        worker.wait(timeout=30)
