"""Batch scoring with the files in the bucket (a real S3 server, moto, over HTTP): a worker
process with its own empty MEDIA_ROOT and scratch scores pool images stored in the bucket with a
model stored there too; the parts and the results file exist only in the bucket and the results
served to the researcher are the bucket's object. A chunk scored twice leaves its rows once."""

from __future__ import annotations

import io
import json
import shutil
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage

from curation.services.images import register_image
from modeling.models import ModelVersion, RunStatus, ScoringJob
from modeling.services import registry, scoring
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.conftest import client_for, image_bytes, make_user
from tests.modeling_api.conftest import (  # noqa: F401
    lite_model,
    lost_at_chunk,
    tiny_release,
    workspace,
)

from .conftest import no_local_media


def upload_model(bucket, directory: Path, prefix: str) -> list[str]:
    """Every file of a local model directory, under `prefix/` in the bucket."""
    keys = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(directory).as_posix()}"
        bucket.put(key, path.read_bytes())
        keys.append(key)
    return keys


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def cpu_models(settings):
    settings.MODEL_DEVICE = "cpu"
    settings.MODEL_STORAGE_ROOTS = ["models"]
    registry.clear_cache()
    yield
    registry.clear_cache()


def _pool(n: int) -> list:
    return [register_image(io.BytesIO(image_bytes(size=(72, 56), seed=40 + i)))[0]
            for i in range(n)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_without_the_web_disk_scores_into_the_bucket(
    s3_bucket, cpu_models, lite_model, tmp_path, empty_queues  # noqa: F811
):
    images = _pool(5)
    upload_model(s3_bucket, lite_model, "models/lite-s3")
    researcher = client_for(make_user("res", "researcher"))
    registered = researcher.post(
        "/api/models/",
        {"version": "lite-s3", "checkpoint_path": "storage:models/lite-s3", "activate": True},
        format="json",
    )
    assert registered.status_code == 201, registered.content
    assert registered.json()["checkpoint_path"] == "storage:models/lite-s3"

    machine = {"media": tmp_path / "w" / "media", "scratch": tmp_path / "w" / "scratch"}
    env = worker_env(**s3_bucket.env, MEDIA_ROOT=str(machine["media"]),
                     SCRATCH_DIR=str(machine["scratch"]), MODEL_DEVICE="cpu",
                     OMP_NUM_THREADS="1")
    worker = start_worker(env, name="scorer@%h")
    try:
        created = researcher.post("/api/scoring-jobs/", {"format": "jsonl", "chunk_size": 2},
                                  format="json")
        assert created.status_code == 201, created.content
        job_id = created.json()["id"]
        deadline = time.monotonic() + 180
        while ScoringJob.objects.get(pk=job_id).is_live:
            assert worker.poll() is None, worker.stdout.read().decode()
            assert time.monotonic() < deadline, ScoringJob.objects.values().get(pk=job_id)
            time.sleep(0.2)
    finally:
        stop_worker(worker)

    job = ScoringJob.objects.get(pk=job_id)
    assert job.status == RunStatus.DONE, job.error
    assert job.output_path == f"scores/scoring-job-{job_id}.jsonl"
    # Only the results file is left in the bucket (the parts are gone), nothing on any disk.
    assert s3_bucket.names("scores/") == [job.output_path]
    assert _files(machine["media"]) == [] and no_local_media(settings.MEDIA_ROOT) == []
    # The worker fetched the model from the bucket into its own (empty) scratch.
    fetched = _files(Path(f"{machine['scratch']}-models"))
    assert {p.name for p in fetched} == {p.name for p in lite_model.iterdir() if p.is_file()}

    stored = s3_bucket.get(job.output_path)
    rows = [json.loads(line) for line in stored.decode().splitlines()]
    assert [r["image_id"] for r in rows] == sorted(i.pk for i in images)
    assert all(0 <= r["overall"] <= 1 for r in rows)
    served = researcher.get(f"/api/scoring-jobs/{job_id}/download/")
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == stored
    assert served["Content-Disposition"].endswith(f'filename="scoring-job-{job_id}.jsonl"')
    headers = " ".join(f"{k}: {v}" for k, v in served.headers.items())
    assert s3_bucket.name not in headers and "X-Amz" not in headers

    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=job.output_path)
    assert researcher.get(f"/api/scoring-jobs/{job_id}/download/").status_code == 404


def _chunk_scored_twice(monkeypatch) -> tuple[ScoringJob, list]:
    """A job whose first run stores its first chunk and dies; the chunk is then scored and
    stored again (a second worker that took the redelivered task while the first was still
    writing); the rerun finishes the job."""
    images = _pool(5)
    job = scoring.create_scoring_job(chunk_size=2, fmt="csv")
    lost_at_chunk(monkeypatch, job.pk)
    first_rows = next(iter(scoring.selectors.scoring_chunks(job, 2)))
    part = scoring.part_name(job, first_rows)
    assert default_storage.exists(part)
    model = registry.model_for(job.model_version)
    scoring.write_part(part, scoring.score_chunk(model, first_rows))  # the chunk, again
    scoring.write_part(part, scoring.score_chunk(model, first_rows))
    assert default_storage.listdir(scoring.parts_folder(job))[1] == [part.rsplit("/", 1)[1]]
    assert len(scoring.read_part(part)) == 2
    job = scoring.run_scoring_job(job.pk)
    assert job.status == RunStatus.DONE, job.error
    return job, images


