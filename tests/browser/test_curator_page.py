"""The curator's pages in real Chromium, with a real Celery worker doing the job.

Import a manifest through the form, start a filter job from the source page, watch its progress
grow live to the end, then read the summary plot and a contact sheet, override a decision with a
reason and turn the accepted images into a rating project.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from annotation.models import Project, ProjectImage
from config.celery import app as celery_app
from curation.models import Decision, FilterJob, JobStatus, Source
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.conftest import make_user
from tests.curation_jobs.conftest import EXPECTED, import_root, write_dataset  # noqa: F401

from .conftest import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
SCREENS = Path(os.environ.get("CURATION_SCREENSHOTS", "/tmp/curation_screens"))

# Records every value the overall progress shows, to prove it moved while the job ran.
WATCH_PROGRESS = """
window.__progress = [];
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("progress-percent");
  if (!el) return;
  new MutationObserver(() => window.__progress.push(el.textContent)).observe(
    el, {childList: true, characterData: true, subtree: true});
});
"""


@pytest.fixture
def worker(transactional_db, import_root):  # noqa: F811
    """A Celery worker process on the test database (as in tests/curation_jobs)."""
    celery_app.control.purge()
    proc = start_worker(worker_env())
    yield proc
    stop_worker(proc)


@pytest.fixture
def curator(transactional_db):
    return make_user("cora", "curator", password=PASSWORD)


def shot(page, name: str) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_import_filter_watch_and_override(page, live_server, curator, worker, import_root):  # noqa: F811
    manifest = write_dataset(import_root / "portraits")
    page.add_init_script(WATCH_PROGRESS)
    login(page, "cora")

    # The home page links curators to the curation pages.
    page.get_by_role("link", name="Curation").click()
    expect(page.get_by_role("heading", name="Sources", level=1)).to_be_visible()
    expect(page.locator("#sources-table")).to_contain_text("Import a public dataset")

    # Import: a path outside the roots is refused with the reason, then the real one.
    form = page.locator("#import-form")
    form.get_by_label("Path").fill("/etc/passwd")
    form.get_by_label("Name").fill("portraits")
    form.get_by_role("button", name="Import").click()
    expect(page.locator("#import-error")).to_contain_text("outside the import roots")
    form.get_by_label("Path").fill(str(manifest))
    form.get_by_label("Lowest score").fill("1")
    form.get_by_label("Highest score").fill("10")
    form.get_by_role("button", name="Import").click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("Imported “portraits”", timeout=30_000)
    expect(result).to_contain_text(f"{len(EXPECTED)} new records")
    row = page.locator("#sources-table tbody tr", has_text="portraits")
    expect(row).to_contain_text("9")
    expect(row).to_contain_text("none yet")
    shot(page, "1-sources")
    source = Source.objects.get(name="portraits")
    assert (source.score_min, source.score_max) == (1, 10)

    # The source page: start a job with small chunks (CLIP off: no checkpoint here).
    row.get_by_role("link", name="portraits").click()
    expect(page.get_by_role("heading", name="portraits", level=1)).to_be_visible()
    expect(page.locator("#kpi-items")).to_have_text("9")
    clip = page.get_by_label(re.compile("CLIP screens"))
    expect(clip).not_to_be_checked()
    page.get_by_label("Chunk size").fill("2")
    page.get_by_role("button", name="Start job").click()
    page.wait_for_url(re.compile(r"/curation/jobs/\d+/$"))
    job = FilterJob.objects.get(source=source)
    assert job.config["chunk_size"] == 2 and job.config["clip"]["enabled"] is False

    # Live progress: it grows chunk by chunk to 100 %, then the job is done.
    status = page.locator("#job-status")
    expect(status).to_have_text("done", timeout=45_000)
    expect(page.locator("#progress-percent")).to_have_text("100%")
    seen = [int(v.rstrip("%")) for v in page.evaluate("window.__progress") if v.endswith("%")]
    assert any(0 < v < 100 for v in seen), f"no intermediate progress shown: {seen}"
    assert seen == sorted(seen), seen
    stages = page.locator("#stages li")
    expect(stages).to_have_count(5)
    expect(stages.filter(has_text="Validate")).to_contain_text("9 / 9")
    expect(stages.filter(has_text="CLIP")).to_contain_text("off")
    expect(page.locator("#kpi-accepted")).to_have_text("2")
    expect(page.locator("#kpi-rejected")).to_have_text("7")

    # The summary plot: one bar per decision, one row per reason.
    expect(page.locator("#chart-decisions svg .bar")).to_have_count(9)  # 3 rows x 3 series
    reasons = page.locator("#chart-reasons svg .row-label")
    expect(reasons.first).to_have_text("no_face")  # the most frequent reason first
    expect(page.locator("#chart-reasons svg")).to_contain_text("corrupt")

    # Contact sheets: the accepted images first, then a reason's group.
    sheet = page.locator("#sheet img")
    expect(sheet).to_have_attribute("data-group", "accepted")
    page.wait_for_function(
        "() => { const i = document.querySelector('#sheet img'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )
    page.locator("#sheet-groups").get_by_role("button", name=re.compile("^no_face")).click()
    expect(sheet).to_have_attribute("data-group", "no_face")
    expect(sheet).to_have_attribute("src", re.compile(r"group=no_face"))
    page.wait_for_function(
        "() => { const i = document.querySelector('#sheet img'); "
        "return i && i.complete && i.naturalWidth > 500 && i.src.includes('no_face'); }"
    )
    expect(page.locator("#decisions-table tbody tr")).to_have_count(9)
    shot(page, "2-job-done")

    # Override: the gradient was rejected (no face); accept it, with a reason.
    gradient = page.locator("#decisions-table tbody tr", has_text="gradient.png")
    expect(gradient).to_contain_text("rejected")
    gradient.get_by_role("button", name="Accept…").click()
    dialog = page.locator("#override-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("The job decided rejected (no_face)")
    dialog.get_by_role("button", name="Accept image").click()
    expect(page.locator("#override-error")).to_contain_text("reason is kept")
    dialog.get_by_label("Reason").fill("a person seen from behind")
    shot(page, "3-override-dialog")
    dialog.get_by_role("button", name="Accept image").click()
    expect(dialog).to_be_hidden()
    gradient = page.locator("#decisions-table tbody tr", has_text="gradient.png")
    expect(gradient.locator(".decision-pill")).to_have_text("accepted")
    expect(gradient).to_contain_text("a person seen from behind")
    expect(gradient).to_contain_text("job said rejected")
    expect(page.locator("#kpi-accepted")).to_have_text("3")
    expect(page.locator("#kpi-overridden")).to_have_text("1")
    d = Decision.objects.get(job=job, item__path="gradient.png")
    assert (d.final, d.override_reason, d.overridden_by) == (
        "accepted",
        "a person seen from behind",
        curator,
    )
    # the sheet of the group it left is redrawn: two images now
    expect(
        page.locator("#sheet-groups").get_by_role("button", name=re.compile("^no_face"))
    ).to_contain_text("2")

    # Into annotation: a project from the accepted images.
    project_form = page.locator("#project-form")
    project_form.get_by_label("Project name").fill("Portraits round 1")
    project_form.get_by_role("button", name="Create project").click()
    expect(page.locator("#project-result")).to_contain_text(
        "Project “Portraits round 1” created with 3 images"
    )
    project = Project.objects.get(name="Portraits round 1")
    assert ProjectImage.objects.filter(project=project).count() == 3
    shot(page, "4-job-after-override")
    assert FilterJob.objects.get(pk=job.pk).status == JobStatus.DONE
    expect(page.locator("#btn-cancel")).to_be_hidden()  # nothing left to cancel

    # Back to the source by the breadcrumb: the job is listed with its counts.
    page.locator(".crumbs").get_by_role("link", name="portraits").click()
    jobs = page.locator("#jobs-table tbody tr")
    expect(jobs).to_have_count(1)
    expect(jobs.first).to_contain_text(f"Job {job.pk}")
    expect(jobs.first).to_contain_text("done")
    expect(jobs.first).to_contain_text("9 / 9")
    expect(jobs.first.locator("td.num").first).to_have_text("3")  # accepted, after the override
    expect(page.locator("#kpi-linked")).to_have_text("7")
    shot(page, "5-source")


def test_researchers_read_and_annotators_are_kept_out(page, live_server, transactional_db):
    make_user("rhea", "researcher", password=PASSWORD)
    make_user("anna", password=PASSWORD)
    Source.objects.create(name="empty", kind="manifest", location="/nowhere")

    login(page, "rhea")
    page.get_by_role("link", name="Curation").click()
    expect(page.locator("#sources-table")).to_contain_text("empty")
    expect(page.locator("#import-form")).to_have_count(0)  # reading only
    page.get_by_role("link", name="empty").click()
    expect(page.locator("#job-form")).to_have_count(0)
    expect(page.locator("#jobs-table")).to_contain_text("No jobs yet")

    page.context.clear_cookies()
    login(page, "anna")
    expect(page.get_by_role("link", name="Curation")).to_have_count(0)
    response = page.goto("/curation/")
    assert response.status == 403


def test_an_import_is_cancelled_from_the_page_and_keeps_what_it_wrote(
    page, curator, worker, import_root  # noqa: F811
):
    from curation.models import SourceImport, SourceItem
    from tests.curation_api.test_source_imports import big_manifest

    n = 300_000  # long enough to be caught running
    manifest = big_manifest(import_root / "huge", n)
    login(page, "cora")
    page.goto("/curation/")
    form = page.locator("#import-form")
    form.get_by_label("Path").fill(str(manifest))
    form.get_by_label("Name").fill("huge")
    form.get_by_label("Lowest score").fill("1")
    form.get_by_label("Highest score").fill("10")
    form.get_by_role("button", name="Import").click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("records", timeout=60_000)  # "N of 300,000 records"
    page.locator("#import-cancel").click()
    expect(page.locator("#import-error")).to_contain_text("cancelled by cora", timeout=30_000)
    job = SourceImport.objects.get()
    assert job.status == JobStatus.CANCELLED
    page.wait_for_timeout(1000)  # the batch the worker was writing when the cancel came
    kept = SourceItem.objects.filter(source__name="huge").count()
    assert 0 < kept < n  # what was written stays; the rest was never imported
    page.wait_for_timeout(2000)
    assert SourceItem.objects.filter(source__name="huge").count() == kept  # the worker stopped
