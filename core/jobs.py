"""The one lifecycle of every long job of the platform: filter jobs, source imports, releases,
scoring jobs and training runs.

    create ──enqueue──> queued ──claim──> running ──finish──> done
                          │                 │ ├──fail──> failed
                          └─────cancel──────┴─┴──cancel─> cancelled

A request only records a job and enqueues its task (`enqueue`): the work always runs on a worker.
The worker `claim`s the row, which records who holds it (host:pid) and a heartbeat; every
progress write (`beat`) renews the heartbeat and is also how a worker learns that its job was
cancelled (the write finds the row no longer running: `JobCancelled`). Ending a job (`finish`,
`fail`) only ever moves a running (or queued) row, so a cancel that came first always stands.

A worker can vanish (killed, machine lost). A task delivered again (acks_late) takes the job
over when its holder is gone; and the `reap` beat task finds running jobs whose holder died or
whose heartbeat went silent, and enqueues them again (each task is idempotent: it resumes) or,
after `MAX_RESUMES` tries, marks them failed with the reason. A job is never left "running"
with nobody running it.

Each kind of job names its own task (`RESUME_TASK`), how long its heartbeat may be silent
(`STALE_AFTER`), and, for a release, its own words for two states ("building", "ready").
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, ClassVar, TypeVar

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone

from core.fields import user_link
from humanbeauty.errors import DomainError
from humanbeauty.jsonsafe import FiniteJSONEncoder

log = logging.getLogger(__name__)

# Times a job whose worker vanished is enqueued again before it is marked failed.
MAX_RESUMES = 3


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class States:
    """The words a kind of job stores for the five states (a release says building, ready)."""

    queued: str = JobStatus.QUEUED
    running: str = JobStatus.RUNNING
    done: str = JobStatus.DONE
    failed: str = JobStatus.FAILED
    cancelled: str = JobStatus.CANCELLED

    @property
    def live(self) -> tuple[str, str]:
        """Not over: waiting for a worker, or held by one."""
        return (self.queued, self.running)

    @property
    def over(self) -> tuple[str, str, str]:
        return (self.done, self.failed, self.cancelled)


class JobRecord(models.Model):
    """What every long job keeps: its state, live progress (its shape is the job's own), why it
    failed, who started it and when, and which worker holds it with its last heartbeat."""

    STATES: ClassVar[States] = States()
    # The Celery task (by name) that runs the job, given its id; `reap` enqueues it again.
    RESUME_TASK: ClassVar[str] = ""
    # How long a running job's heartbeat may be silent before its worker counts as lost.
    STALE_AFTER: ClassVar[timedelta] = timedelta(minutes=10)
    # Held by one worker at a time (a dead holder on this host is noticed at once); a filter
    # job's chunks run on many workers, so only its silence counts.
    SINGLE_WORKER: ClassVar[bool] = True

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.JSONField(default=dict, blank=True, encoder=FiniteJSONEncoder)
    error = models.TextField(blank=True)
    created_by = user_link()
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid running it")
    # Times the job was enqueued again after its worker vanished.
    resumes = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True

    @property
    def is_live(self) -> bool:
        return self.status in self.STATES.live

    @property
    def is_over(self) -> bool:
        return self.status in self.STATES.over


Job = TypeVar("Job", bound=JobRecord)


class JobCancelled(Exception):
    """The job is no longer this worker's to run (cancelled, failed, or taken over after this
    worker fell silent): stop, write no more."""


class AlreadyOver(DomainError, status=409, code="conflict"):
    """A cancel of a job that has already ended."""


def live(model: type[JobRecord]) -> models.Q:
    """The filter for a kind's jobs that are not over."""
    return models.Q(status__in=model.STATES.live)


