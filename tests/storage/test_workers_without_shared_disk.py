"""Workers that share nothing but PostgreSQL, Redis and the bucket: each has its own empty
MEDIA_ROOT and scratch folder. The source's manifest and photos are in the bucket; the import and
the filter job run on the workers; a worker killed mid-chunk, its scratch lost with it, leaves
nothing lost and nothing doubled."""

from __future__ import annotations

import shutil
import signal
import time

import pytest
from django.conf import settings
from django.db.models import Count

from curation.models import (
    Decision,
    FilterJob,
    Image,
    JobStatus,
    Source,
    SourceImport,
    SourceItem,
)
from curation.services.jobs import start_job
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.conftest import client_for, make_user
from tests.curation_jobs.conftest import astronaut

from .conftest import no_local_media

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _upload_photos(bucket, n: int) -> str:
    """n photos of a person (rotated: no two alike) and their manifest under imports/crowd/."""
    import io

    lines = ["path,score"]
    for i in range(n):
        buf = io.BytesIO()
        astronaut(900).rotate(i * 13, expand=False).save(buf, format="JPEG", quality=90)
        bucket.put(f"imports/crowd/p{i:02d}.jpg", buf.getvalue())
        lines.append(f"p{i:02d}.jpg,{1 + i % 10}")
    bucket.put("imports/crowd/manifest.csv", ("\n".join(lines) + "\n").encode())
    return "storage:imports/crowd/manifest.csv"


def _machine(tmp_path, name: str, bucket, **extra: str) -> tuple[dict[str, str], dict]:
    """A worker's environment as on a machine of its own: empty media and scratch folders."""
    folders = {"media": tmp_path / name / "media", "scratch": tmp_path / name / "scratch"}
    env = worker_env(
        **bucket.env,
        MEDIA_ROOT=str(folders["media"]),
        SCRATCH_DIR=str(folders["scratch"]),
        **extra,
    )
    return env, folders


def _copies(folder) -> list:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def shared_nothing(s3_bucket, settings, empty_queues):
    settings.IMPORT_ROOTS = []
    settings.IMPORT_STORAGE_ROOTS = ["imports"]
    return s3_bucket


def _wait(predicate, what, workers, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what()
        for w in workers:
            assert w.poll() is None, w.stdout.read().decode()
        time.sleep(0.2)


def _exactly_once(job: FilterJob, source: Source) -> None:
    per_item = Decision.objects.filter(job=job).values("item").annotate(n=Count("id"))
    assert {row["n"] for row in per_item} == {1}
    assert per_item.count() == SourceItem.objects.filter(source=source).count()
    assert not Decision.objects.filter(job=job, decision="error").exists()
    stored = set(Image.objects.values_list("file", flat=True))
    assert len(stored) == per_item.count()  # every photo differs: one pool image each


def test_two_workers_with_their_own_disks_import_and_filter_from_the_bucket(
    shared_nothing, tmp_path
):
    bucket = shared_nothing
    path = _upload_photos(bucket, 16)
    env_a, disk_a = _machine(tmp_path, "a", bucket)
    env_b, disk_b = _machine(tmp_path, "b", bucket)
    workers = [start_worker(env_a, name="a@%h"), start_worker(env_b, name="b@%h")]
    try:
        curator = client_for(make_user("cur", "curator"))
        body = {"kind": "manifest", "path": path, "name": "crowd", "scale": [1, 10],
                "background": True}
        started = curator.post("/api/sources/", body, format="json")
        assert started.status_code == 202, started.content
        url = f"/api/source-imports/{started.json()['id']}/"
        _wait(lambda: curator.get(url).json()["status"] not in ("queued", "running"),
              lambda: SourceImport.objects.values("status", "error", "worker", "progress").get(),
              workers)
        assert curator.get(url).json()["status"] == "done"
        source = Source.objects.get(name="crowd")
        assert source.location == "storage:imports/crowd" and source.items.count() == 16

        job = start_job(source, overrides={"clip": {"enabled": False}, "chunk_size": 2})
        _wait(lambda: FilterJob.objects.get(pk=job.pk).status == JobStatus.DONE,
              lambda: FilterJob.objects.get(pk=job.pk).progress, workers)
    finally:
        for w in workers:
            stop_worker(w)

    _exactly_once(job, source)
    assert set(Decision.objects.filter(job=job).values_list("decision", flat=True)) <= {
        "accepted", "rejected"
    }
    assert set(Image.objects.values_list("file", flat=True)) <= set(bucket.names("images/"))
    # Both machines worked (each fetched photos into its own scratch), neither wrote to its
    # media folder, and neither did the web process: every file went through the bucket.
    assert _copies(disk_a["scratch"]) and _copies(disk_b["scratch"])
    assert _copies(disk_a["media"]) == [] and _copies(disk_b["media"]) == []
    assert no_local_media(settings.MEDIA_ROOT) == []


def test_a_worker_killed_mid_chunk_with_its_scratch_lost(shared_nothing, tmp_path):
    bucket = shared_nothing
    path = _upload_photos(bucket, 20)
    from curation.services.sources import import_source

    source = import_source("manifest", path, "crowd", scale=(1, 10)).source
    # A message taken by a vanished worker goes back to the queue after this many seconds.
    crash = {"CELERY_VISIBILITY_TIMEOUT": "4", "CELERY_RESTORE_THROTTLE": "1"}
    env_a, disk_a = _machine(tmp_path, "a", bucket, **crash)
    first = start_worker(env_a, name="a@%h")
    second = None
    try:
        job = start_job(source, overrides={"clip": {"enabled": False}, "chunk_size": 4})
        _wait(lambda: Decision.objects.filter(job=job).count() >= 6,
              lambda: "the first worker decided nothing", [first], timeout=120)
        stop_worker(first, signal.SIGKILL)  # mid-chunk: no goodbye, no ack
        killed_at = Decision.objects.filter(job=job).count()
        assert killed_at < 20
        assert _copies(disk_a["scratch"])
        shutil.rmtree(tmp_path / "a")  # its machine is gone, scratch and all

        env_b, disk_b = _machine(tmp_path, "b", bucket, **crash)
        second = start_worker(env_b, name="b@%h")
        _wait(lambda: FilterJob.objects.get(pk=job.pk).status == JobStatus.DONE,
              lambda: FilterJob.objects.get(pk=job.pk).progress, [second])
    finally:
        stop_worker(first, signal.SIGKILL)
        if second is not None:
            stop_worker(second)

    _exactly_once(job, source)
    assert Decision.objects.filter(job=job).count() > killed_at  # the second worker finished it
    assert _copies(disk_b["scratch"]) and _copies(disk_b["media"]) == []
    assert set(Image.objects.values_list("file", flat=True)) <= set(bucket.names("images/"))
