"""A worker that vanishes never leaves a job "running" with nobody running it: `core.jobs.reap`
(a beat task) finds it by its holder's death or its silent heartbeat, and resumes it or, after
repeated losses, fails it with the reason. Real workers, really killed."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from core import jobs
from curation.models import (
    FilterJob,
    JobStatus,
    ReportedChunk,
    Source,
    SourceImport,
    SourceItem,
)
from curation.services import jobs as filter_jobs
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.curation_api.test_source_imports import big_manifest

pytestmark = pytest.mark.django_db(transaction=True)


def running_import(import_root, name: str = "set", **fields) -> SourceImport:
    """An import some worker holds (by default with a heartbeat just now)."""
    manifest = big_manifest(import_root / name, 30)
    now = timezone.now()
    fields = {"started_at": now, "heartbeat_at": now, **fields}
    return SourceImport.objects.create(
        kind="manifest", path=str(manifest), name=name, scale=[1, 10], status=JobStatus.RUNNING,
        **fields,
    )


def wait_for(predicate, timeout_s: float, what: str, worker=None):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if worker is not None and worker.poll() is not None:
            raise AssertionError(f"worker exited: {worker.stdout.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.slow
def test_an_import_whose_worker_was_killed_is_resumed_by_the_reaper(client_as, import_root):
    n = 150_000
    manifest = big_manifest(import_root / "huge", n)
    celery_app.control.purge()
    # The broker would hand the killed worker's message on only after an hour: only the
    # heartbeat can tell that the import lost its worker.
    env = worker_env(CELERY_VISIBILITY_TIMEOUT="3600")
    first, second = start_worker(env), None
    try:
        body = {"kind": "manifest", "path": str(manifest), "name": "huge", "scale": [1, 10],
                "background": True}
        job_id = client_as("curator").post("/api/sources/", body, format="json").json()["id"]
        items = SourceItem.objects.filter(source__name="huge")
        wait_for(lambda: items.exists(), 120, "the import never wrote", first)
        stop_worker(first, signal.SIGKILL)  # mid-import: no goodbye, no ack
        written = items.count()
        job = SourceImport.objects.get(pk=job_id)
        assert 0 < written < n and job.status == JobStatus.RUNNING
        assert job.worker.startswith(socket.gethostname() + ":")

        reaped = jobs.reap()  # what the beat does every minute
        assert reaped.resumed == [("curation.SourceImport", job_id)] and not reaped.failed
        job.refresh_from_db()
        assert job.status == JobStatus.QUEUED and job.resumes == 1
        assert jobs.reap().resumed == []  # queued again: nothing more to do until it runs

        second = start_worker(env)
        wait_for(lambda: SourceImport.objects.get(pk=job_id).is_over, 180, "not resumed", second)
    finally:
        for worker in (first, second):
            if worker is not None:
                stop_worker(worker)
    job = SourceImport.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE, job.error
    assert items.count() == n and job.created + job.updated == n  # nothing doubled
    assert job.updated >= written and job.resumes == 1


def test_a_silent_worker_elsewhere_is_resumed_and_the_import_completes(import_root,
                                                                       eager_celery):
    stale = timezone.now() - SourceImport.STALE_AFTER - timedelta(seconds=1)
    job = running_import(import_root, worker="another-host:4242", heartbeat_at=stale)
    fresh = running_import(import_root, "fresh", worker="another-host:4243")

    reaped = jobs.reap()  # with no broker the resumed import runs at once, in-process
    assert reaped.resumed == [("curation.SourceImport", job.pk)]
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.created == 30 and job.resumes == 1
    assert SourceImport.objects.get(pk=fresh.pk).status == JobStatus.RUNNING  # still beating


def test_a_job_lost_again_and_again_fails_with_the_reason(import_root):
    stale = timezone.now() - timedelta(hours=1)
    job = running_import(import_root, worker="another-host:1", heartbeat_at=stale,
                         resumes=jobs.MAX_RESUMES)
    reaped = jobs.reap()
    assert reaped.failed == [("curation.SourceImport", job.pk)] and not reaped.resumed
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.finished_at
    assert "another-host:1" in job.error and "vanished" in job.error
    assert "resumed 3 times" in job.error


def test_a_live_holder_on_this_host_keeps_its_job_until_it_dies(import_root):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        job = running_import(import_root, worker=f"{socket.gethostname()}:{holder.pid}")
        assert jobs.reap().resumed == []
    finally:
        holder.kill()
        holder.wait()
    reaped = jobs.reap(now=job.heartbeat_at)  # its heartbeat is fresh, but its process died
    assert reaped.resumed == [("curation.SourceImport", job.pk)]


def test_a_filter_job_resumes_only_its_unreported_chunks(import_root):
    source = Source.objects.create(name="s", location=str(import_root))
    SourceItem.objects.bulk_create(SourceItem(source=source, path=f"{i}.jpg") for i in range(5))
    config = filter_jobs.merged_config({"chunk_size": 2, "clip": {"enabled": False}})
    stale = timezone.now() - FilterJob.STALE_AFTER - timedelta(seconds=1)
    job = FilterJob.objects.create(
        source=source, config=config, status=JobStatus.RUNNING, heartbeat_at=stale,
        worker=f"{socket.gethostname()}:999999",
        progress={"total": 5, "chunks": 3, "chunks_reported": 2},
    )
    ReportedChunk.objects.bulk_create(ReportedChunk(job=job, index=i) for i in (0, 2))
    # Chunks run on many workers: one dead chunk worker with a fresh heartbeat is not a lost job.
    FilterJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    assert jobs.reap().resumed == []
    FilterJob.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    celery_app.control.purge()
    reaped = jobs.reap()  # sends the job's task to the broker (no worker here)
    assert reaped.resumed == [("curation.FilterJob", job.pk)]
    assert FilterJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
    todo = filter_jobs.chunks_to_run(job.pk)  # what that task queues when a worker takes it
    assert [index for index, _ in todo] == [1]
    assert FilterJob.objects.get(pk=job.pk).status == JobStatus.RUNNING
    # Silent again and again (a long queue, say): re-queued each time, never failed.
    FilterJob.objects.filter(pk=job.pk).update(heartbeat_at=stale, resumes=jobs.MAX_RESUMES)
    assert jobs.reap().resumed == [("curation.FilterJob", job.pk)]
    assert FilterJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
    celery_app.control.purge()
