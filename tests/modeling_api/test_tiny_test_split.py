"""Issue #10, finding 7: a test split of one image gives undefined metrics (a correlation of
one value is NaN); the run still registers its model, with those metrics stored as null."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import expect

from modeling.hae.synthetic import write_synthetic_release
from modeling.models import ModelVersion, RunStatus, TrainingRun
from tests.browser_support import PASSWORD, login
from tests.conftest import make_user
from tests.modeling_api.conftest import train_from_page


@pytest.fixture(scope="session")
def one_test_image_release(workspace):
    out = workspace / "release-one-test"
    write_synthetic_release(out, n_train=6, n_test=1, expert_fraction=0.5, seed=5)
    return out


def _stored_json(table: str, column: str, pk: int) -> str:
    """The column as PostgreSQL holds it (text), not as Django decodes it."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT {column}::text FROM {table} WHERE id = %s", [pk])
        return cur.fetchone()[0]


@pytest.mark.django_db
def test_a_one_image_test_split_registers_its_model_over_the_api(
    client_as, one_test_image_release, eager_celery, django_capture_on_commit_callbacks
):
    body = {"data": str(one_test_image_release), "backbone": "lite", "clip_model": "tiny",
            "max_steps": 2, "version": "one-test"}
    with django_capture_on_commit_callbacks(execute=True):
        created = client_as("researcher").post("/api/training-runs/", body, format="json")
    assert created.status_code == 201, created.content
    run = TrainingRun.objects.get(pk=created.json()["id"])
    assert run.status == RunStatus.DONE, run.error or run.log_tail
    model = ModelVersion.objects.get(version="one-test")
    assert run.model_version == model
    assert model.metrics["n_images"] == 1
    # srcc over one image is undefined: null in the registry and in the run's progress
    heads = model.metrics["overall"]
    assert heads and all(values["srcc"] is None for values in heads.values())
    srcc = run.progress["srcc_overall"]  # per head
    assert srcc and all(v is None for v in srcc.values())
    for table, column, pk in (("modeling_modelversion", "metrics", model.pk),
                              ("modeling_trainingrun", "progress", run.pk)):
        text = _stored_json(table, column, pk)
        assert "NaN" not in text and "Infinity" not in text
        json.loads(text)  # strict JSON
    # The trainer's own log is strict JSON too (it was `NaN` there first).
    for line in (Path(run.run_dir) / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in metrics.jsonl"))


@pytest.mark.django_db
def test_non_finite_metrics_and_progress_are_stored_as_null_with_a_warning(lite_model, caplog):
    from modeling.services import registry

    with caplog.at_level(logging.WARNING, logger="humanbeauty.jsonsafe"):
        model = registry.register_version(
            "nan-metrics", lite_model, metrics={"srcc": math.nan, "plcc": math.inf, "n": 1}
        )
        run = TrainingRun.objects.create(
            data_dir="x", backbone="lite", progress={"loss": -math.inf, "step": 1}
        )
    model.refresh_from_db()
    run.refresh_from_db()
    assert model.metrics == {"srcc": None, "plcc": None, "n": 1}
    assert run.progress == {"loss": None, "step": 1}
    TrainingRun.objects.filter(pk=run.pk).update(progress={"loss": math.nan})  # update() too
    run.refresh_from_db()
    assert run.progress == {"loss": None}
    warnings = [r.getMessage() for r in caplog.records]
    assert sum("non-finite number stored as null" in w for w in warnings) >= 2


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_a_one_image_test_split_from_the_models_page(
    page, transactional_db, one_test_image_release, eager_celery
):
    make_user("tess", "researcher", password=PASSWORD)
    login(page, "tess")
    page.goto("/models/")
    train_from_page(page, one_test_image_release, "one-image-test", timeout=90_000)
    expect(page.locator("tr[data-version='one-image-test']")).to_be_visible()
    run = TrainingRun.objects.get()
    assert run.status == RunStatus.DONE and run.model_version.version == "one-image-test"


def test_a_diverged_model_scores_as_null_not_as_a_500(caplog):
    from humanbeauty.standard import DIMENSION_KEYS
    from modeling.hae.model import ScoreResult
    from modeling.services.scoring import payload, result_row

    result = ScoreResult(
        scores={k: math.nan for k in DIMENSION_KEYS},
        levels={k: "fair" for k in DIMENSION_KEYS},
        overall=math.inf,
        heads={"lm": math.nan, "regression": 0.5},
    )
    with caplog.at_level(logging.WARNING, logger="humanbeauty.jsonsafe"):
        body = payload("v1", result)
        row = result_row(result, image_id=1)
    assert body["overall"] is None and body["overall_level"] is None
    assert set(body["scores"].values()) == {None} and body["heads"]["regression"] == 0.5
    assert row["overall"] is None and json.loads(json.dumps(body, allow_nan=False))
    assert sum("non-finite number stored as null" in r.getMessage() for r in caplog.records) == 2


def test_results_files_are_strict_json(tmp_path):
    from modeling.services.scoring import ResultsFile

    with ResultsFile(tmp_path / "out.jsonl", ["image_id", "overall"]) as out:
        out.write({"image_id": 1, "overall": None})
    assert json.loads((tmp_path / "out.jsonl").read_text()) == {"image_id": 1, "overall": None}
    with pytest.raises(ValueError), ResultsFile(tmp_path / "bad.jsonl", ["overall"]) as out:
        out.write({"overall": math.nan})  # never written as the bare token NaN
    assert not (tmp_path / "bad.jsonl").exists()