def creator(user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    """Who a job records as its creator (nobody for anonymous or command-line runs)."""
    return user if user is not None and user.is_authenticated else None


# --- create -----------------------------------------------------------------------------------


def enqueue(row: JobRecord) -> None:
    """Send the job's task once the row is committed (a worker must be able to read it; with
    no broker, in the quick start, it then runs in this process). A broker that cannot be
    reached fails the job at once, with the reason, rather than leaving it queued for ever."""
    from celery import current_app

    model, pk = type(row), row.pk
    name = model.RESUME_TASK
    importlib.import_module(name.rpartition(".")[0])  # registers the task by its name
    task = current_app.tasks[name]

    def send() -> None:
        from kombu.exceptions import OperationalError

        if current_app.conf.task_always_eager and settings.JOBS_IN_BACKGROUND_THREAD:
            threading.Thread(
                target=_run_in_thread, args=(task, pk), name=f"{name}:{pk}", daemon=True
            ).start()
            return
        try:
            task.delay(pk)
        except (OperationalError, OSError) as exc:
            log.exception("could not enqueue %s %s", model.__name__, pk)
            fail(model, pk, f"the task queue could not be reached ({exc}); start it again")

    transaction.on_commit(send)


def _run_in_thread(task, pk: int) -> None:
    """A job's task in a thread of this process (no broker): failures are the job's (its task
    records them); the thread's database connection is closed when it ends."""
    from django.db import connections

    try:
        task.delay(pk)
    except Exception:
        log.exception("job task %s(%s) failed in its thread", task.name, pk)
    finally:
        connections.close_all()


# --- a worker holds it ------------------------------------------------------------------------


class Claim(Enum):
    CLAIMED = "claimed"
    FINISHED = "finished"
    BUSY = "busy"


def worker_id() -> str:
    """host:pid:thread of the caller: a worker process may run tasks in threads (a threads
    pool, the quick start's background jobs), each its own holder."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def worker_gone(worker: str) -> bool:
    """True when `worker` ran on this host and its process (or, in this process, its thread)
    no longer exists. Unknown elsewhere: only the heartbeat can tell."""
    host, pid, thread = (*worker.split(":"), "", "")[:3]  # an older row has no thread
    if not worker or host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        if not thread.isdigit() or int(thread) == threading.get_ident():
            return True  # this very thread: whatever ran the job before has returned or died
        return int(thread) not in {t.ident for t in threading.enumerate()}
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def holder_lost(row: JobRecord, now: datetime | None = None) -> bool:
    """A running row whose worker died (on this host) or whose heartbeat went silent."""
    now = now or timezone.now()
    beat_at = row.heartbeat_at or row.started_at or row.created_at
    silent = beat_at is None or now - beat_at >= row.STALE_AFTER
    return silent or (row.SINGLE_WORKER and worker_gone(row.worker))


def claim(
    model: type[Job], pk: int, *, finished: tuple[str, ...] | None = None
) -> tuple[Claim, Job]:
    """Take the job for this worker, unless it is over (`finished`: the states no delivery may
    restart, by default every end) or a live worker holds it."""
    states = model.STATES
    finished = states.over if finished is None else finished
    now = timezone.now()
    with transaction.atomic():
        row = model.objects.select_for_update().get(pk=pk)
        if row.status in finished:
            return Claim.FINISHED, row
        if row.status == states.running and not holder_lost(row, now):
            return Claim.BUSY, row
        row.status = states.running
        row.started_at = row.started_at or now
        row.heartbeat_at = now
        row.worker = worker_id()
        row.save(update_fields=["status", "started_at", "heartbeat_at", "worker"])
        return Claim.CLAIMED, row


def claim_or_wait(
    model: type[Job],
    pk: int,
    *,
    finished: tuple[str, ...] | None = None,
    poll_seconds: float = 30.0,
) -> Job | None:
    """The row, claimed for this worker; None once it is over (by us earlier, or by the worker
    we waited for)."""
    while True:
        state, row = claim(model, pk, finished=finished)
        if state is Claim.CLAIMED:
            return row
        if state is Claim.FINISHED:
            return None
        time.sleep(poll_seconds)


def start_running(
    model: type[Job], pk: int, *, progress: Mapping[str, Any] | None = None
) -> Job | None:
    """Mark a job running for work that many workers share (a filter job's chunks), `progress`
    merged into its own under the row's lock; None when it is over. Unlike `claim`, another
    live holder does not matter."""
    with transaction.atomic():
        row = model.objects.select_for_update().get(pk=pk)
        if row.is_over:
            return None
        now = timezone.now()
        row.status = model.STATES.running
        row.started_at = row.started_at or now
        row.heartbeat_at = now
        row.worker = worker_id()
        row.progress = {**row.progress, **(progress or {})}
        row.save(update_fields=["status", "started_at", "heartbeat_at", "worker", "progress"])
        return row


def beat(model: type[JobRecord], pk: int, **fields: Any) -> None:
    """Write progress (any fields) with the heartbeat; JobCancelled once the job is no longer
    this worker's (cancelled, or taken over), so that the worker stops."""
    me = worker_id()
    if model.SINGLE_WORKER:
        held = model.objects.filter(pk=pk, status=model.STATES.running, worker=me)
    else:  # chunks go on while `reap` puts the job back in the queue
        held = model.objects.filter(live(model), pk=pk)
    if not held.update(heartbeat_at=timezone.now(), worker=me, **fields):
        raise JobCancelled


class Throttled:
    """`beat` at most every `every_s` seconds (and always when `force`d): progress for people
    to follow, without a write per record."""

    def __init__(self, model: type[JobRecord], pk: int, every_s: float = 0.5) -> None:
        self.model, self.pk, self.every_s = model, pk, every_s
        self.last = float("-inf")

    def __call__(self, *, force: bool = False, **fields: Any) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.every_s:
            beat(self.model, self.pk, **fields)
            self.last = now


# --- the end ----------------------------------------------------------------------------------


def finish(model: type[JobRecord], pk: int, **fields: Any) -> bool:
    """Mark a running job done with its results; False (nothing written) if it was cancelled
    meanwhile."""
    return _end(model, pk, model.STATES.done, (model.STATES.running,), **fields)


def fail(model: type[JobRecord], pk: int, message: str, **fields: Any) -> bool:
    """Mark a live job failed with the reason people will read; never over a cancel."""
    return _end(model, pk, model.STATES.failed, model.STATES.live, error=message[:5000], **fields)


def _end(model: type[JobRecord], pk: int, status: str, only_from: tuple[str, ...],
         **fields: Any) -> bool:
    rows = model.objects.filter(pk=pk, status__in=only_from)
    return bool(rows.update(status=status, finished_at=timezone.now(), **fields))


def cancel(model: type[Job], pk: int, user: AbstractBaseUser | None) -> Job:
    """Cancel a queued or running job (409 once it is over). Its worker stops at its next
    progress write; a later delivery of its task does nothing. What it finished stays."""
    with transaction.atomic():
        row = model.objects.select_for_update().get(pk=pk)
        if row.is_over:
            raise AlreadyOver(f"{model._meta.verbose_name} {pk} is already {row.status}")
        row.status = model.STATES.cancelled
        row.finished_at = timezone.now()
        who = user.get_username() if user is not None and user.is_authenticated else "a command"
        row.error = f"cancelled by {who}"
        row.save(update_fields=["status", "finished_at", "error"])
    return row


# --- workers that vanished --------------------------------------------------------------------


def job_kinds() -> Iterator[type[JobRecord]]:
    """Every concrete kind of long job installed."""
    for model in apps.get_models():
        if issubclass(model, JobRecord) and model.RESUME_TASK:
            yield model


@dataclass
class Reaped:
    resumed: list[tuple[str, int]]
    failed: list[tuple[str, int]]


def reap(*, now: datetime | None = None) -> Reaped:
    """Find running jobs whose worker vanished; enqueue each again, or after MAX_RESUMES tries
    mark it failed with the reason. Safe to run anywhere, any time, by several beats at once:
    each row is decided under its lock and only while it is still lost."""
    now = now or timezone.now()
    reaped = Reaped(resumed=[], failed=[])
    for model in job_kinds():
        candidates = model.objects.filter(status=model.STATES.running).values_list("pk", flat=True)
        for pk in candidates:
            with transaction.atomic():
                row = model.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
                if row is None or row.status != model.STATES.running or not holder_lost(row, now):
                    continue
                label = (model._meta.label, pk)
                beat_at = row.heartbeat_at
                last = beat_at.isoformat(timespec="seconds") if beat_at else "never"
                # A job shared by many workers (a filter job's chunks) is never failed here: its
                # silence may be a long queue, and a resume only re-queues what is undone.
                if row.SINGLE_WORKER and row.resumes >= MAX_RESUMES:
                    row.status = model.STATES.failed
                    row.finished_at = now
                    row.error = (
                        f"its worker ({row.worker or 'unknown'}) vanished (last heartbeat: {last}) "
                        f"and it was resumed {row.resumes} times already; start it again"
                    )
                    row.save(update_fields=["status", "finished_at", "error"])
                    reaped.failed.append(label)
                    continue
                log.warning("%s %s: worker %s lost (last heartbeat %s); resuming",
                            model.__name__, pk, row.worker, last)
                # Back to queued: the next delivery claims it; progress and results so far stay.
                row.status = model.STATES.queued
                row.resumes += 1
                row.worker = ""
                row.save(update_fields=["status", "resumes", "worker"])
                reaped.resumed.append(label)
                enqueue(row)  # sent when this row's transaction commits
    return reaped
