"""Batch scoring of the pool and of a release: a Celery task (in-process here) with progress,
a results file under MEDIA_ROOT/scores/, and a rerun that neither redoes nor duplicates."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from django.conf import settings

from curation.services import get_or_create_source, import_directory
from humanbeauty.standard import DIMENSION_KEYS
from modeling.models import Release, ReleaseItem, ReleaseStatus, RunStatus, ScoringJob
from modeling.services import scoring
from tests.conftest import write_image

from .conftest import lost_at_chunk

pytestmark = pytest.mark.django_db


def pool(tmp_path, n: int, name: str = "set", start: int = 0, source=None):
    folder = tmp_path / name
    for i in range(n):
        write_image(folder / f"img_{i:03d}.jpg", seed=start + i)
    report = import_directory(folder, source=source)
    assert len(report.created) == n
    return report.created


def test_pool_scoring_task_writes_every_image_once_with_progress(
    client_as, active_model, eager_celery, tmp_path, django_capture_on_commit_callbacks
):
    images = pool(tmp_path, 5)
    client = client_as("researcher")
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            "/api/scoring-jobs/", {"format": "jsonl", "chunk_size": 2}, format="json"
        )
    assert created.status_code == 201, created.content
    job = client.get(f"/api/scoring-jobs/{created.json()['id']}/").json()
    assert job["status"] == "done", job
    assert job["progress"] == {"done": 5, "total": 5, "failed": 0}
    assert job["model"] == active_model.version and job["scope"] == "pool"
    assert job["output_path"] == f"scores/scoring-job-{job['id']}.jsonl"
    out = Path(settings.MEDIA_ROOT) / job["output_path"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["image_id"] for r in rows] == sorted(i.pk for i in images)
    assert all(0 <= r[k] <= 1 for r in rows for k in [*DIMENSION_KEYS, "overall"])
    # every head's overall beside the MetaVoter's (the Lite model has no LM head)
    assert all(r["overall_lm"] is None for r in rows)
    assert all(r["overall_expert"] == r["comprehensive_aesthetic"] for r in rows)
    assert all(0 <= r["overall_regression"] <= 1 for r in rows)
    assert {r["path"] for r in rows} == {i.original_path for i in images}
    assert not (out.parent / f"scoring-job-{job['id']}.parts").exists(), "parts are cleaned up"

    download = client.get(job["download"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content).decode() == out.read_text()
    assert client_as("annotator").get(job["download"]).status_code == 403


def test_a_release_is_scored_to_csv_with_its_splits(
    client_as, active_model, eager_celery, tmp_path, django_capture_on_commit_callbacks
):
    images = pool(tmp_path, 4)
    release = Release.objects.create(
        name="hb", version="1", out_dir=str(tmp_path / "rel"), status=ReleaseStatus.READY
    )
    for image, split in zip(images[:3], ["train", "test", "train"], strict=True):
        ReleaseItem.objects.create(release=release, image=image, split=split)
    with django_capture_on_commit_callbacks(execute=True):
        created = client_as("admin").post(
            "/api/scoring-jobs/",
            {"release": release.pk, "format": "csv", "model": active_model.version},
            format="json",
        )
    assert created.status_code == 201
    job = ScoringJob.objects.get(pk=created.json()["id"])
    assert job.status == RunStatus.DONE and job.progress["done"] == job.progress["total"] == 3
    with (Path(settings.MEDIA_ROOT) / job.output_path).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(int(r["image_id"]), r["split"]) for r in rows] == [
        (images[0].pk, "train"), (images[1].pk, "test"), (images[2].pk, "train")
    ]


def test_a_job_over_one_source_and_its_refusals(client_as, active_model, tmp_path):
    mine = get_or_create_source("mine")
    pool(tmp_path, 2, "a", start=0, source=mine)
    pool(tmp_path, 3, "b", start=10)
    client = client_as("researcher")
    created = client.post("/api/scoring-jobs/", {"source": "mine"}, format="json")
    assert created.status_code == 201 and created.json()["progress"]["total"] == 2
    assert created.json()["status"] == "queued"  # queued on commit: the test never commits

    unknown = client.post("/api/scoring-jobs/", {"source": "nope"}, format="json")
    assert unknown.status_code == 400 and "nope" in unknown.json()["detail"]
    no_model = client.post("/api/scoring-jobs/", {"model": "v9"}, format="json")
    assert no_model.status_code == 404
    building = Release.objects.create(name="r", version="1", out_dir="/x")
    not_ready = client.post("/api/scoring-jobs/", {"release": building.pk}, format="json")
    assert not_ready.status_code == 409 and "not ready" in not_ready.json()["detail"]


def test_a_rerun_resumes_from_its_chunks_and_records_unreadable_files(
    active_model, tmp_path, monkeypatch
):
    images = pool(tmp_path, 5)
    (Path(settings.MEDIA_ROOT) / images[3].file.name).unlink()  # a file lost from the pool
    job = scoring.create_scoring_job(chunk_size=2)

    real = scoring.score_chunk
    lost_at_chunk(monkeypatch, job.pk)
    job.refresh_from_db()
    assert job.status == RunStatus.FAILED and job.progress["done"] == 2

    calls = []
    monkeypatch.setattr(scoring, "score_chunk", lambda m, rows: calls.append(rows) or real(m, rows))
    job = scoring.run_scoring_job(job.pk)
    assert job.status == RunStatus.DONE
    assert [r.image_id for rows in calls for r in rows] == [i.pk for i in images[2:]], (
        "the first chunk's part was reused, not scored again"
    )
    assert job.progress == {"done": 5, "total": 5, "failed": 1}
    assert [e["image_id"] for e in job.errors] == [images[3].pk]
    assert "cannot read" in job.errors[0]["error"]
    rows = [json.loads(x) for x in (Path(settings.MEDIA_ROOT) / job.output_path).read_text()
            .splitlines()]
    assert [r["image_id"] for r in rows] == [i.pk for i in images if i != images[3]]

    again = scoring.run_scoring_job(job.pk)  # delivered once more: a finished job is left alone
    assert again.status == RunStatus.DONE and again.finished_at == job.finished_at
