"""A filter job's chunks are counted by a row each (ReportedChunk), under the job's row lock:
a chunk delivered twice counts once, chunks reported at once by many workers all count, the
job ends when the last one is in, and the job's progress stays the same size however many
chunks it has."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from curation.models import FilterJob, JobStatus, ReportedChunk, Source
from curation.services import jobs as filter_jobs
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)


def _running_job(chunks: int) -> FilterJob:
    source = Source.objects.create(name="s", location="/nowhere")
    job = FilterJob.objects.create(
        source=source, status=JobStatus.RUNNING, worker="elsewhere:1",
        progress={"total": 10 * chunks, "stages": {}, "chunks": chunks, "chunks_reported": 0},
    )
    return job


def test_a_chunk_delivered_twice_counts_once():
    job = _running_job(2)
    filter_jobs._record_chunk(job.pk, 0, {"validate": 10})
    filter_jobs._record_chunk(job.pk, 0, {})  # the same chunk's task, delivered again
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.progress["chunks_reported"] == 1
    assert list(job.reported_chunks.values_list("index", flat=True)) == [0]
    filter_jobs._record_chunk(job.pk, 1, {"validate": 10})
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.finished_at is not None
    assert job.progress["chunks_reported"] == 2 and job.progress["stages"]["validate"] == 20


def test_chunks_reported_at_once_by_many_workers_all_count_and_end_the_job():
    chunks = 12
    job = _running_job(chunks)
    barrier = threading.Barrier(chunks)

    def report(index: int) -> None:
        barrier.wait(timeout=30)
        filter_jobs._record_chunk(job.pk, index, {"validate": 1})

    assert run_threads(report, range(chunks), barrier=barrier, timeout=60) == []
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert job.progress["chunks_reported"] == chunks
    assert job.progress["stages"]["validate"] == chunks
    assert sorted(job.reported_chunks.values_list("index", flat=True)) == list(range(chunks))


def test_the_progress_does_not_grow_with_the_chunks():
    job = _running_job(500)
    filter_jobs._record_chunk(job.pk, 0, {})
    small = len(str(FilterJob.objects.get(pk=job.pk).progress))
    for index in range(1, 400):
        filter_jobs._record_chunk(job.pk, index, {})
    progress = FilterJob.objects.get(pk=job.pk).progress
    assert progress["chunks_reported"] == 400
    assert len(str(progress)) <= small + 2  # a count's digits, not a list of 400 indexes


def test_jobs_stored_with_a_list_of_chunks_keep_them_across_the_migration():
    executor = MigrationExecutor(connection)
    before, after = [("curation", "0008_staged_items")], [("curation", "0009_reported_chunks")]
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        Source = apps.get_model("curation", "Source")
        OldJob = apps.get_model("curation", "FilterJob")
        source = Source.objects.create(name="old", location="/nowhere")
        old = OldJob.objects.create(source=source, status="running", progress={
            "total": 9, "chunks": 3, "chunks_done": [2, 0], "stages": {"validate": 6}})
        fresh = OldJob.objects.create(source=source, status="queued", progress={})
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    job = FilterJob.objects.get(pk=old.pk)
    assert job.progress == {"total": 9, "chunks": 3, "chunks_reported": 2,
                            "stages": {"validate": 6}}
    assert sorted(job.reported_chunks.values_list("index", flat=True)) == [0, 2]
    assert FilterJob.objects.get(pk=fresh.pk).progress == {}
    assert not ReportedChunk.objects.filter(job_id=fresh.pk).exists()
