"""Small things a new user meets first: the API docs page asks for a login instead of a bare
401, the docs group operations by resource, the site has an icon, and a second demo finds a
free port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_the_docs_page_sends_a_visitor_to_the_login_form_and_back():
    answer = Client().get("/api/docs/")
    assert answer.status_code == 302
    assert answer["Location"] == "/accounts/login/?next=/api/docs/"
    get_user_model().objects.create_user("reader", password="pw-123456-long")
    client = Client()
    assert client.login(username="reader", password="pw-123456-long")
    page = client.get("/api/docs/")
    assert page.status_code == 200 and b"swagger" in page.content.lower()


def test_the_schema_groups_operations_by_resource():
    client = Client()
    get_user_model().objects.create_user("reader", password="pw-123456-long")
    client.login(username="reader", password="pw-123456-long")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    tags = {tag for item in schema["paths"].values() for op in item.values()
            if isinstance(op, dict) for tag in op.get("tags", [])}
    assert {"projects", "jobs", "releases", "sources", "source-imports", "models"} <= tags
    assert "api" not in tags


def test_the_site_has_an_icon():
    answer = Client().get("/favicon.ico")
    assert answer.status_code == 301 and answer["Location"].endswith("/favicon.svg")
    assert (ROOT / "static" / "favicon.svg").read_text().startswith("<svg")


def test_a_second_demo_gets_the_next_free_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        found = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "free_port.py"), str(port)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    assert int(found) > port


def test_a_refused_page_says_why():
    get_user_model().objects.create_user("ann", password="pw-123456-long")
    client = Client()
    assert client.login(username="ann", password="pw-123456-long")
    for url, why in (("/releases/", "Releases are for researchers and admins"),
                     ("/models/", "The models page is for researchers and admins")):
        page = client.get(url)
        assert page.status_code == 403
        assert why in page.content.decode() and "Signed in as ann" in page.content.decode()


def test_api_answers_are_never_cached_and_pages_are_left_alone():
    """Per-user, second-by-second answers: no browser or proxy may keep them (Back used to show
    the rater page stale counters from the HTTP cache)."""
    user = get_user_model().objects.create_user("cachy", password="pw-123456")
    client = Client()
    client.force_login(user)
    for path in ("/api/me/", "/api/projects/", "/api/no-such-thing/"):
        response = client.get(path)
        assert "no-store" in response.headers.get("Cache-Control", ""), (path, response.headers)
    page = client.get("/")
    assert page.status_code == 200 and "no-store" not in page.headers.get("Cache-Control", "")
