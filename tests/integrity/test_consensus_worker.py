"""Issue #10, finding 4, with a broker: a real Celery worker keeps the consensus fresh.

Ratings go through the REST API; the submit queues one debounced refresh per burst on Redis,
and a real worker process runs it against PostgreSQL. No beat, no manual refresh.
"""

from __future__ import annotations

import time
import uuid

import pytest

from annotation.models import ConsensusLabel, ProjectImage, ProjectStats
from annotation.services.quality import refresh_statistics
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.conftest import full_scores

from .test_consensus_fresh import labels_of, rate_via_api


def wait_until_fresh(project, worker, n_labels: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stale = ProjectImage.objects.filter(project=project, consensus_stale=True).exists()
        if not stale and ConsensusLabel.objects.filter(project=project).count() == n_labels:
            return
        assert worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.2)
    raise AssertionError("the worker did not refresh the consensus in time")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_refreshes_the_consensus_after_a_burst_of_ratings(make_project, settings):
    assert settings.CELERY_BROKER_URL and not settings.CELERY_TASK_ALWAYS_EAGER
    queue = f"test-refresh-{uuid.uuid4().hex[:8]}"
    settings.QUALITY_REFRESH_QUEUE = queue
    settings.QUALITY_REFRESH_DEBOUNCE_S = 1
    project, images, users = make_project(4, overlap=3, raters=["a", "b", "c"])
    worker = start_worker(worker_env(), queue=queue)
    try:
        # A burst: two raters rate every image.
        for name, level in (("a", 2), ("b", 4)):
            for _ in images:
                rate_via_api(project, users[name], full_scores(level))
        wait_until_fresh(project, worker, len(images))
        first = labels_of(project)
        assert all(s["looks"]["n"] == 2 for s in first.values())
        runs = ProjectStats.objects.get(project=project).refresh_runs
        assert 1 <= runs <= 4, runs  # debounced: 8 ratings, a few refreshes

        # The third rating of each image updates its label.
        for _ in images:
            rate_via_api(project, users["c"], full_scores(5))
        wait_until_fresh(project, worker, len(images))
        time.sleep(0.5)
        second = labels_of(project)
        assert all(s["looks"]["n"] == 3 for s in second.values())
        assert ProjectStats.objects.get(project=project).refresh_runs - runs <= 4
    finally:
        stop_worker(worker)
    # What the worker computed is what a full refresh computes.
    refresh_statistics(project, only_stale=False)
    assert labels_of(project) == second
