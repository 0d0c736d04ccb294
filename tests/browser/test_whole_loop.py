"""The whole loop as its users walk it (issue #14's acceptance), in real Chromium with a real
Celery worker: the curator imports the demo's sample and runs a filter job (live progress), makes
a rating project of what it accepted and, as its manager, invites a rater from the members page;
the rater joins and rates every image on a 390-px phone by touch; the researcher builds a
release of the project from the releases page and downloads it. The download's labels are the
ratings the phone sent."""

from __future__ import annotations

import csv
import io
import re
import tarfile

import pytest
from playwright.sync_api import expect

from annotation.management.commands.demo import write_sample_dataset, write_sample_photos
from annotation.models import Membership, Project, Rating
from curation.models import FilterJob, JobStatus, Source
from humanbeauty.standard import DIMENSION_KEYS, LEVELS, level_to_score
from modeling.models import Release
from tests.conftest import make_user
from tests.curation_jobs.conftest import import_root  # noqa: F401

from .conftest import PASSWORD, login
from .test_curator_page import WATCH_PROGRESS, worker  # noqa: F401
from .test_rater_page import page_order, wait_for_image
from .test_small_screens import PHONE, assert_fits, touch_context

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

IMAGES = 3  # the project's sample: enough to walk the loop, few enough to rate by hand


def rate_by_touch(phone, image_index: int) -> dict[str, float | None]:
    """Tap a level (or N) on every dimension of the image shown, then Submit; the scores sent."""
    sent: dict[str, float | None] = {}
    for i, d in enumerate(page_order()):
        use_na = d["nullable"] and not d["children"] and (i + image_index) % 4 == 0
        level = "na" if use_na else str((i + image_index) % len(LEVELS) + 1)
        button = phone.locator(f'#dim-{d["key"]} .lvl[data-level="{level}"]')
        button.scroll_into_view_if_needed()
        button.tap()
        expect(button).to_have_attribute("aria-pressed", "true")
        sent[d["key"]] = None if use_na else level_to_score(int(level))
    submit = phone.locator("#btn-submit")
    submit.scroll_into_view_if_needed()
    submit.tap()
    return sent


