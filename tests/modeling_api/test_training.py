"""Training runs: `python -m modeling.train` launched by the task as a subprocess, its progress
streamed into the row, the final model registered (and activated) when it succeeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeling.models import ModelVersion, RunStatus, TrainingRun
from modeling.services import training
from tests.modeling_api.conftest import upload

pytestmark = pytest.mark.django_db


def test_a_training_run_trains_registers_and_activates_its_model(
    client_as, tiny_release, eager_celery, django_capture_on_commit_callbacks
):
    client = client_as("researcher")
    body = {
        "data": str(tiny_release),
        "backbone": "lite",
        "clip_model": "tiny",
        "max_steps": 3,
        "settings": {"log_every": 1, "head_hidden": 32},
        "version": "trained-1",
        "activate": True,
    }
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/training-runs/", body, format="json")
        assert created.status_code == 201, created.content
        assert created.json()["status"] == "queued"
    run = client.get(f"/api/training-runs/{created.json()['id']}/").json()
    assert run["status"] == "done", run["error"] or run["log_tail"]
    assert run["model"] == "trained-1"
    assert run["progress"]["stage"] == "done" and run["progress"]["step"] == 3
    assert run["progress"]["total"] == 3 and "loss" in run["progress"]
    assert "model saved to" in run["log_tail"]
    run_dir = Path(run["run_dir"])
    steps = [json.loads(x).get("step") for x in (run_dir / "metrics.jsonl").read_text()
             .splitlines() if json.loads(x).get("stage") == "heads"]
    assert steps == [1, 2, 3], "the settings reached the trainer (log_every 1)"

    model = ModelVersion.objects.get(version="trained-1")
    assert model.is_active and model.checkpoint_path == str((run_dir / "final").resolve())
    assert model.metrics["n_images"] == 4 and "trained by training run" in model.notes
    scored = client.post("/api/score/", {"image": upload()})
    assert scored.status_code == 200 and scored.json()["model"] == "trained-1"

    # delivered again (a worker lost after it finished): nothing is trained or registered twice
    assert training.run_training(run["id"]).status == RunStatus.DONE
    assert ModelVersion.objects.filter(version="trained-1").count() == 1


def test_a_failing_training_run_keeps_the_reason(
    client_as, tiny_release, workspace, eager_celery, django_capture_on_commit_callbacks
):
    body = {
        "data": str(tiny_release),
        "backbone": "lite",
        "clip_model": "ViT-B-32",
        "clip_checkpoint": str(workspace / "no-such-clip.safetensors"),
        "max_steps": 1,
    }
    with django_capture_on_commit_callbacks(execute=True):
        created = client_as("admin").post("/api/training-runs/", body, format="json")
    assert created.status_code == 201, created.content
    run = TrainingRun.objects.get(pk=created.json()["id"])
    assert run.status == RunStatus.FAILED and run.model_version is None
    assert "exited with 1" in run.error and "no CLIP checkpoint file" in run.error
    assert "no CLIP checkpoint file" in run.log_tail
    assert not ModelVersion.objects.exists()


def test_training_requests_are_checked_before_anything_runs(
    client_as, tiny_release, tmp_path, lite_model
):
    client = client_as("researcher")

    def post(**body):
        return client.post("/api/training-runs/", body, format="json")

    outside = post(data=str(tmp_path), backbone="tiny")
    assert outside.status_code == 400 and "outside" in outside.json()["detail"]
    not_release = post(data=str(lite_model), backbone="tiny")
    assert not_release.status_code == 400 and "train_label.jsonl" in not_release.json()["detail"]
    no_clip = post(data=str(tiny_release), backbone="lite")
    assert no_clip.status_code == 400 and "clip_model" in no_clip.json()["detail"]
    no_weights = post(data=str(tiny_release), backbone="lite", clip_model="ViT-B-32")
    assert no_weights.status_code == 400 and "clip_checkpoint" in no_weights.json()["detail"]
    unknown = post(data=str(tiny_release), backbone="tiny", settings={"data": "/etc"})
    assert unknown.status_code == 400 and "reserved" in unknown.json()["detail"]
    recipe = post(data=str(tiny_release), backbone="tiny", settings={"recipe": "nonesuch"})
    assert recipe.status_code == 400 and "nonesuch" in recipe.json()["detail"]
    # the official recipe's batch of 16 cannot be made of 5 per process: refused at the request
    batch = post(data=str(tiny_release), backbone="tiny",
                 settings={"recipe": "official", "batch_size": 5})
    assert batch.status_code == 400 and "effective" in batch.json()["detail"], batch.json()
    official = post(data=str(tiny_release), backbone="tiny", max_steps=1,
                    settings={"recipe": "official", "batch_size": 4})
    assert official.status_code == 201, official.json()
    TrainingRun.objects.all().delete()
    neither = post(backbone="tiny")
    assert neither.status_code == 400
    flag = post(data=str(tiny_release), backbone="--help")
    assert flag.status_code == 400
    assert client_as("annotator").post("/api/training-runs/", {}, format="json").status_code == 403
    assert not TrainingRun.objects.exists()
