"""A candidate qualifies in the browser: training feedback next to the reference, then test."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation.models import ItemKind, Membership, RaterStatus
from annotation.services.quality import set_references
from humanbeauty.standard import DIMENSION_KEYS, level_to_score

from .conftest import login
from .test_rater_page import open_project, page_order, wait_for_image

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]


def test_training_feedback_then_test_then_production(page, photo_project):
    project, images, users = photo_project(4, raters=("cand",))
    reference = dict.fromkeys(DIMENSION_KEYS, level_to_score(4))  # "good" everywhere
    set_references(project, [(images[0], reference)], ItemKind.TRAINING)
    set_references(project, [(images[1], reference)], ItemKind.TEST)
    assert Membership.objects.get(user=users["cand"]).status == RaterStatus.CANDIDATE

    login(page, "cand")
    shown = open_project(page, project)
    assert shown.image == images[0].pk
    expect(page.locator("#stage-info")).to_contain_text("Qualification: training")
    # Answer "good" everywhere except the first dimension, "poor".
    for i, _ in enumerate(page_order()):
        page.keyboard.press("2" if i == 0 else "4")
    page.keyboard.press("Enter")
    table = page.locator("#overlay-feedback")
    expect(table).to_be_visible()
    expect(table.locator("tr.is-off")).to_have_count(1)
    expect(table.locator("tr.is-match")).to_have_count(len(DIMENSION_KEYS) - 1)
    expect(table.locator("tr.is-off td").nth(1)).to_have_text("poor")
    expect(table.locator("tr.is-off td").nth(2)).to_have_text("good")
    page.keyboard.press("Enter")  # Continue has the focus
    second = wait_for_image(page, other_than=shown)
    assert second.image == images[1].pk
    expect(page.locator("#stage-info")).to_contain_text("Qualification: test")
    for _ in page_order():
        page.keyboard.press("4")
    page.keyboard.press("Enter")
    third = wait_for_image(page, other_than=second)
    expect(page.locator("#overlay-feedback")).to_have_count(0)  # no feedback in the test
    assert third.image in {images[2].pk, images[3].pk}
    expect(page.locator("#stage-info")).not_to_contain_text("Qualification")
    assert Membership.objects.get(user=users["cand"]).status == RaterStatus.CERTIFIED
