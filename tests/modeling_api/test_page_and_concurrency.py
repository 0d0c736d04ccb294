"""The researcher's /models/ page, and activation racing on PostgreSQL."""

from __future__ import annotations

import json
import re
import threading

import pytest
from django.test import Client

from modeling.models import ModelVersion
from modeling.services import registry
from tests.threads import run_threads


@pytest.mark.django_db
def test_the_models_page_is_for_researchers_and_admins(users):
    anonymous = Client().get("/models/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    for role, expected in (("annotator", 403), ("curator", 403), ("researcher", 200),
                           ("admin", 200)):
        client = Client()
        client.force_login(users[role])
        response = client.get("/models/")
        assert response.status_code == expected, role
    html = response.content.decode()
    m = re.search(r'<script id="models-config" type="application/json">(.*?)</script>', html)
    config = json.loads(m.group(1))
    assert config["urls"]["score"] == "/api/score/"
    assert config["urls"]["activate"] == "/api/models/{id}/activate/"
    assert config["urls"]["training_run"] == "/api/training-runs/{id}/"
    assert len(config["dimensions"]) == 12
    for element in ("score-form", "train-form", "models-table", "score-result", "run-live"):
        assert f'id="{element}"' in html
    assert "js/models.js" in html


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_leave_exactly_one_active(lite_model):
    names = [f"race-{i}" for i in range(6)]
    for name in names:
        registry.register_version(name, lite_model)
    barrier = threading.Barrier(len(names))

    def activate(name: str) -> None:
        barrier.wait()
        for _ in range(3):
            registry.activate_version(name)

    errors = run_threads(activate, names)
    assert not errors, errors
    assert ModelVersion.objects.filter(is_active=True).count() == 1
