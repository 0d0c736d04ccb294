"""The /models/ page in real Chromium: the registry table, activating a version, scoring an
upload into 12 bars, a refused upload's message, and a training run started from the form."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from modeling.models import ModelVersion, ScoringJob, TrainingRun
from modeling.services import registry
from tests.browser_support import PASSWORD, login
from tests.conftest import image_bytes, make_user
from tests.modeling_api.conftest import train_from_page
from tests.modeling_api.test_scoring_jobs import pool

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture
def researcher(transactional_db):
    return make_user("rhea", "researcher", password=PASSWORD)


def test_score_activate_and_train_from_the_page(
    page, researcher, lite_model, tiny_release, eager_celery, tmp_path
):
    registry.register_version("lite-a", lite_model, activate=True)
    registry.register_version("lite-b", lite_model)
    photo = tmp_path / "portrait.png"
    photo.write_bytes(image_bytes(size=(90, 70), seed=21))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")

    login(page, "rhea")
    page.goto("/models/")
    table = page.locator("#models-table")
    expect(table.locator("tr[data-version='lite-a']")).to_contain_text("active")
    expect(page.locator("#models-sub")).to_contain_text("lite-a is active")

    page.set_input_files("#score-image", str(photo))
    page.click("#score-submit")
    expect(page.locator(".score-bar")).to_have_count(12)
    expect(page.locator("#result-sub")).to_contain_text("scored by lite-a")
    expect(page.locator(".score-overall")).to_contain_text("Overall (MetaVoter)")

    page.set_input_files("#score-image", str(junk))
    page.click("#score-submit")
    expect(page.locator("#score-error")).to_contain_text("not an image")

    table.locator("tr[data-version='lite-b'] button", has_text="Activate").click()
    expect(page.locator("#message")).to_contain_text("lite-b is now the active model")
    expect(table.locator("tr[data-version='lite-b']")).to_contain_text("active")
    assert ModelVersion.objects.get(is_active=True).version == "lite-b"

    train_from_page(page, tiny_release, "from-page", timeout=60_000)
    expect(table.locator("tr[data-version='from-page']")).to_be_visible()
    if os.environ.get("MODELS_SCREENSHOT"):  # e.g. /tmp/models.png, to look at the page
        page.screenshot(path=os.environ["MODELS_SCREENSHOT"], full_page=True)


def test_a_run_is_cancelled_from_the_page(page, researcher, tiny_release, tmp_path):
    # A queued run (its task not picked up yet): the page offers Cancel, asks, and cancels.
    run = TrainingRun.objects.create(
        data_dir=str(tiny_release),
        backbone="lite",
        config={"max_steps": 5, "clip_model": "tiny"},
        progress={"stage": "queued", "step": 0, "total": 5},
        run_dir=str(tmp_path / "run"),
        created_by=researcher,
    )
    login(page, "rhea")
    page.goto("/models/")
    row = page.locator(f"#runs-table tr[data-run='{run.pk}']")
    expect(row).to_contain_text("queued")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    row.locator("button", has_text="Cancel").click()
    expect(page.locator("#message")).to_contain_text(f"Training run #{run.pk} is cancelled")
    expect(row).to_contain_text("cancelled")
    expect(row.locator("button")).to_have_count(0)
    assert dialogs and "no model is registered" in dialogs[0]
    run.refresh_from_db()
    assert run.status == "cancelled" and run.error == "cancelled by rhea"


def test_batch_scoring_from_the_page(page, researcher, lite_model, eager_celery, tmp_path):
    registry.register_version("lite-a", lite_model, activate=True)
    images = pool(tmp_path, 3)
    login(page, "rhea")
    page.goto("/models/")
    expect(page.locator("#jobs-sub")).to_contain_text("No scoring jobs yet")
    page.select_option("#batch-format", "csv")
    page.click("#batch-submit")
    row = page.locator("#jobs-table tbody tr").first
    expect(row).to_contain_text("done")
    expect(row).to_contain_text("3 of 3")
    expect(row).to_contain_text("the whole pool")
    if os.environ.get("MODELS_SCREENSHOT"):
        page.screenshot(path=os.environ["MODELS_SCREENSHOT"].replace(".png", "-batch.png"))
    link = row.locator("a", has_text="CSV")
    download = page.request.get(link.get_attribute("href"))  # with the page's session
    assert download.status == 200
    lines = download.text().strip().splitlines()
    assert len(lines) == 1 + len(images) and "overall" in lines[0]

    # A queued job (its task not picked up yet) is cancelled from its row.
    queued = ScoringJob.objects.create(
        scope="pool", model_version=ModelVersion.objects.get(version="lite-a"),
        config={"chunk_size": 2}, created_by=researcher,
    )
    page.reload()
    row = page.locator(f"#jobs-table tr[data-job='{queued.pk}']")
    expect(row).to_contain_text("queued")
    page.on("dialog", lambda d: d.accept())
    row.locator("button", has_text="Cancel").click()
    expect(page.locator("#message")).to_contain_text(f"Scoring job #{queued.pk} is cancelled")
    expect(row).to_contain_text("cancelled")
    queued.refresh_from_db()
    assert queued.status == "cancelled"