def _csv_ids(data: bytes) -> list[int]:
    lines = data.decode().splitlines()
    assert lines[0].startswith("image_id,")
    return [int(line.split(",", 1)[0]) for line in lines[1:]]


@pytest.mark.django_db
def test_a_chunk_scored_twice_leaves_its_rows_once_in_the_bucket(
    s3_bucket, cpu_models, lite_model, monkeypatch  # noqa: F811
):
    upload_model(s3_bucket, lite_model, "models/lite-s3")
    registry.register_version("lite-s3", "storage:models/lite-s3", activate=True)
    job, images = _chunk_scored_twice(monkeypatch)
    assert s3_bucket.names("scores/") == [job.output_path]
    assert _csv_ids(s3_bucket.get(job.output_path)) == sorted(i.pk for i in images)
    assert no_local_media(settings.MEDIA_ROOT) == []


@pytest.mark.django_db
def test_a_chunk_scored_twice_leaves_its_rows_once_on_the_file_system(
    cpu_models, lite_model, monkeypatch  # noqa: F811
):
    """The file-system storage keeps the names users see (MEDIA_ROOT/scores/...), and a part
    stored again replaces the first instead of landing beside it under another name."""
    registry.register_version("lite-fs", lite_model, activate=True)
    assert ModelVersion.objects.get(version="lite-fs").checkpoint_path == str(lite_model.resolve())
    job, images = _chunk_scored_twice(monkeypatch)
    out = Path(settings.MEDIA_ROOT) / "scores" / f"scoring-job-{job.pk}.csv"
    assert job.output_path == f"scores/scoring-job-{job.pk}.csv" and out.is_file()
    assert _csv_ids(out.read_bytes()) == sorted(i.pk for i in images)
    assert not (Path(settings.MEDIA_ROOT) / scoring.parts_folder(job)).exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "no temporary left"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_scoring_worker_killed_mid_job_with_its_disk_lost(
    s3_bucket, cpu_models, lite_model, tmp_path, empty_queues  # noqa: F811
):
    """The redelivered job is finished by a worker on another machine (its own empty disk):
    the parts the first stored are found in the bucket, each image is in the results once."""
    images = _pool(40)
    upload_model(s3_bucket, lite_model, "models/lite-s3")
    registry.register_version("lite-s3", "storage:models/lite-s3", activate=True)
    crash = {"CELERY_VISIBILITY_TIMEOUT": "4", "CELERY_RESTORE_THROTTLE": "1",
             "MODEL_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "SCORING_WORKERS": "0"}

    def machine(name: str) -> dict:
        return worker_env(**s3_bucket.env, MEDIA_ROOT=str(tmp_path / name / "media"),
                          SCRATCH_DIR=str(tmp_path / name / "scratch"), **crash)

    first = start_worker(machine("a"), name="a@%h")
    second = None
    try:
        job = scoring.create_scoring_job(chunk_size=2)  # queued on commit (this test commits)
        deadline = time.monotonic() + 120
        while ScoringJob.objects.get(pk=job.pk).progress.get("done", 0) < 6:
            assert first.poll() is None, first.stdout.read().decode()
            assert time.monotonic() < deadline, "the first worker scored nothing"
            time.sleep(0.05)
        stop_worker(first, signal.SIGKILL)  # no goodbye, no ack
        killed_at = ScoringJob.objects.get(pk=job.pk).progress["done"]
        assert killed_at < len(images), "the first worker must not have finished"
        stored_parts = s3_bucket.names(f"{scoring.parts_folder(job)}/")
        assert len(stored_parts) >= 3
        assert _files(tmp_path / "a" / "media") == []
        shutil.rmtree(tmp_path / "a")  # its machine is gone, scratch and all

        second = start_worker(machine("b"), name="b@%h")
        deadline = time.monotonic() + 180
        while ScoringJob.objects.get(pk=job.pk).status != RunStatus.DONE:
            assert second.poll() is None, second.stdout.read().decode()
            assert time.monotonic() < deadline, ScoringJob.objects.values().get(pk=job.pk)
            time.sleep(0.2)
    finally:
        stop_worker(first, signal.SIGKILL)
        if second is not None:
            stop_worker(second)

    job.refresh_from_db()
    assert job.progress == {"done": 40, "total": 40, "failed": 0}
    rows = [json.loads(x) for x in s3_bucket.get(job.output_path).decode().splitlines()]
    assert [r["image_id"] for r in rows] == sorted(i.pk for i in images)
    assert s3_bucket.names("scores/") == [job.output_path]
    assert _files(tmp_path / "b" / "media") == []
    assert _files(Path(f"{tmp_path / 'b' / 'scratch'}-models")), "b fetched the model itself"
