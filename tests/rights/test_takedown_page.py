"""The admins' takedown page in Chromium, on a phone, a tablet and a desktop: file a request,
add the person's photo, find the matches, confirm them, remove them, read the report; the page
never scrolls sideways."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from curation.models import Image
from curation.services import import_directory
from rights.models import AuditEvent, BlockedImage
from tests.browser.test_small_screens import PHONE, TABLET, assert_fits
from tests.browser_support import PASSWORD, login
from tests.conftest import image_bytes, make_user

from .conftest import photo, recompressed_copy

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def buttons_inside(page) -> None:
    """No visible button outside a table (tables scroll in their own box) sticks out on either
    side (a row that cannot wrap spills left)."""
    width = page.viewport_size["width"]
    for button in page.locator("button:visible").all():
        if button.evaluate("b => !!b.closest('.table-wrap')"):
            continue
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (
            button.inner_text(), box)


DESKTOP = {"width": 1280, "height": 900}


@pytest.mark.parametrize("viewport", [PHONE, TABLET, DESKTOP], ids=["phone", "tablet", "desktop"])
def test_an_admin_takes_a_photo_down_from_a_phone(page, transactional_db, tmp_path,
                                                  eager_celery, viewport):
    folder = tmp_path / "pool"
    folder.mkdir()
    (folder / "portrait.jpg").write_bytes(photo())
    (folder / "a-rather-long-folder-name-for-a-copy-of-it").mkdir()
    (folder / "a-rather-long-folder-name-for-a-copy-of-it" / "copy.jpg").write_bytes(
        recompressed_copy())
    for i in range(3):
        (folder / f"other_{i}.jpg").write_bytes(image_bytes(size=(120, 90), seed=i, fmt="JPEG"))
    import_directory(folder)
    supplied = tmp_path / "from-the-person.jpg"
    supplied.write_bytes(photo())
    make_user("boss", "admin", password=PASSWORD)

    page.set_viewport_size(viewport)
    login(page, "boss")
    page.goto("/takedowns/")
    expect(page.locator("#face-note")).to_contain_text("face matching is not available")
    expect(page.locator("#requests tbody")).to_contain_text("No requests yet.")
    assert_fits(page, "the takedown page")

    page.fill("#td-person", "A. Person")
    page.fill("#td-contact", "a@example.org")
    page.fill("#td-reason", "I never agreed to be in a dataset.")
    page.fill("#td-ids", "12, x")
    page.click("#file-submit")
    expect(page.locator("#file-error")).to_contain_text("whole numbers")
    page.fill("#td-ids", "")
    page.click("#file-submit")
    expect(page.locator("#request-card")).to_be_visible()
    expect(page.locator("#h-request")).to_contain_text("A. Person")

    page.set_input_files("#td-photos", str(supplied))
    page.click("#photos-submit")
    expect(page.locator("#request-msg")).to_contain_text("1 photo(s) hashed")
    page.click("#match-btn")
    expect(page.locator("#request-msg")).to_contain_text("2 match(es)")
    rows = page.locator("#matches tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#matches")).to_contain_text("exact_sha256")
    expect(page.locator("#matches")).to_contain_text("near_duplicate")
    assert_fits(page, "the takedown page with matches")
    buttons_inside(page)

    for match in rows.evaluate_all("rows => rows.map(r => r.dataset.match)"):
        row = page.locator(f'#matches tr[data-match="{match}"]')
        row.locator('[data-decide="confirmed"]').click()
        expect(row.locator("td").nth(3)).to_have_text("confirmed")
    page.once("dialog", lambda d: d.accept())
    page.click("#remove-btn")
    expect(page.locator("#h-request")).to_be_visible()
    expect(page.locator("#request-sub")).to_contain_text("removed", timeout=20_000)
    expect(page.locator("#report")).to_contain_text("pool: image")
    expect(page.locator("#audit")).to_contain_text("removal_finished")
    # a removed request offers no more steps
    for step in ("#remove-btn", "#reject-btn", "#photos-submit", "#match-btn"):
        expect(page.locator(step)).to_be_hidden()
    assert_fits(page, "the takedown report")
    buttons_inside(page)

    assert not Image.objects.filter(original_path__in=[
        "portrait.jpg", "a-rather-long-folder-name-for-a-copy-of-it/copy.jpg"]).exists()
    assert Image.objects.count() == 3
    assert BlockedImage.objects.count() == 2
    assert AuditEvent.objects.filter(action="image_removed").count() == 2