def test_the_whole_loop(page, browser, live_server, worker, import_root, settings, tmp_path):  # noqa: F811
    settings.RELEASE_ROOT = (tmp_path / "releases").resolve()
    settings.RELEASE_ROOT.mkdir()
    make_user("cora", "curator", password=PASSWORD)
    make_user("rhea", "researcher", password=PASSWORD)
    write_sample_photos(tmp_path / "photos")
    manifest = write_sample_dataset(tmp_path / "photos")  # what `manage.py demo` ships
    assert manifest is not None and manifest.is_relative_to(import_root)

    # --- the curator: the sample in, a filter job watched live, a project of what it accepted
    page.add_init_script(WATCH_PROGRESS)
    login(page, "cora")
    page.get_by_role("link", name="Curation").click()
    page.get_by_role("button", name="Use the sample").click()
    page.get_by_role("button", name="Import").click()
    # The import runs on the worker: allow for a loaded machine.
    expect(page.locator("#import-result")).to_contain_text(
        "Imported “sample-portraits”", timeout=30_000
    )
    source = Source.objects.get(name="sample-portraits")
    page.locator("#sources-table tbody tr", has_text="sample-portraits").get_by_role(
        "link", name="sample-portraits"
    ).click()
    page.get_by_label("Chunk size").fill("2")
    page.get_by_role("button", name="Start job").click()
    page.wait_for_url(re.compile(r"/curation/jobs/\d+/$"))
    expect(page.locator("#job-status")).to_have_text("done", timeout=120_000)
    seen = [int(v.rstrip("%")) for v in page.evaluate("window.__progress") if v.endswith("%")]
    assert any(0 < v < 100 for v in seen), f"no live progress shown: {seen}"
    job = FilterJob.objects.get(source=source)
    assert job.status == JobStatus.DONE
    accepted = int(page.locator("#kpi-accepted").inner_text())
    assert accepted >= IMAGES, f"the sample's filter job accepted only {accepted}"

    form = page.locator("#project-form")
    form.get_by_label("Project name").fill("Field walk")
    form.get_by_label("Sample").fill(str(IMAGES))
    form.get_by_label("Raters / image").fill("1")
    form.get_by_role("button", name="Create project").click()
    expect(page.locator("#project-result")).to_contain_text(
        f"Project “Field walk” created with {IMAGES} images"
    )
    project = Project.objects.get(name="Field walk")
    # Whoever makes the project manages it: the members page is theirs.
    assert Membership.objects.get(project=project, user__username="cora").role == "admin"

    page.goto(f"/projects/{project.pk}/members/")
    page.locator("#invite-role").select_option("annotator")
    page.get_by_role("button", name="Create link").click()
    link = page.locator("#invite-url")
    expect(link).not_to_have_value("")
    invitation = link.input_value()

    # --- the rater, on a phone: joins by the link, rates every image by touch
    phone_context = touch_context(browser, live_server, PHONE)
    try:
        phone = phone_context.new_page()
        errors: list[str] = []
        phone.on("pageerror", lambda exc: errors.append(str(exc)))
        phone.goto(invitation)
        assert_fits(phone, "whole loop invitation")
        phone.get_by_label("Choose a username").fill("rita")
        phone.get_by_label("Choose a password").fill("Rita-rates-2026")
        with phone.expect_navigation():
            phone.get_by_role("button", name="Create account and join").tap()
        phone.get_by_role("link", name=re.compile("Field walk")).first.tap()
        phone.wait_for_url(re.compile(rf"/projects/{project.pk}/rate/$"))
        sent: dict[int, dict[str, float | None]] = {}
        shown = None
        for n in range(IMAGES):
            shown = wait_for_image(phone, other_than=shown)
            assert_fits(phone, f"whole loop rater page {n}")
            sent[shown.image] = rate_by_touch(phone, n)
            expect(phone.locator("#stage")).not_to_have_attribute(
                "data-assignment", str(shown.assignment)
            )
        expect(phone.locator("body")).to_contain_text(re.compile("done|nothing left", re.I))
        phone.wait_for_load_state("networkidle")
        assert not errors, errors
    finally:
        phone_context.close()
    ratings = Rating.objects.filter(assignment__project=project, rater__username="rita")
    assert {r.image_id: r.scores for r in ratings} == sent

    # --- the researcher: a release of the project built from the page, then downloaded
    page.context.clear_cookies()
    login(page, "rhea")
    page.goto("/releases/")
    form = page.locator("#release-form")
    form.get_by_label("Name").fill("walk")
    form.get_by_label("Version").fill("1")
    form.get_by_role("checkbox", name="Field walk").check()
    for fmt in ("official", "parquet", "webdataset"):
        form.get_by_role("checkbox", name=fmt).uncheck()
    form.get_by_role("checkbox", name="csv").check()
    form.get_by_label("Min raters").fill("1")
    with page.expect_navigation():
        page.get_by_role("button", name="Build").click()
    release = Release.objects.get(name="walk", version="1")
    row = page.locator(f'tr[data-release="{release.pk}"]')
    expect(row.locator('[data-role="status"]')).to_have_text("ready", timeout=120_000)
    with page.expect_download() as download:
        row.get_by_role("link", name="Download").click()
    with tarfile.open(download.value.path()) as tar:
        members = {m.name: m for m in tar.getmembers()}
        tables = [n for n in members if n.startswith("walk-1/csv/") and n.endswith(".csv")]
        rows = []
        for name in tables:
            text = tar.extractfile(members[name]).read().decode("utf-8")
            rows += list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == IMAGES
    for row_ in rows:
        scores = sent[int(row_["image_id"])]
        for key in DIMENSION_KEYS:
            value = row_[key]
            expected = scores[key]
            assert (value == "" if expected is None else float(value) == pytest.approx(expected)), (
                key, value, expected
            )
