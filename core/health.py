"""Is the platform up? `readiness()` checks what a web process needs (the database, the broker,
the media storage) for /readyz; each worker process keeps a WorkerHeartbeat row fresh from a
background thread (started and stopped by config.celery's worker signals), which the admin sees
in the Django admin and at /api/workers/.

The answers name what failed ("database": "unreachable"), never why: no host, no credentials,
no error text leaves through an unauthenticated endpoint (the reason goes to the log).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import close_old_connections, connection
from django.utils import timezone

from .models import WorkerHeartbeat
from .storage import has_local_paths

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "unreachable"


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    """The broker answers (nothing to check where tasks run in-process: no broker set)."""
    if not settings.CELERY_BROKER_URL:
        return
    from celery import current_app

    with current_app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2,
                               timeout=3)


def check_storage() -> None:
    """The media storage can be read (the bucket exists and answers, or MEDIA_ROOT is a
    folder this process may write to)."""
    if has_local_paths(default_storage):
        root = default_storage.path("")
        os.makedirs(root, exist_ok=True)
        if not os.access(root, os.W_OK | os.X_OK):
            raise PermissionError("the media folder is not writable")
        return
    default_storage.listdir("")  # a missing bucket or wrong credentials raise


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
}


def readiness() -> dict[str, str]:
    """{check: "ok" | "unreachable"} for every check."""
    out = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:
            log.warning("readiness: %s failed", name, exc_info=True)
            out[name] = FAILED
        else:
            out[name] = OK
    return out


# --- worker heartbeats ------------------------------------------------------------------------

_stop = threading.Event()
_thread: threading.Thread | None = None
_name = ""


def record_heartbeat(name: str, *, queues: list[str] | None = None, started: bool = False) -> None:
    """Write this worker's row: a start (re)sets it, a beat renews last_seen."""
    now = timezone.now()
    if started:
        WorkerHeartbeat.objects.update_or_create(
            name=name,
            defaults={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": sorted(queues or []),
                "started_at": now,
                "last_seen": now,
                "stopped_at": None,
            },
        )
    elif not WorkerHeartbeat.objects.filter(name=name).update(last_seen=now, stopped_at=None):
        record_heartbeat(name, queues=queues, started=True)  # its row was deleted meanwhile


def record_stop(name: str) -> None:
    WorkerHeartbeat.objects.filter(name=name).update(stopped_at=timezone.now())


def prune_heartbeats() -> int:
    """Delete the rows of workers not heard from in WORKER_HEARTBEAT_KEEP_DAYS (stopped, or lost
    with their machine): a fleet whose workers come and go under new names would otherwise grow
    the admin's list for ever. A worker that comes back records itself again. Returns how many
    rows went."""
    cutoff = timezone.now() - timedelta(days=float(settings.WORKER_HEARTBEAT_KEEP_DAYS))
    deleted, _ = WorkerHeartbeat.objects.filter(last_seen__lt=cutoff).delete()
    return deleted


def start_heartbeat(name: str, *, queues: list[str]) -> None:
    """In a worker: record the start, then renew the row every WORKER_HEARTBEAT_SECONDS from a
    daemon thread until `stop_heartbeat`."""
    global _thread, _name
    _name = name or f"{socket.gethostname()}:{os.getpid()}"
    _stop.clear()
    try:
        record_heartbeat(_name, queues=queues, started=True)
    except Exception:  # no database yet: the thread's next beat records the worker
        log.warning("could not record the worker's start", exc_info=True)
    finally:
        close_old_connections()
    period = float(settings.WORKER_HEARTBEAT_SECONDS)

    def loop() -> None:
        while not _stop.wait(period):
            try:
                record_heartbeat(_name, queues=queues)
            except Exception:
                log.warning("worker heartbeat failed", exc_info=True)
            finally:
                connection.close()  # this thread's own connection; a new one next time

    _thread = threading.Thread(target=loop, name="worker-heartbeat", daemon=True)
    _thread.start()


def stop_heartbeat() -> None:
    _stop.set()
    if _name:
        try:
            record_stop(_name)
        except Exception:
            log.warning("could not record the worker's stop", exc_info=True)
