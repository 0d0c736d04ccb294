"""The rater page in Chromium (#14): the standard taught inline (hover on a desktop, tap on a
phone), example images one tap away, and answers that survive reload and Back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import GuideExample, ItemKind, Rating, Skip
from annotation.services.quality import set_references
from humanbeauty.dimension_guides import DEFAULT_GUIDES
from humanbeauty.standard import LEVELS
from tests.browser.conftest import login
from tests.browser.test_rater_page import open_project, page_order, wait_for_image
from tests.browser.test_small_screens import assert_fits
from tests.conftest import full_scores, new_request_id

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def kept(page, project, user, assignment) -> dict | None:
    """What the page keeps in localStorage for this user, project and lease."""
    return page.evaluate(
        "k => JSON.parse(localStorage.getItem(k))",
        f"hb.answers.{user.pk}.{project.pk}.{assignment}",
    )


def answered(page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.dim')]
            .filter(r => r.dataset.value).map(r => [r.dataset.key, r.dataset.value]))"""
    )


def test_desktop_hover_shows_the_guide_and_the_examples_open(page, guided_photos):
    project, _, _ = guided_photos
    login(page, "rita")
    open_project(page, project)

    guide = page.locator("#dim-looks-guide")
    expect(guide).to_be_hidden()
    page.locator("#dim-looks .dim-name").hover()
    expect(guide).to_be_visible()
    expect(guide).to_contain_text("Grooming and expression, as the house style says.")
    expect(guide).to_contain_text(DEFAULT_GUIDES["looks"][1][4])
    page.mouse.move(5, 5)
    expect(guide).to_be_hidden()

    # Each level button is described by its level's line.
    good = page.locator('#dim-outfit .lvl[data-level="4"]')
    expect(good).to_have_attribute("title", f"good (4): {DEFAULT_GUIDES['outfit'][1][3]}")
    described = good.get_attribute("aria-describedby")
    expect(page.locator(f"#{described}")).to_contain_text(DEFAULT_GUIDES["outfit"][1][3])

    # The guidelines panel: a section per dimension, the project's own text included.
    page.keyboard.press("g")
    expect(page.locator("#guidelines .guide-section")).to_have_count(len(page_order()))
    expect(page.locator("#guide-looks")).to_contain_text("as the house style says")
    page.keyboard.press("g")

    # The pointer passes through a preview to the rows below it.
    page.locator("#dim-outfit .dim-name").hover()
    expect(page.locator("#dim-outfit-guide")).to_be_visible()
    page.locator("#dim-environment .dim-name").hover()
    expect(page.locator("#dim-outfit-guide")).to_be_hidden()
    expect(page.locator("#dim-environment-guide")).to_be_visible()

    # A click on the info button opens the guide; its examples open in a dialog at the level
    # that has them, and the image loads.
    page.locator("#dim-environment .dim-info").click()
    expect(page.locator("#dim-environment .dim-info")).to_have_attribute("aria-expanded", "true")
    page.mouse.move(5, 5)
    opener = page.locator("#dim-environment-guide .guide-open")
    expect(opener).to_have_text("Examples (1)")
    opener.click()
    dialog = page.locator("#guide-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text("Environment")
    expect(dialog.locator('.guide-tab[aria-selected="true"]')).to_have_text("2 poor (1)")
    expect(dialog.locator("#guide-level-desc")).to_have_text(DEFAULT_GUIDES["environment"][1][1])
    image = dialog.locator(".guide-figure img")
    expect(image).to_have_count(1)
    page.wait_for_function(
        "() => { const i = document.querySelector('.guide-figure img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    dialog.locator('.guide-tab[data-level="5"]').click()
    expect(dialog).to_contain_text("No example image pinned for this level yet.")
    # Keys do nothing to the rating while the dialog is open; Escape closes it.
    page.keyboard.press("4")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert answered(page) == {}

    # The keyboard: I shows the current dimension's guide, Escape closes it.
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowUp")
    current = page.eval_on_selector(".dim.is-current", "r => r.dataset.key")
    assert current != "environment"
    page.keyboard.press("i")
    expect(page.locator(f"#dim-{current}-guide")).to_be_visible()
    expect(page.locator("#dim-environment-guide")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(page.locator(f"#dim-{current}-guide")).to_be_hidden()


def test_answers_survive_reload_and_back_and_go_after_submit(page, guided_photos):
    project, images, users = guided_photos
    login(page, "rita")
    first = open_project(page, project)
    order = page_order()
    for key in ("4", "2", "n", "5"):
        page.keyboard.press(key)
    before = answered(page)
    assert len(before) == 4
    assert kept(page, project, users["rita"], first.assignment)["answers"]

    page.reload()
    again = wait_for_image(page)
    assert again == first  # the same lease comes back, with its answers
    assert answered(page) == before
    expect(page.locator("#answered")).to_have_text(f"4 of {len(order)} answered")
    expect(page.locator("#message")).to_contain_text("4 earlier answers")
    assert page.eval_on_selector(".dim.is-current", "r => r.dataset.key") == order[4]["key"]

    # Away to the projects page and Back: still there.
    page.get_by_role("link", name=re.compile("Projects")).first.click()
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()
    page.go_back()
    wait_for_image(page)
    assert answered(page) == before

    # A submit clears what was kept; the next image starts empty.
    for i, d in enumerate(order):
        if d["key"] not in before:
            page.locator(f'#dim-{d["key"]} .lvl[data-level="{i % len(LEVELS) + 1}"]').click()
    page.locator("#btn-submit").click()
    expect(page.locator("#message")).not_to_contain_text("Not submitted")
    second = wait_for_image(page, other_than=first)
    assert Rating.objects.filter(assignment_id=first.assignment).exists()
    assert kept(page, project, users["rita"], first.assignment) is None
    assert answered(page) == {}
    page.reload()
    assert wait_for_image(page) == second
    assert answered(page) == {}

    # A skip clears them too.
    page.keyboard.press("3")
    assert kept(page, project, users["rita"], second.assignment)
    page.keyboard.press("s")
    page.locator("#skip-confirm").click()
    wait_for_image(page, other_than=second)
    assert Skip.objects.filter(assignment_id=second.assignment).exists()
    assert kept(page, project, users["rita"], second.assignment) is None


def test_counters_refresh_when_the_page_is_shown_again(page, guided_photos):
    project, _, users = guided_photos
    login(page, "rita")
    open_project(page, project)
    left = page.locator("#p-left")
    expect(left).to_have_text(re.compile(r"^\d+$"))
    start = int(left.inner_text())
    # Another rater finishes an image meanwhile.
    task = services.next_task(project, users["ola"])
    services.submit_rating(task.pk, users["ola"], full_scores(3), new_request_id(),
                           time_spent_ms=1000)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(left).to_have_text(str(start - 1))
    # Back from another page shows fresh counters too (from the cache or not).
    task = services.next_task(project, users["ola"])
    page.get_by_role("link", name=re.compile("Projects")).first.click()
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()
    services.submit_rating(task.pk, users["ola"], full_scores(3), new_request_id(),
                           time_spent_ms=1000)
    page.go_back()
    expect(left).to_have_text(str(start - 2))


def test_phone_taps_the_guide_and_the_examples(phone, guided_photos):
    project, _, users = guided_photos
    login(phone, "rita")
    first = open_project(phone, project)
    info = phone.locator("#dim-environment .dim-info")
    info.scroll_into_view_if_needed()
    box = info.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44, box
    info.tap()
    guide = phone.locator("#dim-environment-guide")
    expect(guide).to_be_visible()
    expect(guide).to_contain_text(DEFAULT_GUIDES["environment"][0])
    expect(info).to_have_attribute("aria-expanded", "true")
    assert_fits(phone, "the rater page with a guide open")
    opener = guide.locator(".guide-open")
    expect(opener).to_have_text("Examples (1)")
    opener.tap()
    dialog = phone.locator("#guide-dialog")
    expect(dialog).to_be_visible()
    phone.wait_for_function(
        "() => { const i = document.querySelector('.guide-figure img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    for part in (dialog, dialog.locator(".guide-figure img")):
        b = part.bounding_box()
        assert b["x"] >= 0 and b["x"] + b["width"] <= 390.5, b
    close = phone.locator("#guide-close")
    close.tap()
    expect(dialog).to_be_hidden()
    # Another tap elsewhere closes the inline guide.
    phone.locator("#answered").tap()
    expect(guide).to_be_hidden()

    # Tapped answers survive a reload on the phone as well.
    for d in page_order()[:3]:
        button = phone.locator(f'#dim-{d["key"]} .lvl[data-level="3"]')
        button.scroll_into_view_if_needed()
        button.tap()
    phone.reload()
    assert wait_for_image(phone) == first
    expect(phone.locator("#answered")).to_have_text(f"3 of {len(page_order())} answered")
    assert kept(phone, project, users["rita"], first.assignment)["answers"]


def test_training_feedback_links_to_the_guide(page, guided_photos):
    project, images, users = guided_photos
    services.add_member(project, "cand", "annotator", password="pw-123456")
    login(page, "cand")
    shown = open_project(page, project)
    assert shown.image == images[0].pk  # the training item comes first
    for i, _ in enumerate(page_order()):
        page.keyboard.press("4" if i == 0 else "2")  # the reference is "poor" everywhere
    page.keyboard.press("Enter")
    table = page.locator("#overlay-feedback")
    expect(table.locator("tr.is-off")).to_have_count(1)
    expect(table.locator("tr.is-match .guide-link")).to_have_count(0)
    table.locator("tr.is-off .guide-link").click()
    dialog = page.locator("#guide-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("h2")).to_have_text(page_order()[0]["name"])
    page.keyboard.press("Escape")
    expect(table).to_be_visible()


def test_a_manager_edits_a_guide_and_pins_an_example_on_the_page(page, guided_photos):
    project, images, _ = guided_photos
    login(page, "boss")
    page.goto(f"/projects/{project.pk}/guides/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    expect(page.locator(".guide-card")).to_have_count(len(page_order()))
    looks = page.locator("#guide-looks")
    expect(looks.get_by_label("Definition")).to_have_value(
        "Grooming and expression, as the house style says."
    )
    looks.get_by_label("Definition").fill("Expression and grooming.")
    looks.get_by_label("5 excellent").fill("Cover of a magazine.")
    looks.get_by_role("button", name="Save Looks").click()
    expect(page.locator("#message")).to_contain_text("Saved the guide to Looks.")
    project.refresh_from_db()
    assert project.dimension_guides["looks"] == {
        "definition": "Expression and grooming.", "levels": {"excellent": "Cover of a magazine."}
    }
    page.get_by_role("button", name="Pin an example of good Outfit").click()
    page.locator(f'#candidates button[data-image="{images[0].pk}"]').click()
    expect(page.locator("#message")).to_contain_text("Example pinned.")
    assert GuideExample.objects.filter(project=project, dimension="outfit", level="good").count()
    expect(page.locator("#guide-outfit .example-thumb img")).to_have_count(1)


def test_the_guides_page_fits_a_phone(phone, guided_photos):
    project, images, _ = guided_photos
    login(phone, "boss")
    phone.goto(f"/projects/{project.pk}/guides/")
    expect(phone.locator("body[data-ready=true]")).to_be_attached()
    assert_fits(phone, "the guides page")
    phone.get_by_role("button", name="Pin an example of bad Looks").tap()
    expect(phone.locator(f'#candidates button[data-image="{images[0].pk}"]')).to_be_visible()
    assert_fits(phone, "the guides page's pin dialog")
    box = phone.locator("#pin-dialog").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390.5, box


def test_a_failed_test_links_to_the_guides_where_the_candidate_missed(page, guided_photos):
    project, images, _ = guided_photos
    reference = full_scores(2)  # "poor" everywhere
    set_references(project, [(images[1], reference)], ItemKind.TEST)
    services.add_member(project, "cand", "annotator", password="pw-123456")
    login(page, "cand")
    open_project(page, project)
    for _ in page_order():
        page.keyboard.press("2")  # training: right everywhere
    page.keyboard.press("Enter")
    page.locator("#overlay-actions button").click()  # past the training feedback
    wait_for_image(page)
    for i, _ in enumerate(page_order()):
        page.keyboard.press("5" if i == 0 else "2")  # the test: far off on the first only
    page.keyboard.press("Enter")
    expect(page.locator("#overlay-title")).to_have_text("Could not load the next image")
    first = page_order()[0]
    links = page.locator(".guide-missed .guide-link")
    expect(links).to_have_count(1)
    expect(links).to_have_text(first["name"])
    links.click()
    expect(page.locator("#guide-dialog h2")).to_have_text(first["name"])


def test_answers_of_an_ended_lease_are_not_restored(page, guided_photos):
    project, _, users = guided_photos
    login(page, "rita")
    first = open_project(page, project)
    page.keyboard.press("3")
    key = f"hb.answers.{users['rita'].pk}.{project.pk}.{first.assignment}"
    # As if the lease had ended while the page was closed.
    page.evaluate(
        """k => { const v = JSON.parse(localStorage.getItem(k)); v.expiresAt = 1;
                  localStorage.setItem(k, JSON.stringify(v)); }""",
        key,
    )
    page.reload()
    assert wait_for_image(page) == first
    assert answered(page) == {}
    assert page.evaluate("k => localStorage.getItem(k)", key) is None
