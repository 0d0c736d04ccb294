"""Phones and tablets (issue #14): every page fits a 390 px phone and a 768 px tablet without a
horizontal page scroll, and a rater finishes an image on either by tapping (answer buttons
sized for a finger on touch screens).

A page fits when document.documentElement.scrollWidth <= the viewport's width; wide tables
scroll inside their own box (.table-wrap), which the check allows. When a page overflows, the
failure names the elements that stick out past the right edge.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from annotation import services
from annotation.models import Assignment, Rating
from curation.models import (
    Decision,
    DecisionKind,
    FilterJob,
    Image,
    JobStatus,
    Source,
    SourceItem,
)
from humanbeauty.standard import LEVELS, level_to_score
from modeling.models import ModelVersion, Release, ReleaseStatus
from tests.conftest import make_user

from .conftest import PASSWORD, login
from .test_dashboard import build_rated_project
from .test_rater_page import page_order, wait_for_image

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

SCREENS = Path(os.environ.get("SMALL_SCREENS", "/tmp/small_screens"))
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 768, "height": 1024}

# The elements that stick out past the viewport's right edge, outside any box that scrolls on
# its own: what makes the page scroll sideways (the body's overflow is the viewport's).
STICKING_OUT = """() => {
    const w = document.documentElement.clientWidth;
    const scrolls = el => {
        for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
            const o = getComputedStyle(p).overflowX;
            if (o === 'auto' || o === 'scroll' || o === 'hidden' || o === 'clip') return true;
        }
        return false;
    };
    const name = el => `${el.tagName.toLowerCase()}#${el.id}.${[...el.classList].join('.')}`
        + ` ${Math.round(el.getBoundingClientRect().left)}..`
        + `${Math.round(el.getBoundingClientRect().right)}`;
    const out = [];
    for (const el of document.body.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width && r.right > w + 0.5 && !scrolls(el)) out.push(name(el));
    }
    // The outermost one's ancestors: whose width let it grow.
    const first = [...document.body.querySelectorAll('*')].find(
        el => el.getBoundingClientRect().right > w + 0.5 && !scrolls(el));
    const chain = [];
    for (let p = first && first.parentElement; p; p = p.parentElement) chain.push(name(p));
    return {sticking_out: out.slice(0, 12), inside: chain.slice(0, 6)};
}"""


def assert_fits(page, what: str) -> None:
    width = page.viewport_size["width"]
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{what.replace(' ', '_')}-{width}.png"), full_page=True)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width > width:
        raise AssertionError(
            f"{what} at {width} px is {scroll_width} px wide: {page.evaluate(STICKING_OUT)}"
        )


def touch_context(browser, live_server, viewport):
    context = browser.new_context(
        viewport=viewport,
        base_url=live_server.url,
        has_touch=True,
        is_mobile=True,
        device_scale_factor=2,
    )
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def mobile(browser, live_server):
    """A page in a phone's browser context (touch, mobile viewport); JavaScript errors fail."""
    contexts = []

    def open_page(viewport=PHONE):
        context = touch_context(browser, live_server, viewport)
        contexts.append(context)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.js_errors = errors
        return pg

    yield open_page
    for context in contexts:
        for pg in context.pages:
            pg.wait_for_load_state("networkidle")
            assert not pg.js_errors, f"JavaScript errors on the page: {pg.js_errors}"
        context.close()


