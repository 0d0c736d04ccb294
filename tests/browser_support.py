"""Browser fixtures shared by every test folder: Debian's Chromium driven by Playwright.

Registered once for the whole suite (tests/conftest.py's pytest_plugins), so one Playwright
instance and one browser serve all tests: a second sync Playwright in the same thread fails.
"""

from __future__ import annotations

import os
import re
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
    "--disable-dev-shm-usage",
]
PASSWORD = "pw-123456"


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
