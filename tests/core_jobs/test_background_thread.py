"""With no broker (the quick start), a long job runs in a background thread of the web
process: the request that starts it answers at once, and the job's progress can be followed
to its end, as with workers."""

from __future__ import annotations

import time

import pytest

from curation.models import FilterJob, JobStatus
from tests.curation_api.conftest import dataset_source  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_started_without_a_broker_runs_beside_the_request(
    client_as, dataset_source, eager_celery, settings  # noqa: F811
):
    settings.JOBS_IN_BACKGROUND_THREAD = True
    curator = client_as("curator")
    body = {"source": dataset_source.pk,
            "config": {"clip": {"enabled": False}, "chunk_size": 2}}
    started = time.monotonic()
    response = curator.post("/api/jobs/", body, format="json")
    answered = time.monotonic() - started
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    seen = {response.json()["status"]}
    deadline = time.monotonic() + 120
    while (status := curator.get(f"/api/jobs/{job_id}/").json()["status"]) != "done":
        seen.add(status)
        assert status in ("queued", "running"), status
        assert time.monotonic() < deadline, "the job never finished"
        time.sleep(0.05)
    job = FilterJob.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE and job.progress["decided"] == job.progress["total"]
    # The request did not wait for the job: the job was seen live after the answer.
    assert seen & {"queued", "running"}, (seen, answered)