@pytest.mark.parametrize("viewport", [PHONE, TABLET], ids=["phone", "tablet"])
def test_every_page_fits_the_screen(mobile, photo_project, viewport):
    project, users = build_rated_project(photo_project, n_images=8, screening="none")
    services.add_member(project, "rita", "annotator", password=PASSWORD)
    other, _ = services.get_or_create_project("Phone portraits", overlap=1)
    services.add_images(other, Image.objects.all())
    services.add_member(other, "rita", "annotator", password=PASSWORD)
    admin = make_user("root", "admin", password=PASSWORD)
    source = Source.objects.create(name="Phone shots", kind="folder", location="/data/phone")
    job = FilterJob.objects.create(
        source=source, status=JobStatus.DONE, created_by=admin, progress={"total": 2}
    )
    for i, image in enumerate(Image.objects.order_by("pk")[:2]):  # rows for the wide tables
        item = SourceItem.objects.create(
            source=source,
            path=f"people/outdoors/a-rather-long-folder-name/photo_{i:03d}.jpg",
            image=image,
        )
        Decision.objects.create(
            job=job,
            item=item,
            decision=DecisionKind.REJECTED if i else DecisionKind.ACCEPTED,
            reasons=["too_small"] if i else [],
            measurements={"width": 512, "height": 512},
        )
    release = Release.objects.create(
        name="portraits-phone-check",
        version="2026.12.1",
        status=ReleaseStatus.READY,
        out_dir="/data/releases/portraits-phone-check/2026.12.1",
        counts={"images": 8, "splits": {"train": 6, "val": 1, "test": 1}},
    )
    ModelVersion.objects.create(
        version="haex-phone-check-2026-12",
        backbone="tiny",
        release=release,
        checkpoint_path="/data/models/haex-phone-check-2026-12",
        is_active=True,
    )

    page = mobile(viewport)
    page.goto("/accounts/login/")
    assert_fits(page, "the login page")

    login(page, "rita")
    expect(page.get_by_role("heading", name="Your projects")).to_be_visible()
    assert_fits(page, "the home page")
    page.goto(f"/projects/{other.pk}/rate/")
    wait_for_image(page)
    assert_fits(page, "the rater page")
    box = page.locator("#stage img.photo").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 0.5, box
    for button in ("#btn-submit", "#btn-skip", "#btn-flag"):
        box = page.locator(button).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (button, box)

    page.context.clear_cookies()
    login(page, "root")
    pages = {
        "the dashboard": f"/projects/{project.pk}/dashboard/",
        "the review page": f"/projects/{project.pk}/review/",
    }
    for what, url in pages.items():
        page.goto(url)
        expect(page.locator("body[data-ready=true]")).to_be_attached()
        assert_fits(page, what)
    pages = {
        "the curation page": "/curation/",
        "the source page": f"/curation/sources/{source.pk}/",
        "the job page": f"/curation/jobs/{job.pk}/",
        "the models page": "/models/",
        "the releases page": "/releases/",
        "the members page": f"/projects/{project.pk}/members/",
        "the guides page": f"/projects/{project.pk}/guides/",
    }
    for what, url in pages.items():
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert_fits(page, what)


@pytest.mark.parametrize("viewport", [PHONE, TABLET], ids=["phone", "tablet"])
def test_a_rater_finishes_an_image_by_tapping(mobile, photo_project, viewport):
    project, _, users = photo_project(3, raters=("rita",))
    page = mobile(viewport)
    login(page, "rita")
    page.get_by_role("link", name=re.compile(re.escape(project.name))).first.tap()
    page.wait_for_url(re.compile(rf"/projects/{project.pk}/rate/$"))
    first = wait_for_image(page)
    assert_fits(page, "the rater page")

    # Tap a level (or N) on every dimension, in page order; each tap is pressed at once.
    order = page_order()
    expected = {}
    for i, d in enumerate(order):
        use_na = d["nullable"] and not d["children"] and i % 3 == 0
        level = "na" if use_na else str(i % len(LEVELS) + 1)
        button = page.locator(f'#dim-{d["key"]} .lvl[data-level="{level}"]')
        button.scroll_into_view_if_needed()
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (d["key"], box)
        assert box["width"] >= 34 and box["height"] >= 34, ("a finger's size", d["key"], box)
        button.tap()
        expect(button).to_have_attribute("aria-pressed", "true")
        expected[d["key"]] = None if use_na else level_to_score(int(level))
    assert None in expected.values()
    expect(page.locator("#answered")).to_have_text(f"{len(order)} of {len(order)} answered")

    submit = page.locator("#btn-submit")
    submit.scroll_into_view_if_needed()
    submit.tap()
    second = wait_for_image(page, other_than=first)
    assert second.image != first.image

    rating = Rating.objects.get(assignment_id=first.assignment)
    assert rating.rater == users["rita"] and rating.image_id == first.image
    assert rating.scores == expected
    assert Rating.objects.count() == 1
    assert Assignment.objects.get(pk=second.assignment).rater == users["rita"]


def test_a_swipe_over_the_photo_scrolls_the_phone_page_to_the_answers(mobile, photo_project):
    """The photo fills most of a phone's screen: a swipe over it scrolls the page (a drag pans
    the photo only once zoomed in)."""
    project, _, _ = photo_project(2, raters=("rita",))
    page = mobile(PHONE)
    login(page, "rita")
    page.goto(f"/projects/{project.pk}/rate/")
    wait_for_image(page)
    assert page.evaluate("window.scrollY") == 0
    box = page.locator("#stage").bounding_box()
    cdp = page.context.new_cdp_session(page)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.8
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 16):
        cdp.send(
            "Input.dispatchTouchEvent",
            {"type": "touchMove", "touchPoints": [{"x": x, "y": y - step * 20}]},
        )
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_function("() => window.scrollY > 100")
