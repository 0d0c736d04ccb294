"""The lease sweep runs in a real Celery worker process over Redis, against PostgreSQL."""

import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from annotation import services, tasks
from annotation.models import Assignment, AssignmentStatus, ProjectImage
from tests.celery_worker import start_worker, stop_worker, worker_env

ROOT = Path(__file__).resolve().parents[2]


def test_sweep_frees_expired_leases_in_process(make_project):
    project, _, users = make_project(2, overlap=1, raters=["r1"])
    a = services.next_task(project, users["r1"])
    Assignment.objects.filter(pk=a.pk).update(expires_at=timezone.now())
    assert tasks.reclaim_expired_leases.run() == 1
    assert tasks.reclaim_expired_leases.run() == 0  # idempotent
    assert ProjectImage.objects.get(pk=a.project_image_id).leased == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sweep_runs_on_a_real_worker(make_project):
    assert settings.CELERY_BROKER_URL, "run the suite with a broker: `make test` sets one"
    assert not settings.CELERY_TASK_ALWAYS_EAGER
    project, _, users = make_project(1, overlap=1, raters=["r1"])
    a = services.next_task(project, users["r1"])
    Assignment.objects.filter(pk=a.pk).update(expires_at=timezone.now())

    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = start_worker(worker_env(), queue=queue)
    try:
        tasks.reclaim_expired_leases.apply_async(queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            a.refresh_from_db()
            if a.status == AssignmentStatus.EXPIRED:
                break
            assert worker.poll() is None, worker.stdout.read().decode()
            time.sleep(0.2)
        assert a.status == AssignmentStatus.EXPIRED
        assert ProjectImage.objects.get(pk=a.project_image_id).leased == 0
    finally:
        stop_worker(worker)
