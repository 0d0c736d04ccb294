"""The curator pages: who sees them, and the config they hand to their scripts."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from curation.models import FilterJob, Source

pytestmark = pytest.mark.django_db


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def page_config(response) -> dict:
    html = response.content.decode()
    m = re.search(r'<script id="curation-config" type="application/json">(.*?)</script>', html)
    assert m, "no config on the page"
    return json.loads(m.group(1))


@pytest.fixture
def job(db):
    source = Source.objects.create(name="ava", kind="ava", location="/data/ava")
    return FilterJob.objects.create(source=source, config={}, progress={"total": 3})


def test_curators_researchers_and_admins_see_the_pages_others_do_not(users, job):
    pages = ["/curation/", f"/curation/sources/{job.source_id}/", f"/curation/jobs/{job.pk}/"]
    for url in pages:
        anonymous = client_for().get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
        assert client_for(users["annotator"]).get(url).status_code == 403
        for role in ("curator", "researcher", "admin"):
            response = client_for(users[role]).get(url)
            assert response.status_code == 200, (role, url)
            assert page_config(response)["can_write"] is (role != "researcher")
    assert client_for(users["curator"]).get("/curation/jobs/999999/").status_code == 404

    # The write forms are only on the pages of those who may write.
    curator = client_for(users["curator"]).get(f"/curation/jobs/{job.pk}/").content.decode()
    researcher = client_for(users["researcher"]).get(f"/curation/jobs/{job.pk}/").content.decode()
    for marker in ('id="override-dialog"', 'id="project-form"', 'id="btn-cancel"'):
        assert marker in curator and marker not in researcher


def test_the_pages_config_names_the_api(users, job):
    home = page_config(client_for(users["curator"]).get("/curation/"))
    assert home["urls"]["sources"] == "/api/sources/"
    assert "manifest" in [k["kind"] for k in home["kinds"]]
    assert home["urls"]["job_page"] == "/curation/jobs/{id}/"
    source = page_config(client_for(users["curator"]).get(f"/curation/sources/{job.source_id}/"))
    assert source["urls"]["jobs"] == f"/api/jobs/?source={job.source_id}"
    assert source["defaults"]["clip_available"] is False  # no checkpoint on these machines
    detail = page_config(client_for(users["curator"]).get(f"/curation/jobs/{job.pk}/"))
    assert detail["urls"]["sheet"] == f"/api/jobs/{job.pk}/contact-sheet/"
    assert detail["urls"]["override"] == "/api/decisions/{id}/override/"
    assert detail["urls"]["project"] == f"/api/jobs/{job.pk}/project/"
    assert detail["stages"] == ["validate", "hash", "dedup", "faces", "clip"]


def test_the_header_links_to_curation_for_the_roles_that_may_go(users):
    link = 'href="/curation/"'
    for role, shown in (
        ("curator", True),
        ("researcher", True),
        ("admin", True),
        ("annotator", False),
    ):
        html = client_for(users[role]).get("/").content.decode()
        assert (link in html) is shown, role
