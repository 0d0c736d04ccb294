"""Queues by resource (a CPU worker never takes GPU work), the health endpoints and the workers'
heartbeats the admin sees."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from config.celery import app as celery_app
from core.models import WorkerHeartbeat
from curation.models import Decision, FilterJob, JobStatus, StagedItem
from curation.services.jobs import start_job
from curation.services.sources import import_source
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.conftest import client_for, make_user, write_image
from tests.curation_imaging.tiny_clip import TINY_MODEL, write_tiny_clip

from .conftest import s3_storage


def _queue_of(name: str, *args) -> str:
    return celery_app.amqp.router.route({}, name, args=args, kwargs={})["queue"].name


@pytest.mark.django_db
def test_tasks_are_routed_by_the_resource_they_need():
    assert settings.WORKER_QUEUES == ("cpu", "gpu", "io")
    assert _queue_of("curation.tasks.import_source_task", 1) == "io"
    assert _queue_of("modeling.tasks.build_release_task", 1) == "io"
    assert _queue_of("modeling.tasks.score_job", 1) == "gpu"
    assert _queue_of("modeling.tasks.train_model", 1) == "gpu"
    assert _queue_of("curation.tasks.run_filter_job", 1) == "cpu"
    assert _queue_of("core.tasks.reap_lost_jobs") == "cpu"
    assert _queue_of("annotation.tasks.refresh_stale_projects") == "cpu"
    # A filter job's CPU stages and its CLIP stage go to different queues, whatever the job.
    assert _queue_of("curation.tasks.process_chunk", 1, [1], 0) == "cpu"
    assert _queue_of("curation.tasks.clip_chunk", 1, [1], 0) == "gpu"
    # Every queue a route names is one a worker for everything listens to.
    table = settings.CELERY_TASK_ROUTES
    assert {r["queue"] for r in table.values()} <= set(settings.WORKER_QUEUES)


def _photo_source(settings, tmp_path, *, photos: int, broken: bool = False):
    """A manifest source of `photos` 300 x 300 photos (and a file that is no picture)."""
    root = tmp_path / "imports"
    (root / "set").mkdir(parents=True)
    lines = ["path"]
    for i in range(photos):
        write_image(root / "set" / f"p{i}.jpg", size=(300, 300), seed=i)
        lines.append(f"p{i}.jpg")
    if broken:
        (root / "set" / "broken.jpg").write_bytes(b"not a picture")
        lines.append("broken.jpg")
    (root / "set" / "m.csv").write_text("\n".join(lines) + "\n")
    settings.IMPORT_ROOTS = [root.resolve()]
    return import_source("manifest", root / "set" / "m.csv", "set").source


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_cpu_queue_never_takes_gpu_work(settings, tmp_path, empty_queues):
    source = _photo_source(settings, tmp_path, photos=3)
    broker = empty_queues

    settings.WORKER_HEARTBEAT_SECONDS = 0.5
    worker = start_worker(worker_env(WORKER_HEARTBEAT_SECONDS="0.5"), queue="cpu",
                          name="cpu-only@%h")
    try:
        gpu_message = celery_app.send_task("modeling.tasks.train_model", args=[10**9])
        assert gpu_message.id
        job = start_job(source, overrides={"clip": {"enabled": False}, "faces": {"enabled": False},
                                           "chunk_size": 1})
        deadline = time.monotonic() + 90
        while FilterJob.objects.get(pk=job.pk).status != JobStatus.DONE:
            assert time.monotonic() < deadline, FilterJob.objects.get(pk=job.pk).progress
            assert worker.poll() is None, worker.stdout.read().decode()
            time.sleep(0.2)
        # The CPU work is done and the GPU message still waits, untouched, for a GPU worker.
        assert broker.llen("gpu") == 1
        beat = WorkerHeartbeat.objects.get(name__startswith="cpu-only@")
        assert beat.queues == ["cpu"] and beat.alive
        first_seen = beat.last_seen
        time.sleep(1.5)
        beat.refresh_from_db()
        assert beat.last_seen > first_seen  # renewed by the worker's heartbeat thread
    finally:
        stop_worker(worker)
        broker.delete("gpu")
    beat.refresh_from_db()
    assert beat.stopped_at is not None and not beat.alive  # a clean stop is recorded

    admin = client_for(make_user("boss", "admin"))
    listed = admin.get("/api/workers/").json()["results"]
    assert [(w["name"], w["queues"], w["alive"]) for w in listed] == [
        (beat.name, ["cpu"], False)
    ]
    assert client_for(make_user("cur", "curator")).get("/api/workers/").status_code == 403
    assert client_for(None).get("/api/workers/").status_code == 401


def _wait_for(check, what: str, workers: list, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        for w in workers:
            assert w.poll() is None, w.stdout.read().decode()
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_clip_job_runs_its_cpu_stages_on_cpu_workers_and_only_clip_on_gpu_workers(
    settings, tmp_path, empty_queues
):
    source = _photo_source(settings, tmp_path, photos=4, broken=True)
    checkpoint = write_tiny_clip(tmp_path / "clip")  # its config travels beside it
    settings.MODEL_ROOTS = [(tmp_path / "clip").resolve()]
    broker = empty_queues
    clip = {"enabled": True, "model": TINY_MODEL, "checkpoint": str(checkpoint),
            "person_threshold": 0.0, "inappropriate_threshold": 1.0}

    cpu = start_worker(worker_env(), queue="cpu")
    try:
        job = start_job(source, overrides={"clip": clip, "faces": {"enabled": False},
                                           "chunk_size": 2})
        # The CPU worker validates and hashes everything, decides the unreadable file, and
        # hands the rest to the gpu queue: three chunks' CLIP stages wait there.
        _wait_for(lambda: broker.llen("gpu") == 3, "the chunks' CLIP stages were not queued",
                  [cpu])
    finally:
        stop_worker(cpu)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert StagedItem.objects.filter(job=job).count() == 4
    assert [d.item.path for d in Decision.objects.filter(job=job)] == ["broken.jpg"]
    assert job.progress["stages"]["validate"] == 5 and job.progress["stages"]["clip"] == 0

    gpu = start_worker(worker_env(), queue="gpu")  # takes nothing but the CLIP stages
    try:
        _wait_for(lambda: FilterJob.objects.get(pk=job.pk).status == JobStatus.DONE,
                  "the GPU worker did not finish the job", [gpu])
    finally:
        stop_worker(gpu)
    job.refresh_from_db()
    assert job.progress["stages"]["validate"] == 5  # not redone on the GPU worker
    assert job.progress["stages"]["clip"] == 4
    assert sorted(job.reported_chunks.values_list("index", flat=True)) == [0, 1, 2]
    assert job.progress["chunks_reported"] == 3
    assert not StagedItem.objects.filter(job=job).exists()
    decisions = Decision.objects.filter(job=job).select_related("item")
    assert decisions.count() == 5
    for d in decisions:
        if d.item.path == "broken.jpg":
            assert d.decision == "rejected" and "clip_person" not in d.measurements
        else:
            assert d.decision == "accepted", d.reasons
            assert 0.0 <= d.measurements["clip_person"] <= 1.0
            assert d.measurements["width"] == 300  # the CPU stages' measurements kept


@pytest.mark.django_db
def test_healthz_needs_nothing_and_readyz_says_what_is_down(
    client, settings, django_assert_num_queries, s3_server
):
    with django_assert_num_queries(0):
        alive = client.get("/healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    missing_bucket = {
        "MEDIA_STORAGE": "s3", "AWS_S3_ENDPOINT_URL": s3_server,
        "AWS_STORAGE_BUCKET_NAME": "no-such-bucket-secret-name",
        "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_S3_REGION_NAME": "us-east-1",
    }
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage(missing_bucket)}
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "unreachable", "storage": "unreachable"},
    }
    # Nothing about where or why: no host, port, bucket or error text.
    body = down.content.decode()
    assert "127.0.0.1" not in body and "no-such-bucket" not in body and ":1/" not in body


@pytest.mark.django_db
def test_workers_not_heard_from_for_days_leave_the_list(settings):
    from datetime import timedelta

    from django.utils import timezone

    from core.tasks import prune_worker_heartbeats

    settings.WORKER_HEARTBEAT_KEEP_DAYS = 7
    now = timezone.now()

    def worker(name: str, days_silent: float, stopped: bool) -> None:
        seen = now - timedelta(days=days_silent)
        WorkerHeartbeat.objects.create(name=name, started_at=seen, last_seen=seen,
                                       stopped_at=seen if stopped else None)

    worker("running@a", 0, stopped=False)
    worker("stopped-yesterday@b", 1, stopped=True)
    worker("stopped-long-ago@c", 8, stopped=True)
    worker("lost-with-its-machine@d", 30, stopped=False)
    assert prune_worker_heartbeats() == 2
    assert sorted(WorkerHeartbeat.objects.values_list("name", flat=True)) == [
        "running@a", "stopped-yesterday@b"
    ]
    assert "core.tasks.prune_worker_heartbeats" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }


def test_each_worker_process_keeps_opencv_to_its_own_thread(settings):
    """Processes are the parallelism; OpenCV's pool inside each would oversubscribe the cores
    (two workers on two cores ran no faster than one: benchmarks/scale_out.py)."""
    import cv2
    from celery import signals

    from config.celery import _one_opencv_thread_per_process

    for signal in (signals.worker_init, signals.worker_process_init):  # solo and prefork pools
        assert _one_opencv_thread_per_process in [ref() for _, ref in signal.receivers]
    before = cv2.getNumThreads()
    try:
        settings.OPENCV_THREADS = 1
        _one_opencv_thread_per_process()
        assert cv2.getNumThreads() == 1
        settings.OPENCV_THREADS = 2
        _one_opencv_thread_per_process()
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)
