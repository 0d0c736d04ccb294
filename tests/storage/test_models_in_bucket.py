"""Model directories in the media storage (a real S3 server, moto, over HTTP): a directory
uploaded to `storage:models/<name>` is registered (by the API only under the `storage:` entries
of MODEL_ROOTS), fetched whole into a local folder and loaded by the model code's own loader,
from a process whose scratch is empty; a missing file is refused with the loader's message,
never replaced by random weights. A training run on a worker with a remote storage uploads its
model there and registers that location."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from modeling.models import ModelVersion, RunStatus, TrainingRun
from modeling.services import registry, training
from tests.conftest import client_for, make_user
from tests.modeling_api.conftest import lite_model, tiny_release, upload, workspace  # noqa: F401

from .test_scoring_in_bucket import upload_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def models_env(settings, workspace):  # noqa: F811
    settings.MODEL_DEVICE = "cpu"
    settings.MODEL_ROOTS = [workspace.resolve()]
    settings.MODEL_STORAGE_ROOTS = ["models"]
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture
def researcher(db):
    return client_for(make_user("res", "researcher"))


def fetched(scratch: Path) -> list[Path]:
    folder = Path(f"{scratch}-models")
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def forget_local_copies() -> None:
    """As on a machine that never loaded it: no model in memory, nothing fetched."""
    registry.clear_cache()
    shutil.rmtree(f"{settings.SCRATCH_DIR}-models", ignore_errors=True)


def test_a_model_uploaded_to_the_bucket_registers_and_scores_from_an_empty_scratch(
    s3_bucket, models_env, researcher, lite_model, monkeypatch  # noqa: F811
):
    upload_model(s3_bucket, lite_model, "models/x")
    s3_bucket.put("models/x/eval_test.json", (lite_model.parent / "eval_test.json").read_bytes())
    created = researcher.post(
        "/api/models/", {"version": "x1", "checkpoint_path": "storage:models/x", "activate": True},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["checkpoint_path"] == "storage:models/x" and body["is_active"]
    assert body["metrics"]["report"] == "storage:models/x/eval_test.json"
    assert body["metrics"]["n_images"] == 4
    assert fetched(settings.SCRATCH_DIR), "registration loaded the fetched copy"

    forget_local_copies()
    scored = researcher.post("/api/score/", {"image": upload()})
    assert scored.status_code == 200, scored.content
    assert scored.json()["model"] == "x1"
    copies = fetched(settings.SCRATCH_DIR)
    assert sorted(p.name for p in copies) == sorted(
        [p.name for p in lite_model.iterdir() if p.is_file()] + ["eval_test.json"]
    )
    assert not [p for p in Path(f"{settings.SCRATCH_DIR}-models").rglob(".*")], "no partials"
    for copy in copies:  # the copy is the stored file, byte for byte
        key = f"models/x/{copy.name}"
        assert copy.read_bytes() == s3_bucket.get(key)

    # A file rewritten in the bucket is a new listing: fetched and loaded again.
    loads = registry.cache_info()["loads"]
    assert researcher.post("/api/score/", {"image": upload()}).status_code == 200
    assert registry.cache_info()["loads"] == loads, "served from the loaded model"
    monkeypatch.setattr(registry, "STORAGE_RECHECK_SECONDS", 0.0)
    s3_bucket.put("models/x/eval_test.json", b'{"split": "test", "heads": {}}')
    assert researcher.post("/api/score/", {"image": upload()}).status_code == 200
    assert registry.cache_info()["loads"] == loads + 1
    homes = list(Path(f"{settings.SCRATCH_DIR}-models").iterdir())
    assert len(homes) == 1 and len(list(homes[0].iterdir())) == 2  # the old copy is in grace


def test_a_storage_model_outside_the_roots_is_refused(
    s3_bucket, models_env, researcher, lite_model, settings  # noqa: F811
):
    upload_model(s3_bucket, lite_model, "elsewhere/x")
    upload_model(s3_bucket, lite_model, "models/x")
    for path, reason in [
        ("storage:elsewhere/x", "outside the storage import roots"),
        ("storage:models/../elsewhere/x", "'..' climbs out"),
        ("storage:/models/x", "never absolute"),
        ("storage:", "empty"),
    ]:
        refused = researcher.post("/api/models/", {"version": "v", "checkpoint_path": path},
                                  format="json")
        assert refused.status_code == 400, (path, refused.content)
        answer = refused.json()
        assert answer["code"] == "outside_model_roots", answer
        assert reason in answer["detail"] and "MODEL_ROOTS: storage:models" in answer["detail"]
    assert not ModelVersion.objects.exists() and not fetched(settings.SCRATCH_DIR)

    settings.MODEL_STORAGE_ROOTS = []  # no storage: entry in MODEL_ROOTS: none is accepted
    refused = researcher.post(
        "/api/models/", {"version": "v", "checkpoint_path": "storage:models/x"}, format="json"
    )
    assert refused.status_code == 400 and refused.json()["code"] == "outside_model_roots"
    assert not ModelVersion.objects.exists()


def test_a_storage_model_missing_its_weights_is_refused_never_random(
    s3_bucket, models_env, researcher, lite_model  # noqa: F811
):
    keys = upload_model(s3_bucket, lite_model, "models/broken")
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key="models/broken/heads.safetensors")
    assert "models/broken/heads.safetensors" in keys
    refused = researcher.post(
        "/api/models/", {"version": "b1", "checkpoint_path": "storage:models/broken"},
        format="json",
    )
    assert refused.status_code == 400, refused.content
    detail = refused.json()["detail"]
    assert refused.json()["code"] == "invalid_model"
    assert "missing head weights 'storage:models/broken/heads.safetensors'" in detail, detail
    assert str(settings.SCRATCH_DIR) not in detail  # named as stored, not as fetched

    empty = researcher.post(
        "/api/models/", {"version": "b2", "checkpoint_path": "storage:models/nothing"},
        format="json",
    )
    assert empty.status_code == 400 and "'storage:models/nothing' holds no files" in (
        empty.json()["detail"]
    )
    before = fetched(settings.SCRATCH_DIR)
    whole = researcher.post(  # a folder of models, not one: refused before anything is fetched
        "/api/models/", {"version": "b3", "checkpoint_path": "storage:models"}, format="json"
    )
    assert whole.status_code == 400 and "(no hae_config.json)" in whole.json()["detail"]
    assert not ModelVersion.objects.exists() and fetched(settings.SCRATCH_DIR) == before

    # Registered, then its weights vanish from the bucket: a 503 on the next load, and its
    # activation is refused once the config is gone too.
    upload_model(s3_bucket, lite_model, "models/fading")
    registry.register_version("f1", "storage:models/fading", activate=True)
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key="models/fading/heads.safetensors")
    forget_local_copies()
    gone = researcher.post("/api/score/", {"image": upload()})
    assert gone.status_code == 503 and gone.json()["code"] == "model_unavailable"
    assert "missing head weights 'storage:models/fading/heads.safetensors'" in (
        gone.json()["detail"]
    )
    registry.register_version("f2", lite_model)
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key="models/fading/hae_config.json")
    researcher.post("/api/models/f2/activate/")
    again = researcher.post("/api/models/f1/activate/")
    assert again.status_code == 400 and "is gone" in again.json()["detail"]


def test_a_storage_name_with_the_file_system_storage_is_read_in_place(
    models_env, lite_model  # noqa: F811
):
    """Without a bucket, `storage:models/x` is MEDIA_ROOT/models/x: loaded there, not copied."""
    shutil.copytree(lite_model, Path(settings.MEDIA_ROOT) / "models" / "x")
    model = registry.register_version("fs1", "storage:models/x")
    assert model.checkpoint_path == "storage:models/x"
    assert registry.local_directory(model.checkpoint_path) == (
        Path(settings.MEDIA_ROOT) / "models" / "x"
    )
    assert registry.model_for(model) is not None
    assert not Path(f"{settings.SCRATCH_DIR}-models").exists()


@pytest.mark.slow
def test_a_training_run_with_a_remote_storage_uploads_and_registers_its_model(
    s3_bucket, models_env, researcher, tiny_release, eager_celery, tmp_path,  # noqa: F811
    django_capture_on_commit_callbacks, settings,
):
    settings.TRAINING_RUNS_DIR = tmp_path / "runs"
    settings.TRAINING_POLL_SECONDS = 0.2
    s3_bucket.put("models/taken/notes.txt", b"somebody else's")
    body = {"data": str(tiny_release), "backbone": "lite", "clip_model": "tiny",
            "max_steps": 2, "activate": True}
    with django_capture_on_commit_callbacks(execute=True):
        created = researcher.post("/api/training-runs/", {**body, "version": "trained-s3"},
                                  format="json")
        refused = researcher.post("/api/training-runs/", {**body, "version": "taken"},
                                  format="json")
    assert created.status_code == 201 and refused.status_code == 201
    run = TrainingRun.objects.get(pk=created.json()["id"])
    assert run.status == RunStatus.DONE, run.error or run.log_tail
    model = ModelVersion.objects.get(version="trained-s3")
    assert model.checkpoint_path == "storage:models/trained-s3" and model.is_active
    final = Path(run.run_dir) / "final"
    stored = s3_bucket.names("models/trained-s3/")
    assert stored == sorted(
        [f"models/trained-s3/{p.relative_to(final).as_posix()}" for p in final.rglob("*")
         if p.is_file()] + ["models/trained-s3/eval_test.json"]
    )
    assert model.metrics["report"] == "storage:models/trained-s3/eval_test.json"

    # Another machine: no run directory, no local copy; it loads the model from the bucket.
    shutil.rmtree(run.run_dir)
    forget_local_copies()
    scored = researcher.post("/api/score/", {"image": upload()})
    assert scored.status_code == 200 and scored.json()["model"] == "trained-s3"
    # Delivered again (a worker lost after it finished): nothing trained or registered twice.
    assert training.run_training(run.pk).status == RunStatus.DONE
    assert ModelVersion.objects.filter(version="trained-s3").count() == 1

    taken = TrainingRun.objects.get(pk=refused.json()["id"])
    assert taken.status == RunStatus.FAILED
    assert "'storage:models/taken' in the storage already holds other files (notes.txt)" in (
        taken.error
    )
    assert s3_bucket.names("models/taken/") == ["models/taken/notes.txt"]
    assert not ModelVersion.objects.filter(version="taken").exists()


def test_the_score_command_takes_a_model_directory_in_the_bucket(
    s3_bucket, models_env, lite_model, tmp_path  # noqa: F811
):
    import csv

    from django.core.management import CommandError, call_command

    from tests.conftest import write_image

    upload_model(s3_bucket, lite_model, "models/cli")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        write_image(photos / f"p{i}.jpg", size=(96, 96), seed=i)
    out = tmp_path / "scores.csv"
    forget_local_copies()
    call_command("score", str(photos), "--model", "storage:models/cli", "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    assert sorted(r["path"] for r in rows) == ["p0.jpg", "p1.jpg"]
    assert all(0.0 <= float(r["overall"]) <= 1.0 for r in rows)
    assert fetched(settings.SCRATCH_DIR), "loaded from a fetched copy of the bucket's files"

    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key="models/cli/hae_config.json")
    forget_local_copies()
    with pytest.raises(CommandError, match="storage:models/cli"):
        call_command("score", str(photos), "--model", "storage:models/cli", "--out", str(out))
