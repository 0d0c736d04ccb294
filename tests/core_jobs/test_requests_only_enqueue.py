"""A request only records a long job and enqueues it: the work runs on a worker, so no request
can outlive the web server's timeout half-done (security issue #11, finding 5)."""

from __future__ import annotations

import os

import pytest

from config.celery import app as celery_app
from curation.models import JobStatus, Source, SourceImport, SourceItem
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.curation_api.test_source_imports import big_manifest

pytestmark = pytest.mark.django_db(transaction=True)


def body(manifest, name: str) -> dict:
    return {"kind": "manifest", "path": str(manifest), "name": name, "scale": [1, 10]}


def test_an_import_the_request_cannot_wait_for_answers_202_and_imports_nothing_itself(
    client_as, import_root, settings
):
    settings.IMPORT_WAIT_SECONDS = 0.3
    celery_app.control.purge()
    manifest = big_manifest(import_root / "set", 500)
    response = client_as("curator").post("/api/sources/", body(manifest, "set"), format="json")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["status"] == "queued" and job["source"] is None
    # No worker runs here: nothing was imported by the request.
    assert not Source.objects.exists() and not SourceItem.objects.exists()

    worker = start_worker(worker_env())  # the queued import is a worker's
    try:
        done = jobs_wait(job["id"])
    finally:
        stop_worker(worker)
    assert done.status == JobStatus.DONE and done.created == 500
    assert done.worker.split(":")[1] != str(os.getpid())  # another process ran it


def jobs_wait(import_id: int, timeout_s: float = 60) -> SourceImport:
    from curation.services.sources import wait_for_import

    return wait_for_import(import_id, timeout_s=timeout_s)


def test_an_import_a_worker_finishes_in_time_answers_its_outcome(client_as, import_root):
    celery_app.control.purge()
    manifest = big_manifest(import_root / "set", 50)
    worker = start_worker(worker_env())
    try:
        response = client_as("curator").post("/api/sources/", body(manifest, "s"), format="json")
    finally:
        stop_worker(worker)
    assert response.status_code == 201, response.content
    outcome = response.json()
    assert outcome["status"] == "done" and outcome["created"] == 50
    assert outcome["source"]["name"] == "s"
    job = SourceImport.objects.get()
    assert job.worker.split(":")[1] != str(os.getpid())  # not this (the web) process


def test_an_unreachable_broker_fails_the_job_with_the_reason(client_as, import_root, settings):
    settings.IMPORT_WAIT_SECONDS = 2
    manifest = big_manifest(import_root / "set", 5)
    before = celery_app.conf.broker_write_url

    def use_broker(url: str) -> None:  # a fresh connection pool for the new address
        celery_app.conf.broker_write_url = url
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    use_broker("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        response = client_as("curator").post("/api/sources/", body(manifest, "s"),
                                             format="json")
    finally:
        use_broker(before)
    job = SourceImport.objects.get()
    assert job.status == JobStatus.FAILED, job.status
    assert "task queue could not be reached" in job.error
    assert response.status_code == 400 and "task queue" in response.json()["detail"]
    assert not Source.objects.exists()
