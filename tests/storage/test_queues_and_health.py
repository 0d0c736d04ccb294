"""Queues by resource (a CPU worker never takes GPU work), the health endpoints and the workers'
heartbeats the admin sees."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from config.celery import app as celery_app
from core.models import WorkerHeartbeat
from curation.models import FilterJob, JobStatus, Source
from curation.services.jobs import start_job
from curation.services.sources import import_source
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.conftest import client_for, make_user, write_image

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
    source = Source.objects.create(name="s", kind="manifest", location="/x")
    with_clip = FilterJob.objects.create(source=source, config={"clip": {"enabled": True}})
    without = FilterJob.objects.create(source=source, config={"clip": {"enabled": False}})
    assert _queue_of("curation.tasks.process_chunk", with_clip.pk, [1], 0) == "gpu"
    assert _queue_of("curation.tasks.process_chunk", without.pk, [1], 0) == "cpu"
    # Every queue a route names is one a worker for everything listens to.
    _, table = settings.CELERY_TASK_ROUTES
    assert {r["queue"] for r in table.values()} <= set(settings.WORKER_QUEUES)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_cpu_queue_never_takes_gpu_work(settings, tmp_path):
    root = tmp_path / "imports"
    (root / "set").mkdir(parents=True)
    lines = ["path"]
    for i in range(3):
        write_image(root / "set" / f"p{i}.jpg", size=(300, 300), seed=i)
        lines.append(f"p{i}.jpg")
    (root / "set" / "m.csv").write_text("\n".join(lines) + "\n")
    settings.IMPORT_ROOTS = [root.resolve()]
    source = import_source("manifest", root / "set" / "m.csv", "set").source
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for queue in settings.WORKER_QUEUES:
        broker.delete(queue)

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
