"""Hardening by default (#11.9): a Content-Security-Policy on every page, and the pages (the API
docs included) still work under it in Chromium: a violation is a console error, which the
`page` fixture turns into a failure."""

import pytest
from django.contrib.auth import get_user_model

from tests.browser_support import PASSWORD, login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_csp_header_on_pages_and_api(client, django_user_model):
    for url in ("/accounts/login/", "/api/dimensions/"):
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "object-src 'none'" in policy
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]


def test_pages_work_under_the_policy(page, make_project):
    project, _, _ = make_project(2, raters=["r1"])
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    login(page, "root")
    seen = []
    page.on("console", lambda msg: seen.append(f"{page.url}: {msg.text}"))
    for url in (
        "/",
        f"/projects/{project.pk}/dashboard/",
        f"/projects/{project.pk}/review/",
        "/curation/",
        "/releases/",
        "/models/",
        "/api/docs/",
    ):
        response = page.goto(url)
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)  # the docs rendered
    assert not [m for m in seen if "Content Security Policy" in m], seen
