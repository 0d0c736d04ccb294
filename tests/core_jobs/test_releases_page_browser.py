"""The releases page in real Chromium: a release still building shows that it waits or how far
it got, and its Cancel button stops it, at desktop and phone widths."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from core import jobs
from modeling.models import Release
from tests.browser_support import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture
def researcher(transactional_db):
    user = get_user_model().objects.create_user("rhea", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="researcher")[0])
    return user


@pytest.mark.parametrize("width", [1440, 390])
def test_a_building_release_shows_progress_and_is_cancelled_from_the_page(
    page, researcher, tmp_path, width
):
    page.set_viewport_size({"width": width, "height": 900})
    waiting = Release.objects.create(name="hb", version="2", out_dir=str(tmp_path / "w"))
    building = Release.objects.create(name="hb", version="1", out_dir=str(tmp_path / "b"))
    jobs.claim(Release, building.pk)  # a worker holds it
    jobs.beat(Release, building.pk, progress={"phase": "writing", "done": 1200, "total": 5000})

    login(page, "rhea")
    page.goto("/releases/")
    row = page.locator(f'tr[data-release="{building.pk}"]')
    expect(row.locator('[data-role="progress"]')).to_have_text("writing: 1,200 of 5,000")
    expect(page.locator(f'tr[data-release="{waiting.pk}"] [data-role="progress"]')).to_have_text(
        "waiting for a worker"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    with page.expect_navigation():  # the finished row comes back from the server
        row.locator('[data-role="cancel"]').click()
    expect(row.locator('[data-role="status"]')).to_have_text("cancelled")
    expect(row.locator('[data-role="cancel"]')).to_have_count(0)
    building.refresh_from_db()
    assert building.status == "cancelled" and building.error == "cancelled by rhea"
    with pytest.raises(jobs.JobCancelled):  # its worker stops at its next progress write
        jobs.beat(Release, building.pk, progress={"phase": "writing", "done": 1300, "total": 5000})
    assert Release.objects.get(pk=waiting.pk).status == "queued"
