"""The pages in real Chromium: a curator records a source's provenance and starts a job that
requires terms; a researcher's release form declares a licence, and a refusal says why."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from curation.models import FilterJob, Source, SourceItem
from tests.browser_support import PASSWORD, login
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture
def source(transactional_db):
    src = Source.objects.create(name="portraits", kind="manifest", location="/nowhere")
    SourceItem.objects.create(source=src, path="a.jpg")
    return src


def test_a_curator_records_a_source_s_terms_on_its_page(page, source):
    # (with the suite's broker and no worker, the job is recorded and queued, not run)
    make_user("cora", "curator", password=PASSWORD)
    login(page, "cora")
    page.goto(f"/curation/sources/{source.pk}/")
    expect(page.locator("#terms-licence")).to_have_text("licence unknown")
    expect(page.locator("#terms-allows")).to_contain_text("allows no commercial use")
    form = page.locator("#terms-form")

    form.get_by_label("Licence").fill("CC BY!")
    form.get_by_role("button", name="Save terms").click()
    expect(page.locator("#terms-error")).to_contain_text("is not a licence identifier")
    source.refresh_from_db()
    assert source.licence == ""

    form.get_by_label("Origin").fill("https://example.org/portraits")
    form.get_by_label("Licence").fill("cc-by-nc-4.0")
    form.get_by_label("Consent basis").select_option("explicit_consent")
    form.get_by_role("button", name="Save terms").click()
    expect(page.locator("#terms-licence")).to_have_text("CC-BY-NC-4.0")
    expect(page.locator("#terms-consent")).to_have_text("explicit consent")
    expect(page.locator("#terms-allows")).to_have_text("allows redistribution, derivatives")
    expect(form.get_by_label("Licence")).to_have_value("CC-BY-NC-4.0")
    source.refresh_from_db()
    assert (source.origin, source.licence, source.consent_basis) == (
        "https://example.org/portraits", "CC-BY-NC-4.0", "explicit_consent")

    job_form = page.locator("#job-form")
    job_form.get_by_label("CLIP screens").set_checked(False)
    job_form.get_by_label("Redistribution").check()
    job_form.get_by_role("button", name="Start job").click()
    page.wait_for_url("**/curation/jobs/*/")
    job = FilterJob.objects.get()
    assert job.config["terms"] == {"require": ["redistribution"]}


def test_the_release_form_declares_a_licence_and_shows_a_refusal(page, source):
    make_user("rita", "researcher", password=PASSWORD)
    login(page, "rita")
    page.goto("/releases/")
    form = page.locator("#release-form")
    form.get_by_label("Name").fill("hb")
    form.get_by_label("Version").fill("1")
    form.get_by_role("checkbox", name="portraits", exact=True).check()
    form.get_by_label("Declared licence").fill("CC BY!")
    form.get_by_role("button", name="Build").click()
    expect(page.locator("#release-error")).to_contain_text("a release's licence must be one")
