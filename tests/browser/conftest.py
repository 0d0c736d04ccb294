"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, real photos."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make while it
# runs are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "pw-123456"
GUIDELINES = """\
# How to rate

Rate what you see on the **12 dimensions**. Use **N** when a dimension cannot be judged
(a face hidden by a back view or a mask). Flag images that show no person.
"""


def write_photos(folder: Path, n: int) -> None:
    """`n` distinct real photos of people (scikit-image's astronaut and cameraman, varied)."""
    from PIL import Image, ImageEnhance, ImageOps
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    bases = [Image.fromarray(data.astronaut()), Image.fromarray(data.camera()).convert("RGB")]
    edits = [
        lambda im: im,
        ImageOps.mirror,
        lambda im: im.crop((im.width // 8, 0, im.width - im.width // 8, im.height)),
        lambda im: ImageEnhance.Brightness(im).enhance(0.7),
        lambda im: ImageEnhance.Contrast(im).enhance(1.3),
    ]
    for i in range(n):
        img = edits[(i // len(bases)) % len(edits)](bases[i % len(bases)])
        if i >= len(bases) * len(edits):
            img = img.rotate(i, expand=False)
        img.save(folder / f"photo_{i:03d}.jpg", quality=88)


@pytest.fixture
def photo_project(transactional_db, tmp_path):
    """photo_project(n_images, raters=(...)) -> (project, images, users by name)."""
    from django.contrib.auth import get_user_model

    from annotation import services
    from curation.services import import_directory

    def factory(n_images: int = 5, *, raters=("rita",), overlap: int = 2, role="annotator"):
        folder = tmp_path / "photos"
        shutil.rmtree(folder, ignore_errors=True)
        write_photos(folder, n_images)
        report = import_directory(folder)
        assert not report.bad, report.bad
        project, _ = services.get_or_create_project(
            "Portraits 2025", overlap=overlap, guidelines=GUIDELINES
        )
        services.add_images(project, report.images)
        users = {}
        for name in raters:
            services.add_member(project, name, role, password=PASSWORD)
            users[name] = get_user_model().objects.get(username=name)
        return project, report.images, users

    return factory


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not re.search(r"status of 4\d\d", msg.text)
            else None
        ),
    )
    pg.js_errors = errors
    yield pg
    # Let the page's last requests (the preload of the next image) finish before the database
    # is flushed under the live server.
    pg.wait_for_load_state("networkidle")
    context.close()
    # A request the page sent in its last moment may still run in a live-server thread; let it
    # finish its transaction before the database is flushed (a TRUNCATE that meets a row lock
    # mid-transaction deadlocks).
    time.sleep(0.5)
    assert not errors, f"JavaScript errors on the page: {errors}"


def login(page, username: str, password: str = PASSWORD) -> None:
    """Log in through the login form, with the keyboard."""
    page.goto("/accounts/login/")
    expect(page.get_by_label("Username")).to_be_focused()  # autofocus
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    if urlsplit(page.url).path != "/":
        raise AssertionError(f"login failed: {page.url}: {page.locator('main').inner_text()}")
