"""A real Celery worker process on the test database, for the tests about workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def worker_env(**extra: str) -> dict[str, str]:
    """This process's environment, pointed at the test database, media and import roots (the
    storage ones, `storage:PREFIX`, included)."""
    assert settings.CELERY_BROKER_URL, "run the suite with a broker: `make test` sets one"
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "IMPORT_ROOTS": ",".join(
            [str(r) for r in settings.IMPORT_ROOTS]
            + [f"storage:{p}" for p in getattr(settings, "IMPORT_STORAGE_ROOTS", [])]
        ),
        **extra,
    }


def start_worker(
    env: dict[str, str], queue: str | None = None, *, name: str | None = None
) -> subprocess.Popen:
    """A solo-pool worker in its own process group (so it can be killed whole), taking every
    queue (settings.WORKER_QUEUES) or only `queue` (comma-separated names); `name`: its node
    name (default: a new one, so that two workers on this host keep two heartbeat rows)."""
    args = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
            "--loglevel", "warning", "--without-heartbeat", "--without-gossip",
            "--without-mingle", "-Q", queue or ",".join(settings.WORKER_QUEUES),
            "-n", name or f"test-{uuid.uuid4().hex[:8]}@%h"]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(worker: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        worker.wait(timeout=30)
