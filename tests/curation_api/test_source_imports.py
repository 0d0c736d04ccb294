"""Source imports as recorded jobs: in the request (the default) or on a worker (`background`),
with progress per written batch, and the outcome kept under /api/source-imports/."""

from __future__ import annotations

import signal
import time

import pytest

from config.celery import app as celery_app
from curation.models import JobStatus, Source, SourceImport, SourceItem
from curation.services import sources as source_service
from tests.celery_worker import start_worker, stop_worker, worker_env

from .conftest import EXPECTED, write_dataset

pytestmark = pytest.mark.django_db(transaction=True)


def big_manifest(folder, n: int):
    """A manifest of n records (the files need not exist to be imported; jobs check them)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["path,score"] + [f"img/{i:06d}.jpg,{1 + i % 10}" for i in range(n)]
    manifest = folder / "labels.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_progress_is_reported_after_every_written_batch(import_root, monkeypatch):
    manifest = write_dataset(import_root / "set")
    monkeypatch.setattr(source_service, "WRITE_BATCH", 4)
    seen = []

    def on_progress(done, total):
        # Each batch is committed before it is reported: what others can read already.
        seen.append((done, total, SourceItem.objects.count()))

    report = source_service.import_source(
        "manifest", manifest, "set", scale=(1, 10), on_progress=on_progress
    )
    n = len(EXPECTED)
    assert report.created == n
    assert seen == [(4, n, 4), (8, n, 8), (n, n, n)]


def test_a_background_import_runs_on_a_real_worker(client_as, import_root):
    manifest = big_manifest(import_root / "big", 12_000)
    celery_app.control.purge()
    worker = start_worker(worker_env())
    try:
        curator = client_as("curator")
        body = {"kind": "manifest", "path": str(manifest), "name": "big", "scale": [1, 10]}
        response = curator.post("/api/sources/", {**body, "background": True}, format="json")
        assert response.status_code == 202, response.content
        job = response.json()
        assert job["status"] == "queued" and job["name"] == "big"
        url = f"/api/source-imports/{job['id']}/"
        deadline = time.monotonic() + 60
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = curator.get(url).json()
    finally:
        stop_worker(worker)
    assert job["status"] == "done", job
    assert job["progress"] == {"done": 12_000, "total": 12_000}
    assert (job["created"], job["updated"], job["refused"]) == (12_000, 0, 0)
    assert job["created_by"] == "curator" and job["finished_at"]
    source = Source.objects.get(name="big")
    assert job["source"] == source.pk and source.items.count() == 12_000
    listing = client_as("researcher").get("/api/source-imports/").json()
    assert [j["id"] for j in listing["results"]] == [job["id"]]


def test_a_failing_background_import_keeps_the_reason(client_as, import_root, eager_celery):
    curator = client_as("curator")
    missing = import_root / "gone" / "labels.csv"  # inside the roots, but not there
    body = {"kind": "manifest", "path": str(missing), "name": "gone", "background": True}
    response = curator.post("/api/sources/", body, format="json")
    assert response.status_code == 202, response.content
    job = SourceImport.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.FAILED and "labels.csv" in job.error
    assert not Source.objects.filter(name="gone").exists()
    # Outside the roots is refused at once: no import is recorded.
    outside = curator.post(
        "/api/sources/", {**body, "path": "/etc/passwd", "name": "x"}, format="json"
    )
    assert outside.status_code == 400 and outside.json()["code"] == "outside_import_roots"
    assert SourceImport.objects.count() == 1


def test_imports_in_the_request_are_recorded_too(client_as, import_root, eager_celery):
    manifest = write_dataset(import_root / "set2")
    body = {"kind": "manifest", "path": str(manifest), "name": "set2", "scale": [1, 10]}
    assert client_as("curator").post("/api/sources/", body, format="json").status_code == 201
    job = SourceImport.objects.get()
    assert job.status == JobStatus.DONE and job.created == len(EXPECTED)
    assert job.progress == {"done": len(EXPECTED), "total": len(EXPECTED)}


def test_who_may_read_and_start_imports(client_as, import_root):
    assert client_as("annotator").get("/api/source-imports/").status_code == 403
    assert client_as(None).get("/api/source-imports/").status_code == 401
    assert client_as("researcher").get("/api/source-imports/").status_code == 200
    manifest = write_dataset(import_root / "set3")
    body = {"kind": "manifest", "path": str(manifest), "name": "set3", "background": True}
    assert client_as("researcher").post("/api/sources/", body, format="json").status_code == 403
    assert not SourceImport.objects.exists()


@pytest.mark.slow
def test_a_worker_killed_mid_import_is_replaced_and_nothing_doubles(client_as, import_root):
    n = 150_000
    manifest = big_manifest(import_root / "huge", n)
    celery_app.control.purge()
    # a message taken by a vanished worker goes back to the queue after this many seconds
    env = worker_env(CELERY_VISIBILITY_TIMEOUT="4", CELERY_RESTORE_THROTTLE="1")
    first = start_worker(env)
    second = None
    try:
        body = {"kind": "manifest", "path": str(manifest), "name": "huge", "scale": [1, 10]}
        body["background"] = True
        job_id = client_as("curator").post("/api/sources/", body, format="json").json()["id"]
        deadline = time.monotonic() + 120
        while SourceItem.objects.filter(source__name="huge").count() == 0:
            assert time.monotonic() < deadline, SourceImport.objects.values().first()
            assert first.poll() is None, first.stdout.read().decode()
            time.sleep(0.02)
        stop_worker(first, signal.SIGKILL)  # mid-import: no goodbye, no ack
        written = SourceItem.objects.filter(source__name="huge").count()
        assert 0 < written < n, written
        assert SourceImport.objects.get(pk=job_id).status == JobStatus.RUNNING

        second = start_worker(env)
        job = SourceImport.objects.get(pk=job_id)
        while job.status != JobStatus.DONE:
            assert time.monotonic() < deadline + 60, f"import not done: {job.progress}"
            assert job.status != JobStatus.FAILED, job.error
            assert second.poll() is None, second.stdout.read().decode()
            time.sleep(0.2)
            job.refresh_from_db()
    finally:
        for worker in (first, second):
            if worker is not None:
                stop_worker(worker)
    assert SourceItem.objects.filter(source__name="huge").count() == n
    assert job.created + job.updated == n and job.refused == 0
    assert job.updated >= written  # what the first worker wrote was kept, not written twice
    assert job.progress == {"done": n, "total": n}


def test_an_import_without_the_scale_it_needs_says_so_once_and_leaves_nothing(
    client_as, import_root, eager_celery
):
    manifest = big_manifest(import_root / "noscale", 50)  # scores, no score_min/score_max
    body = {"kind": "manifest", "path": str(manifest), "name": "noscale"}
    response = client_as("curator").post("/api/sources/", body, format="json")
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert "no score scale" in detail and "`scale` in the API" in detail
    assert "line 2" in detail and "nothing was imported" in detail
    assert not Source.objects.filter(name="noscale").exists()
    assert SourceImport.objects.get().status == JobStatus.FAILED


def test_the_list_says_which_sources_are_in_use_and_delete_agrees(
    client_as, import_root, tmp_path
):
    """A source is in use when images in the pool, a stored file or a filter job point to it
    (a folder import stores images directly, with no job): the list says so, and only a source
    not in use can be deleted."""
    from curation.services import get_or_create_source, import_directory
    from tests.conftest import write_image

    big_manifest(import_root / "empty", 3)
    source_service.import_source(
        "manifest", import_root / "empty" / "labels.csv", "unused", scale=(1, 10)
    )
    write_image(tmp_path / "folder" / "a.jpg", seed=1)
    import_directory(tmp_path / "folder", source=get_or_create_source("folder", kind="demo"))
    curator = client_as("curator")
    listed = {s["name"]: s for s in curator.get("/api/sources/").json()["results"]}
    assert listed["unused"]["in_use"] is False
    assert listed["folder"]["in_use"] is True and listed["folder"]["jobs"] == 0
    folder = Source.objects.get(name="folder")
    refused = curator.delete(f"/api/sources/{folder.pk}/")
    assert refused.status_code == 409 and "in use" in refused.json()["detail"]
    assert curator.delete(f"/api/sources/{listed['unused']['id']}/").status_code == 204
    assert set(Source.objects.values_list("name", flat=True)) == {"folder"}
