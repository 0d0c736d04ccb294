"""Who runs a long job (ScoringJob, TrainingRun): claiming it, and taking over a dead worker's.

A task that is delivered again (its worker was killed, or the broker's visibility timeout
passed while it was still running) must neither run the job twice at once nor leave it
stuck. The row records the worker (host:pid) and a heartbeat; a second delivery takes the job
over when that worker is gone (same host, process dead) or silent for `stale_after`, and
otherwise waits for it to finish.

Cancelling: a person marks a queued or running row `cancelled`; a delivery never claims a
cancelled row, and the worker running one finds out at its next progress write
(`report_progress`), which only writes while the row is still `running`, and stops.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import timedelta
from enum import Enum

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone

from humanbeauty.errors import DomainError

from ..models import RunStatus

# Rows no delivery may (re)start.
OVER = (RunStatus.DONE, RunStatus.CANCELLED)


class RunCancelled(Exception):
    """The row was cancelled while this worker ran it: stop, write nothing more."""


class AlreadyOver(DomainError):
    status = 409
    code = "conflict"


class Claim(Enum):
    CLAIMED = "claimed"
    FINISHED = "finished"
    BUSY = "busy"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_gone(worker: str) -> bool:
    """True when `worker` ran on this host and its process no longer exists."""
    host, _, pid = worker.rpartition(":")
    if not worker or host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return True  # this very process: whatever ran it before has returned or died
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim(
    model: type[models.Model], pk: int, *, finished: tuple[str, ...], stale_after: timedelta
) -> tuple[Claim, models.Model]:
    now = timezone.now()
    with transaction.atomic():
        row = model.objects.select_for_update().get(pk=pk)
        if row.status in finished:
            return Claim.FINISHED, row
        alive = (
            row.status == RunStatus.RUNNING
            and row.heartbeat_at is not None
            and now - row.heartbeat_at < stale_after
            and not worker_gone(row.worker)
        )
        if alive:
            return Claim.BUSY, row
        row.status = RunStatus.RUNNING
        row.started_at = row.started_at or now
        row.heartbeat_at = now
        row.worker = worker_id()
        row.save(update_fields=["status", "started_at", "heartbeat_at", "worker"])
        return Claim.CLAIMED, row


def claim_or_wait(
    model: type[models.Model],
    pk: int,
    *,
    finished: tuple[str, ...],
    stale_after: timedelta,
    poll_seconds: float = 30.0,
) -> models.Model | None:
    """The row, claimed for this worker; None once it is finished (by us earlier, or by the
    worker we waited for)."""
    while True:
        state, row = claim(model, pk, finished=finished, stale_after=stale_after)
        if state is Claim.CLAIMED:
            return row
        if state is Claim.FINISHED:
            return None
        time.sleep(poll_seconds)


def report_progress(model: type[models.Model], pk: int, **fields: object) -> None:
    """Write the worker's progress and heartbeat; RunCancelled if the row was cancelled."""
    running = model.objects.filter(pk=pk, status=RunStatus.RUNNING)
    if not running.update(heartbeat_at=timezone.now(), **fields):
        raise RunCancelled


def cancel(model: type[models.Model], pk: int, user: AbstractBaseUser) -> models.Model:
    """Cancel a queued or running job (409 once it is over); its worker stops at its next
    progress write, and a later delivery of its task does nothing."""
    with transaction.atomic():
        row = model.objects.select_for_update().get(pk=pk)
        if row.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            raise AlreadyOver(f"{model._meta.verbose_name} {pk} is already {row.status}")
        row.status = RunStatus.CANCELLED
        row.finished_at = timezone.now()
        row.error = f"cancelled by {user.get_username()}"
        row.save(update_fields=["status", "finished_at", "error"])
    return row
