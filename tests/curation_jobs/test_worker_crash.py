"""A worker killed mid-job: a new worker finishes it, every image decided exactly once."""

import signal
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Count

from config.celery import app as celery_app
from curation.models import Decision, FilterJob, JobStatus, Source, SourceItem
from curation.services.jobs import start_job
from curation.services.sources import import_source
from tests.celery_worker import start_worker, stop_worker, worker_env

from .conftest import astronaut

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
N_IMAGES = 24


def test_kill_the_worker_mid_job_and_start_another(import_root):
    assert settings.CELERY_BROKER_URL, "run the suite with a broker: `make test` sets one"
    folder = import_root / "crash"
    folder.mkdir()
    lines = ["path"]
    for i in range(N_IMAGES):
        img = astronaut(900).rotate(i * 13, expand=False)
        img.save(folder / f"p{i:02d}.jpg", quality=90)
        lines.append(f"p{i:02d}.jpg")
    (folder / "m.csv").write_text("\n".join(lines) + "\n")
    import_source("manifest", folder / "m.csv", "crash")
    celery_app.control.purge()

    # a message taken by a vanished worker goes back to the queue after this many seconds
    env = worker_env(CELERY_VISIBILITY_TIMEOUT="4", CELERY_RESTORE_THROTTLE="1")
    first = start_worker(env)
    second = None
    try:
        job = start_job(
            Source.objects.get(name="crash"),
            overrides={"chunk_size": 4, "clip": {"enabled": False}},
        )
        deadline = time.monotonic() + 120
        while Decision.objects.filter(job=job).count() < 6:
            assert time.monotonic() < deadline, "the first worker decided nothing"
            assert first.poll() is None, first.stdout.read().decode()
            time.sleep(0.05)
        stop_worker(first, signal.SIGKILL)  # mid-chunk: no goodbye, no ack
        killed_at = Decision.objects.filter(job=job).count()
        assert killed_at < N_IMAGES

        second = start_worker(env)
        while FilterJob.objects.get(pk=job.pk).status != JobStatus.DONE:
            assert time.monotonic() < deadline + 60, (
                f"job not done: {FilterJob.objects.get(pk=job.pk).progress}"
            )
            assert second.poll() is None, second.stdout.read().decode()
            time.sleep(0.2)
    finally:
        stop_worker(first, signal.SIGKILL)
        if second is not None:
            stop_worker(second)

    per_item = Decision.objects.filter(job=job).values("item").annotate(n=Count("id"))
    assert {row["n"] for row in per_item} == {1}
    assert per_item.count() == SourceItem.objects.filter(source__name="crash").count()
    assert not Decision.objects.filter(job=job, decision="error").exists()
