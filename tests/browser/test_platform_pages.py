"""The platform's own pages in real Chromium: a release built from the releases page and
downloaded (phone and desktop), the curator deleting an unused source and importing the demo's
sample from the page, the same top bar on every page a role may open, and the 404 page."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from annotation.management.commands.demo import write_sample_dataset
from annotation.models import Membership
from curation.models import FilterJob, Source
from curation.services.jobs import start_job
from curation.services.sources import import_source
from modeling.models import Release
from tests.conftest import make_user
from tests.curation_jobs.conftest import import_root, write_dataset  # noqa: F401

from .conftest import PASSWORD, login, write_photos

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def fill_release_form(page, name: str, version: str, *selection: str, formats=("csv",)):
    """Open the releases page and fill its build form: a name, a version, the projects and
    sources ticked by name, exactly `formats`. The form, for more."""
    page.goto("/releases/")
    form = page.locator("#release-form")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Version").fill(version)
    for choice in selection:
        form.get_by_role("checkbox", name=choice, exact=True).check()
    for box in form.locator('input[name="formats"]').all():
        box.set_checked(box.get_attribute("value") in formats)
    return form


@pytest.fixture
def curated_source(transactional_db, import_root, eager_celery):  # noqa: F811
    """A source with overall scores whose filter job accepted images: what a release takes."""
    manifest = write_dataset(import_root / "src")
    import_source("manifest", manifest, "src", scale=(1, 10))
    start_job(Source.objects.get(name="src"), overrides={"clip": {"enabled": False}})
    return Source.objects.get(name="src")


@pytest.mark.parametrize("width", [390, 1440])
def test_a_release_is_built_from_the_page_and_downloaded(
    page, curated_source, tmp_path, settings, width
):
    settings.RELEASE_ROOT = (tmp_path / "releases").resolve()
    settings.RELEASE_ROOT.mkdir()
    make_user("rhea", "researcher", password=PASSWORD)
    page.set_viewport_size({"width": width, "height": 844 if width < 500 else 900})
    login(page, "rhea")
    form = fill_release_form(page, "hb", "1", "src")  # csv only: quick
    form.get_by_label("Shard size").fill("0")
    fits(page, width)

    page.get_by_role("button", name="Build").click()  # refused: the message under its field
    shard = form.locator('[data-field="shard_size"]')
    expect(shard.locator(".field-error")).to_contain_text("greater than or equal to 1")
    expect(shard.get_by_label("Shard size")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#release-error")).to_contain_text("shard_size")
    assert not Release.objects.exists()

    form.get_by_label("Shard size").fill("500")
    form.get_by_label("Takedown contact").fill("takedown@example.org")
    with page.expect_navigation():  # the new row comes from the server
        page.get_by_role("button", name="Build").click()
    release = Release.objects.get(name="hb", version="1")
    assert release.config["formats"] == ["csv"] and release.config["sources"] == ["src"]
    assert release.config["shard_size"] == 500
    assert release.config["contact"] == "takedown@example.org"
    assert Path(release.out_dir) == settings.RELEASE_ROOT / "hb-1"  # the folder NAME-VERSION
    row = page.locator(f'tr[data-release="{release.pk}"]')
    expect(row.locator('[data-role="status"]')).to_have_text("ready")
    fits(page, width)

    with page.expect_download() as download:
        row.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename == "hb-1.tar"
    with tarfile.open(download.value.path()) as tar:
        names = tar.getnames()
    assert "hb-1/manifest.json" in names and any(n.startswith("hb-1/csv/") for n in names)


def test_the_curator_deletes_an_unused_source_and_imports_the_sample(
    page, transactional_db, import_root, eager_celery, tmp_path  # noqa: F811
):
    write_photos(tmp_path / "photos", 4)
    manifest = write_sample_dataset(tmp_path / "photos")  # what `manage.py demo` writes
    Source.objects.create(name="mistake", kind="manifest", location="/nowhere")
    make_user("cora", "curator", password=PASSWORD)
    login(page, "cora")
    page.goto("/curation/")

    row = page.locator("#sources-table tr", has_text="mistake")
    page.once("dialog", lambda dialog: dialog.dismiss())  # a second thought keeps it
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(1)
    assert Source.objects.filter(name="mistake").exists()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#message")).to_have_text("Deleted the source “mistake”.")
    expect(row).to_have_count(0)
    assert not Source.objects.filter(name="mistake").exists()

    expect(page.locator("#sample-offer")).to_contain_text(str(manifest))
    page.get_by_role("button", name="Use the sample").click()
    expect(page.get_by_label("Path")).to_have_value(str(manifest))
    expect(page.get_by_label("Name")).to_have_value("sample-portraits")
    expect(page.get_by_label("Lowest score")).to_have_value("1")
    expect(page.get_by_label("Highest score")).to_have_value("10")
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-result")).to_contain_text(
        "Imported “sample-portraits”: 4 new records", timeout=30_000
    )
    source = Source.objects.get(name="sample-portraits")
    assert source.items.count() == 4 and source.score_min == 1 and source.score_max == 10


def test_a_source_in_use_offers_no_delete(page, curated_source):
    make_user("cora", "curator", password=PASSWORD)
    login(page, "cora")
    page.goto("/curation/")
    row = page.locator("#sources-table tr", has_text="src")
    expect(row).to_have_count(1)
    expect(row.get_by_role("button", name="Delete")).to_have_count(0)


PLATFORM = {  # the top bar's links each role sees
    "annotator": [],
    "curator": ["curation-home"],
    "researcher": ["curation-home", "releases", "models"],
}


def test_every_page_has_the_same_top_bar_for_a_role(
    page, transactional_db, make_project, eager_celery
):
    project, _, _ = make_project(2, raters=["anna"])
    make_user("cora", "curator", password=PASSWORD)
    make_user("rhea", "researcher", password=PASSWORD)
    pam = make_user("pam", password=PASSWORD)
    Membership.objects.create(project=project, user=pam, role="admin")
    source = Source.objects.create(name="s", kind="manifest", location="/nowhere")
    job = FilterJob.objects.create(source=source, config={})
    curation = ["/curation/", f"/curation/sources/{source.pk}/", f"/curation/jobs/{job.pk}/"]
    at = f"/projects/{project.pk}/"
    pages = {
        "anna": ("annotator", ["/", at + "rate/"]),
        "pam": ("annotator", ["/", at + "dashboard/", at + "review/"]),
        "cora": ("curator", ["/", *curation]),
        "rhea": ("researcher", ["/", *curation, "/releases/", "/models/", at + "dashboard/"]),
    }
    for username, (role, urls) in pages.items():
        page.context.clear_cookies()
        login(page, username)
        for path in urls:
            assert page.goto(path).status == 200, path
            links = page.locator(".topbar [data-nav]")
            keys = links.evaluate_all("ls => ls.map(l => l.dataset.nav)")
            assert keys == PLATFORM[role], (username, path)
            for i in range(links.count()):
                expect(links.nth(i)).to_be_visible()
            current = page.locator('.topbar [data-nav][aria-current="page"]')
            if path.startswith(("/curation/", "/releases/", "/models/")):
                expect(current).to_have_attribute("href", "/" + path.split("/")[1] + "/")
            else:
                expect(current).to_have_count(0)

    # The project's managers (only) get its members and guides pages among its tabs.
    page.context.clear_cookies()
    login(page, "pam")
    page.goto(f"/projects/{project.pk}/dashboard/")
    tabs = page.locator("nav.tabs a")
    for name, label in (("members", "Members"), ("guides", "Guides")):
        expected = [reverse(name, args=[project.pk])]
        assert tabs.filter(has_text=label).evaluate_all("ls => ls.map(l => l.pathname)") == expected
    # A reviewer manages the guides but not the members (the members page is the admins').
    rex = make_user("rex", password=PASSWORD)
    Membership.objects.create(project=project, user=rex, role="reviewer")
    page.context.clear_cookies()
    login(page, "rex")
    page.goto(f"/projects/{project.pk}/dashboard/")
    expect(tabs.filter(has_text="Guides")).to_have_count(1)
    expect(tabs.filter(has_text="Members")).to_have_count(0)
    page.context.clear_cookies()
    login(page, "rhea")  # a researcher reads the dashboard but manages nothing
    page.goto(f"/projects/{project.pk}/dashboard/")
    expect(tabs.filter(has_text="Members")).to_have_count(0)
    expect(tabs.filter(has_text="Guides")).to_have_count(0)


@pytest.mark.parametrize("width", [390, 1440])
def test_the_404_page_says_why_and_where_to_go(page, transactional_db, width):
    page.set_viewport_size({"width": width, "height": 844 if width < 500 else 900})
    response = page.goto("/no/such/page/")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("There is nothing here")
    expect(page.locator("main")).to_contain_text("No page has the address /no/such/page/")
    expect(page.locator("main").get_by_role("link", name="log in")).to_have_attribute(
        "href", "/accounts/login/?next=/no/such/page/"
    )
    fits(page, width)

    make_user("rhea", "researcher", password=PASSWORD)
    login(page, "rhea")
    response = page.goto("/curation/sources/999999/")  # an object that does not exist
    assert response.status == 404
    main = page.locator("main")
    expect(main.get_by_role("link", name="your projects")).to_have_attribute("href", "/")
    expect(main.get_by_role("link", name="releases")).to_have_attribute("href", "/releases/")
    expect(main.get_by_role("link", name="log in")).to_have_count(0)
    expect(page.locator(".topbar [data-nav]")).to_have_count(3)  # the top bar as everywhere
    fits(page, width)
