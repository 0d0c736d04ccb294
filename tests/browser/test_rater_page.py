"""The rater page in real Chromium: log in, open a project, rate with the keyboard only.

Run with PostgreSQL (`make test`); pytest-django's live_server serves the app in a thread and
each test gets a transactional database. The dimension order, levels and reasons the tests
expect come from the same code the page is rendered from (the standard module via the view),
never from a list spelled out here.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assignment, Rating, Skip, SkipReason
from annotation.views import dimension_groups
from humanbeauty.standard import LEVELS, level_to_score

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

SCREENSHOT = os.environ.get("RATE_SCREENSHOT", "/tmp/rate_page.png")


@dataclass(frozen=True)
class Shown:
    image: int
    assignment: int


def page_order() -> list[dict]:
    """The dimensions in the order the page lists them (and the arrow keys walk them)."""
    return [d for g in dimension_groups() for d in g["dimensions"]]


def wait_for_image(page, other_than: Shown | None = None) -> Shown:
    """Wait until an image is on screen (a different one than `other_than`) and loaded."""
    old = str(other_than.assignment) if other_than else ""
    page.wait_for_function(
        """old => {
            const s = document.getElementById('stage');
            const img = s.querySelector('img.photo');
            return s.dataset.assignment && s.dataset.assignment !== old && img && img.complete
                && img.naturalWidth > 0;
        }""",
        arg=old,
    )
    data = page.eval_on_selector("#stage", "s => [s.dataset.imageId, s.dataset.assignment]")
    return Shown(int(data[0]), int(data[1]))


def current_key(page) -> str:
    return page.eval_on_selector(".dim.is-current", "r => r.dataset.key")


def open_project(page, project) -> Shown:
    page.goto(f"/projects/{project.pk}/rate/")
    return wait_for_image(page)


def test_rate_an_image_with_the_keyboard_only(page, photo_project):
    project, _, users = photo_project(4)
    login(page, "rita")

    # Home lists the project with its progress; its link has the focus: Enter opens it.
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()
    expect(page.locator(".project-card")).to_contain_text(project.name)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/projects/{project.pk}/rate/$"))
    first = wait_for_image(page)
    assert Assignment.objects.get(pk=first.assignment).rater == users["rita"]

    # One key per dimension, in page order: a mix of levels, and N where the standard allows.
    order = page_order()
    groups = [d["group"] for d in order]
    keys, expected = [], {}
    for i, d in enumerate(order):
        first_nullable_of_group = (
            d["nullable"] and not d["children"] and (i == 0 or groups[i - 1] != d["group"])
        )
        key = "n" if first_nullable_of_group else str(i % len(LEVELS) + 1)
        keys.append(key)
        expected[d["key"]] = None if key == "n" else level_to_score(int(key))
    assert "n" in keys and len(set(keys) - {"n"}) == len(LEVELS)

    assert current_key(page) == order[0]["key"]
    for key in keys[:7]:
        page.keyboard.press(key)
    # Each choice shows as pressed, and the focus moved on to the next unanswered dimension.
    for d, key in zip(order[:7], keys[:7], strict=True):
        level = "na" if key == "n" else key
        expect(page.locator(f'#dim-{d["key"]} .lvl[data-level="{level}"]')).to_have_attribute(
            "aria-pressed", "true"
        )
    assert current_key(page) == order[7]["key"]
    expect(page.locator("#answered")).to_have_text(f"7 of {len(order)} answered")
    expect(page.locator("#lease-left")).to_have_text(re.compile(r"^\d+:\d\d$"))
    page.screenshot(path=SCREENSHOT)

    for key in keys[7:]:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    second = wait_for_image(page, other_than=first)
    assert second.image != first.image

    rating = Rating.objects.get(assignment_id=first.assignment)
    assert rating.rater == users["rita"] and rating.image_id == first.image
    assert rating.scores == expected
    assert Rating.objects.count() == 1
    expect(page.locator("#p-today")).to_have_text("1")
    # The image that came next was preloaded: it is the lease taken while rating the first.
    preloaded = Assignment.objects.get(pk=second.assignment)
    assert preloaded.created_at < rating.created_at


def test_hidden_face_missing_dimensions_navigation_and_nothing_left(page, photo_project):
    project, _, _ = photo_project(2)
    login(page, "rita")
    first = open_project(page, project)
    order = page_order()
    keys = [d["key"] for d in order]
    face = next(d for d in order if d["children"] and d["nullable"])
    fixed = next(d for d in order if not d["nullable"])

    # Arrows and Tab walk the dimensions.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert current_key(page) == keys[2]
    page.keyboard.press("ArrowUp")
    assert current_key(page) == keys[1]
    page.keyboard.press("Tab")
    assert current_key(page) == keys[2]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert current_key(page) == keys[0]

    # N on the face aggregate: the face is hidden, so every facial feature is N too.
    for _ in range(keys.index(face["key"])):
        page.keyboard.press("ArrowDown")
    assert current_key(page) == face["key"]
    page.keyboard.press("n")
    for k in [face["key"], *face["children"]]:
        expect(page.locator(f"#dim-{k} .lvl-na")).to_have_attribute("aria-pressed", "true")
    answered = 1 + len(face["children"])
    expect(page.locator("#answered")).to_have_text(f"{answered} of {len(order)} answered")

    # Enter with dimensions missing: a message names them, nothing is written.
    page.keyboard.press("Enter")
    message = page.locator("#message")
    expect(message).to_be_visible()
    expect(message).to_contain_text(f"{len(order) - answered} dimensions still need an answer")
    first_missing = order[keys.index(face["key"]) + 1]
    expect(message).to_contain_text(first_missing["name"])
    assert current_key(page) == first_missing["key"]
    expect(page.locator(".dim.is-missing")).to_have_count(len(order) - answered)
    assert not Rating.objects.exists()
    assert wait_for_image(page).assignment == first.assignment

    # N where the standard does not allow it is refused with a message.
    for _ in range(keys.index(fixed["key"]) - keys.index(current_key(page))):
        page.keyboard.press("ArrowDown")
    assert current_key(page) == fixed["key"]
    page.keyboard.press("n")
    expect(message).to_contain_text("cannot be")
    expect(page.locator(f"#dim-{fixed['key']}")).not_to_have_class(re.compile("is-answered"))

    # Answer the rest (the focus jumps to each unanswered one) and submit.
    for _ in range(len(order) - answered):
        page.keyboard.press("3")
    page.keyboard.press("Enter")
    second = wait_for_image(page, other_than=first)
    rating = Rating.objects.get(assignment_id=first.assignment)
    scores = rating.scores
    assert all(scores[k] is None for k in [face["key"], *face["children"]])
    others = [k for k in keys if k not in {face["key"], *face["children"]}]
    assert all(scores[k] == level_to_score(3) for k in others)

    # Skip the last image: nothing is left, and the page says so.
    page.keyboard.press("s")
    expect(page.locator("#overlay")).to_be_visible()
    expect(page.locator("#overlay-title")).to_have_text("Nothing left to rate")
    assert Skip.objects.get(assignment_id=second.assignment).reason == SkipReason.SKIP
    page.screenshot(path=SCREENSHOT.replace(".png", "_empty.png"))


def test_skip_and_flag_with_the_keyboard(page, photo_project):
    project, _, _ = photo_project(6)
    reasons = [v for v, _ in SkipReason.choices if v != SkipReason.SKIP]
    login(page, "rita")
    a = open_project(page, project)

    # S skips at once when nothing was answered yet.
    page.keyboard.press("s")
    b = wait_for_image(page, other_than=a)
    assert Skip.objects.get(assignment_id=a.assignment).reason == SkipReason.SKIP

    # F opens the flag menu; a number picks a reason, Enter flags.
    page.keyboard.press("f")
    dialog = page.locator("#flag-dialog")
    expect(dialog).to_be_visible()
    page.keyboard.press("2")
    page.screenshot(path=SCREENSHOT.replace(".png", "_flag.png"))
    page.keyboard.press("Enter")
    c = wait_for_image(page, other_than=b)
    expect(dialog).to_be_hidden()
    flag = Skip.objects.get(assignment_id=b.assignment)
    assert flag.reason == reasons[1] and flag.text == ""

    # 'other' needs a text: Enter without one is refused in the dialog.
    page.keyboard.press("f")
    page.keyboard.press("ArrowUp")  # wraps round to the last reason, 'other'
    expect(page.locator("#flag-text")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#flag-error")).to_be_visible()
    assert not Skip.objects.filter(assignment_id=c.assignment).exists()
    page.locator("#flag-text").focus()
    page.keyboard.type("watermark over the face")
    page.keyboard.press("Enter")
    d = wait_for_image(page, other_than=c)
    other = Skip.objects.get(assignment_id=c.assignment)
    assert other.reason == reasons[-1] == SkipReason.OTHER
    assert other.text == "watermark over the face"

    # Escape closes the flag menu without flagging.
    page.keyboard.press("f")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # With answers on screen, S asks first; Escape keeps them, S again confirms.
    page.keyboard.press("4")
    page.keyboard.press("s")
    expect(page.locator("#skip-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#skip-dialog")).to_be_hidden()
    assert not Skip.objects.filter(assignment_id=d.assignment).exists()
    page.keyboard.press("s")
    page.keyboard.press("s")
    e = wait_for_image(page, other_than=d)
    assert Skip.objects.get(assignment_id=d.assignment).reason == SkipReason.SKIP
    assert e.image not in {a.image, b.image, c.image, d.image}
    assert not Rating.objects.exists()


def test_page_never_asks_for_other_raters_ratings(page, photo_project):
    from tests.conftest import full_scores

    project, _, users = photo_project(3, raters=("rita", "zed_other"))
    # Another rater has rated the image rita will get first (started images come first).
    lease = services.next_task(project, users["zed_other"])
    services.submit_rating(lease.pk, users["zed_other"], full_scores(1), uuid.uuid4())

    requests = []
    page.on("request", lambda r: requests.append(r))
    login(page, "rita")
    first = open_project(page, project)
    assert first.image == lease.image_id

    page.keyboard.press("g")  # guidelines, from the API
    expect(page.locator("#guidelines")).to_be_visible()
    expect(page.locator("#guidelines-content")).to_contain_text("How to rate")
    page.keyboard.press("g")
    expect(page.locator("#guidelines")).to_be_hidden()
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    for _ in page_order():
        page.keyboard.press("5")
    page.keyboard.press("Enter")
    wait_for_image(page, other_than=first)
    assert Rating.objects.filter(rater=users["rita"]).count() == 1

    allowed = [
        r"/accounts/login/",
        r"/",
        rf"/projects/{project.pk}/rate/",
        r"/static/.+",
        rf"/api/projects/{project.pk}/",
        rf"/api/projects/{project.pk}/next/",
        r"/api/assignments/\d+/(rating|skip)/",
        r"/media/images/\d+/",
    ]
    seen = []
    for r in requests:
        path = re.sub(r"^https?://[^/]+", "", r.url).split("?")[0]
        seen.append(f"{r.method} {path}")
        assert any(re.fullmatch(p, path) for p in allowed), f"unexpected request {r.method} {path}"
        assert "ratings" not in path
        response = r.response()
        if response and "json" in (response.headers.get("content-type") or ""):
            assert "zed_other" not in response.text()
    assert f"GET /api/projects/{project.pk}/next/" in seen
    assert "zed_other" not in page.content()


def test_mouse_only_and_lease_timer(page, photo_project):
    project, _, _ = photo_project(4)
    project.lease_minutes = 1  # so the timer is in its last two minutes: shown as a warning
    project.save(update_fields=["lease_minutes"])
    reasons = [v for v, _ in SkipReason.choices if v != SkipReason.SKIP]
    login(page, "rita")
    page.get_by_role("link", name=f"Rate images in {project.name}").click()
    first = wait_for_image(page)
    expect(page.locator("#lease")).to_have_class(re.compile("is-warn"))
    expect(page.locator("#lease-left")).to_have_text(re.compile(r"^0:[0-5]\d$"))

    # Zoom with the buttons and the wheel, then fit again.
    zoom = page.locator("#zoom-level")
    page.get_by_role("button", name="Zoom in (plus)").click()
    expect(zoom).not_to_contain_text("Fit")
    page.get_by_role("button", name="Reset view, fit the image (0)").click()
    expect(zoom).to_contain_text("Fit")

    order = page_order()
    for i, d in enumerate(order):
        page.get_by_role("button", name=f"{d['name']}: {LEVELS[i % len(LEVELS)]} (").click()
    page.get_by_role("button", name="Submit").click()
    second = wait_for_image(page, other_than=first)
    rating = Rating.objects.get(assignment_id=first.assignment)
    assert rating.scores == {
        d["key"]: level_to_score(i % len(LEVELS) + 1) for i, d in enumerate(order)
    }

    page.get_by_role("button", name="Flag").click()
    page.get_by_label(SkipReason(reasons[0]).label).check()
    page.locator("#flag-confirm").click()
    wait_for_image(page, other_than=second)
    assert Skip.objects.get(assignment_id=second.assignment).reason == reasons[0]
