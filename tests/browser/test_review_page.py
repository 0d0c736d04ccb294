"""The review page in real Chromium: the queue of disputed images, decisions by keyboard and mouse.

The project is rated by simulated raters (careful, biased, random); the statistics refresh
queues the images whose raters disagree. Which columns count as disputed is worked out here
from the review entries the API serves, with the project's threshold.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from annotation import selectors
from annotation.models import (
    AuditEvent,
    ConsensusLabel,
    ProjectImage,
    ReviewItem,
    ReviewStatus,
)
from annotation.views import dimension_groups
from humanbeauty.standard import DIMENSION_KEYS, LEVELS, level_to_score

from .conftest import login
from .test_dashboard import build_rated_project

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

SCREENSHOT = os.environ.get("REVIEW_SCREENSHOT", "/tmp/review_page.png")
FINAL_SCREENSHOT = os.environ.get("REVIEW_FINAL_SCREENSHOT", "/tmp/review_final.png")


def open_reviews(project) -> list[dict]:
    return selectors.review_entries(selectors.review_queue(project, ReviewStatus.OPEN))


def disputed_keys(entry: dict, threshold: float) -> set[str]:
    out = set()
    for key, c in (entry["consensus"] or {}).items():
        if c and c["n"] >= 2 and c["std"] > threshold:
            out.add(key)
    out |= {r.split(":", 1)[1] for r in entry["reasons"] if r.startswith("inconsistent:")}
    return out


def shown_review(page) -> int:
    return int(page.eval_on_selector("#stage", "s => s.dataset.reviewId"))


def wait_for_item(page, review_id: int) -> None:
    page.wait_for_function(
        """id => {
            const s = document.getElementById('stage');
            const img = s.querySelector('img.review-photo');
            return s.dataset.reviewId === String(id) && img && img.complete && img.naturalWidth > 0;
        }""",
        arg=review_id,
    )


def open_review_page(page, project) -> list[dict]:
    queue = open_reviews(project)
    assert len(queue) >= 2, "the simulated raters should leave disputed images"
    login(page, "rev")
    card = page.locator(".project-card", has_text=project.name)
    link = card.get_by_role("link", name=re.compile("^Review queue"))
    expect(link.locator(".count-pill")).to_have_text(str(len(queue)))
    link.click()
    page.wait_for_url(re.compile(rf"/projects/{project.pk}/review/$"))
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    wait_for_item(page, queue[0]["id"])
    return queue


def test_the_review_page_shows_a_disputed_image_and_excludes_it_by_keyboard(page, photo_project):
    project, users = build_rated_project(photo_project, n_images=8, screening="none")
    queue = open_review_page(page, project)
    first = queue[0]

    # The image, why it is here, every rater's scores side by side and the consensus row.
    expect(page.locator("#item-title")).to_have_text(f"Image #{first['image']}")
    expect(page.locator("#item-position")).to_have_text(f"1 of {len(queue)} open")
    expect(page.locator("#q-open")).to_have_text(str(len(queue)))
    assert "disagreement" in first["reasons"]
    expect(page.locator("#reasons .reason-chip").first).to_have_text("Disagreement")
    order = [d for g in dimension_groups() for d in g["dimensions"]]
    rows = page.locator("#scores tbody tr.dim-row")
    expect(rows.locator("th")).to_have_text([re.compile("^" + re.escape(d["name"])) for d in order])
    expect(page.locator("#scores thead th[data-rater]")).to_have_text(
        [re.compile("^" + re.escape(r["rater"])) for r in first["ratings"]]
    )
    looks = page.locator('#scores tr[data-key="looks"] td')
    expect(looks).to_have_count(len(first["ratings"]) + 1)  # the raters, then the consensus
    for i, rating in enumerate(first["ratings"]):
        expect(looks.nth(i)).to_have_text(f"{rating['scores']['looks']:.2f}")
    consensus = first["consensus"]["looks"]
    expect(looks.last).to_have_text(f"{consensus['mos']:.2f}±{consensus['std']:.2f}")
    expect(page.locator("#scores td.consensus-cell .chip")).to_have_count(len(DIMENSION_KEYS))
    # The disputed dimensions are highlighted, and only they.
    disputed = disputed_keys(first, project.disagreement_threshold)
    assert disputed and len(disputed) < len(DIMENSION_KEYS)
    highlighted = page.locator("#scores tr.dim-row.is-disputed").evaluate_all(
        "trs => trs.map(tr => tr.dataset.key)"
    )
    assert set(highlighted) == disputed
    page.screenshot(path=SCREENSHOT)

    # J / K walk the queue.
    page.keyboard.press("j")
    wait_for_item(page, queue[1]["id"])
    expect(page.locator("#item-position")).to_have_text(f"2 of {len(queue)} open")
    page.keyboard.press("k")
    wait_for_item(page, first["id"])

    # X asks first; Enter confirms; the next item comes up.
    page.keyboard.press("x")
    dialog = page.locator("#exclude-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    wait_for_item(page, queue[1]["id"])
    expect(page.locator("#q-open")).to_have_text(str(len(queue) - 1))
    expect(page.locator("#q-done")).to_have_text("1")

    item = ProjectImage.objects.get(project=project, image_id=first["image"])
    assert item.excluded
    review = ReviewItem.objects.get(pk=first["id"])
    assert review.status == ReviewStatus.RESOLVED and review.decision == "exclude"
    assert review.reviewer == users["rev"]
    event = AuditEvent.objects.get(project=project, action="review_exclude")
    assert event.actor == users["rev"] and event.image_id == first["image"]


def test_accept_with_a_note_and_set_final_scores_with_the_level_widgets(page, photo_project):
    project, users = build_rated_project(photo_project, n_images=8, screening="none")
    queue = open_review_page(page, project)

    # E focuses the note (typing there is not a shortcut), Esc leaves it, A accepts.
    page.keyboard.press("e")
    expect(page.locator("#note")).to_be_focused()
    page.keyboard.type("a fair consensus")
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    wait_for_item(page, queue[1]["id"])
    accepted = ReviewItem.objects.get(pk=queue[0]["id"])
    assert accepted.decision == "accept" and accepted.note == "a fair consensus"
    event = AuditEvent.objects.get(project=project, action="review_accept")
    assert event.details["note"] == "a fair consensus"

    # Set final scores with the mouse: prefilled from the consensus levels.
    second = queue[1]
    page.get_by_role("button", name=re.compile("^Set final")).click()
    dialog = page.locator("#final-dialog")
    expect(dialog).to_be_visible()
    for key in DIMENSION_KEYS:
        mos = second["consensus"][key]["mos"]
        level = min(int(mos / 0.2), len(LEVELS) - 1) + 1
        expect(dialog.locator(f'#final-{key} .lvl[aria-pressed="true"]')).to_have_attribute(
            "data-level", str(level)
        )
    dialog.locator('#final-looks .lvl[data-level="5"]').click()
    dialog.locator('#final-facial_aesthetic .lvl[data-level="na"]').click()
    # A hidden face hides its features too; a level is needed again on none of them.
    expect(dialog.locator('#final-facial_brightness .lvl[data-level="na"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    dialog.screenshot(path=FINAL_SCREENSHOT)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#q-done")).to_have_text("2")
    label = ConsensusLabel.objects.get(project=project, image_id=second["image"])
    assert label.final["looks"] == level_to_score(5)
    assert label.final["facial_aesthetic"] is None and label.final["facial_brightness"] is None
    assert ReviewItem.objects.get(pk=second["id"]).decision == "set_final"
    assert AuditEvent.objects.filter(project=project, action="review_set_final").count() == 1


def test_annotators_get_403_on_the_review_page_and_its_api(page, photo_project):
    project, _ = build_rated_project(photo_project, n_images=4, threshold=0.0, screening="none")
    review = ReviewItem.objects.filter(project=project).first()
    login(page, "ana")
    assert page.goto(f"/projects/{project.pk}/review/").status == 403
    assert page.request.get(f"/api/projects/{project.pk}/reviews/").status == 403
    token = page.context.cookies()
    csrf = next(c["value"] for c in token if c["name"] == "csrftoken")
    response = page.request.post(
        f"/api/reviews/{review.pk}/decision/",
        data={"decision": "exclude"},
        headers={"X-CSRFToken": csrf},
    )
    assert response.status == 403
    assert not ProjectImage.objects.get(project=project, image_id=review.image_id).excluded


@pytest.mark.parametrize("width", [1280, 768])
def test_the_review_page_shows_the_consensus_of_every_rating_listed(page, photo_project, width):
    """Issue #10: an image rated 0.50 and then 0.70 once showed "0.50 ±0.00" (a consensus
    computed before the second rating). The page shows 0.60 ±0.14, and n=1 for one rating."""
    from django.contrib.auth import get_user_model

    from annotation import services
    from annotation.services.quality import refresh_statistics
    from tests.conftest import full_scores, new_request_id

    from .conftest import PASSWORD

    project, images, users = photo_project(2, raters=("r1", "r2", "r3"), overlap=3)
    services.add_member(project, "rev", "reviewer", password=PASSWORD)
    users["rev"] = get_user_model().objects.get(username="rev")
    for _ in images:
        task = services.next_task(project, users["r1"])
        services.submit_rating(task.pk, users["r1"], full_scores(looks=0.5), new_request_id())
    refresh_statistics(project)  # the last refresh anyone ran
    for _ in images:  # r3 flags both images: they are queued for review
        flag = services.next_task(project, users["r3"])
        services.skip_assignment(flag.pk, users["r3"], "broken")
    task = services.next_task(project, users["r2"])  # then r2 rates one of them 0.70
    services.submit_rating(task.pk, users["r2"], full_scores(looks=0.7), new_request_id())
    twice = task.image_id

    page.set_viewport_size({"width": width, "height": 900})
    login(page, "rev")
    page.goto(f"/projects/{project.pk}/review/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    queue = open_reviews(project)
    for entry in queue:
        wait_for_item(page, entry["id"])
        looks = page.locator('#scores tr[data-key="looks"] td.consensus-cell')
        if entry["image"] == twice:
            expect(looks).to_have_text("0.60±0.14")
        else:
            expect(looks).to_have_text("0.50n=1")
        expect(page.locator("#scores thead th.consensus-col .sub")).to_have_text("mean ± std")
        assert page.locator("#scores thead th.consensus-col").get_attribute("data-computed-at")
        looks.scroll_into_view_if_needed()
        expect(looks).to_be_visible()
        page.keyboard.press("j")
