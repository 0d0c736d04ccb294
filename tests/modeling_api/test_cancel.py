"""Cancelling scoring jobs and training runs: queued ones never start, running ones stop at
their next progress write (the trainer subprocess is terminated), finished ones are a 409."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.conf import settings

from core import jobs as runs
from modeling.models import ModelVersion, RunStatus, ScoringJob, TrainingRun
from modeling.services import scoring, training
from tests.modeling_api.test_scoring_jobs import pool

pytestmark = pytest.mark.django_db


def trainer_processes(run_dir: str) -> list[int]:
    """Live processes whose command line names the run directory (the trainer)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if run_dir.encode() in cmdline and b"modeling.train" in cmdline:
            found.append(int(pid))
    return found


def test_a_queued_scoring_job_is_cancelled_and_never_runs(client_as, active_model, tmp_path):
    pool(tmp_path, 3)
    client = client_as("researcher")
    created = client.post("/api/scoring-jobs/", {"format": "jsonl"}, format="json").json()
    assert created["status"] == "queued"  # its task waits for the commit (never, in a test)
    url = f"/api/scoring-jobs/{created['id']}/cancel/"
    assert client_as("annotator").post(url).status_code == 403
    cancelled = client.post(url)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and "cancelled by" in cancelled.json()["error"]
    again = client.post(url)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]

    # The task delivered after all: it does nothing.
    job = scoring.run_scoring_job(created["id"])
    assert job.status == RunStatus.CANCELLED and not job.output_path
    assert not (Path(settings.MEDIA_ROOT) / scoring.output_name(job)).exists()


def test_a_running_scoring_job_stops_after_the_chunk_at_hand(
    active_model, tmp_path, users, monkeypatch
):
    pool(tmp_path, 6)
    job = scoring.create_scoring_job(chunk_size=2, user=users["researcher"])
    real_score_chunk = scoring.score_chunk
    chunks = []

    def score_while_cancelled(model, rows):
        chunks.append(len(rows))
        records = real_score_chunk(model, rows)
        if len(chunks) == 1:  # the researcher presses Cancel while the first chunk is scored
            runs.cancel(ScoringJob, job.pk, users["researcher"])
        return records

    monkeypatch.setattr(scoring, "score_chunk", score_while_cancelled)
    job = scoring.run_scoring_job(job.pk)
    assert chunks == [2], "no chunk is scored after the cancel"
    assert job.status == RunStatus.CANCELLED and not job.output_path
    parts = Path(settings.MEDIA_ROOT) / scoring.parts_folder(job)
    assert not parts.exists(), "a cancelled job leaves no parts behind"
    assert not (Path(settings.MEDIA_ROOT) / scoring.output_name(job)).exists()
    with pytest.raises(runs.AlreadyOver):
        runs.cancel(ScoringJob, job.pk, users["researcher"])


def test_a_finished_scoring_job_cannot_be_cancelled(
    client_as, active_model, eager_celery, tmp_path, django_capture_on_commit_callbacks
):
    pool(tmp_path, 2)
    client = client_as("admin")
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/scoring-jobs/", {"format": "csv"}, format="json").json()
    job = client.get(f"/api/scoring-jobs/{created['id']}/").json()
    assert job["status"] == "done"
    refused = client.post(f"/api/scoring-jobs/{job['id']}/cancel/")
    assert refused.status_code == 409 and "already done" in refused.json()["detail"]
    assert client.get(f"/api/scoring-jobs/{job['id']}/").json()["status"] == "done"


def test_a_running_training_run_is_stopped_and_registers_nothing(
    tiny_release, users, monkeypatch
):
    run = training.create_training_run(
        data=str(tiny_release),
        backbone="lite",
        clip_model="tiny",
        max_steps=20_000,  # minutes of training: far more than the test waits for
        overrides={"log_every": 1, "head_hidden": 32},
        version="never-registered",
        user=users["researcher"],
    )
    real_apply = training.apply_records
    seen_steps = []

    def apply_then_cancel(progress, records):
        progress = real_apply(progress, records)
        seen_steps.append(progress.get("step") or 0)
        if seen_steps[-1] >= 2 and TrainingRun.objects.get(pk=run.pk).status == "running":
            assert trainer_processes(run.run_dir), "the trainer runs while we cancel"
            runs.cancel(TrainingRun, run.pk, users["researcher"])
        return progress

    monkeypatch.setattr(training, "apply_records", apply_then_cancel)
    result = training.run_training(run.pk)
    assert result.status == RunStatus.CANCELLED, result.error or result.log_tail
    assert result.model_version is None and not ModelVersion.objects.exists()
    assert result.error == "cancelled by researcher"
    assert trainer_processes(run.run_dir) == [], "the trainer subprocess was stopped"
    metrics = Path(run.run_dir) / "metrics.jsonl"
    steps = [json.loads(x).get("step") or 0 for x in metrics.read_text().splitlines()]
    assert 2 <= max(steps) < 20_000
    # A later delivery of its task neither resumes nor registers it.
    assert training.run_training(run.pk).status == RunStatus.CANCELLED
    assert not ModelVersion.objects.exists()


def test_a_queued_training_run_cancelled_over_the_api_never_starts(client_as, tiny_release):
    client = client_as("researcher")
    body = {"data": str(tiny_release), "backbone": "lite", "clip_model": "tiny", "max_steps": 2}
    created = client.post("/api/training-runs/", body, format="json").json()
    assert created["status"] == "queued"
    response = client.post(f"/api/training-runs/{created['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    run = training.run_training(created["id"])
    assert run.status == RunStatus.CANCELLED
    assert not (Path(run.run_dir) / "metrics.jsonl").exists(), "nothing was trained"
    assert client.post(f"/api/training-runs/{created['id']}/cancel/").status_code == 409
