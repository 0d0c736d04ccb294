"""Every API error is JSON `{"detail", "code"}` (plus `errors` by field), never HTML (#11.8)."""

import pytest

from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def not_found_as_a_rater(make_project, url: str):
    """GET an unknown `url` as a signed-in rater; it must be a 404."""
    _, _, users = make_project(1, raters=["r1"])
    response = client_for(users["r1"]).get(url)
    assert response.status_code == 404
    return response


def test_unknown_api_url_is_json_404(make_project):
    response = not_found_as_a_rater(make_project, "/api/no-such-thing/")
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "no such API endpoint or object", "code": "not_found"}


def test_outside_the_api_404_stays_a_page(make_project):
    response = not_found_as_a_rater(make_project, "/no-such-page/")
    assert response["Content-Type"].startswith("text/html")


def test_validation_errors_keep_their_fields_and_say_them(make_project):
    project, _, users = make_project(1, raters=["r1"])
    client = client_for(users["r1"])
    from annotation import services

    task = services.next_task(project, users["r1"])
    response = client.post(f"/api/assignments/{task.pk}/skip/", {"reason": "nope"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert body["code"] == "invalid_choice"
    assert "reason" in body["errors"] and body["detail"].startswith("reason: ")


def test_not_authenticated_and_not_found_have_codes():
    response = client_for().get("/api/projects/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_add_member_applies_the_password_validators(tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from annotation import services

    services.get_or_create_project("PV")  # (project, created)
    weak_ones = [("short1", "too short"), ("password123", "too common"), ("48213957604", "numeric")]
    for weak, says in weak_ones:
        with pytest.raises(CommandError, match=says):
            call_command("add_member", "PV", "weakling", "--role", "annotator", "--password", weak)
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="weakling").exists()


def test_every_operation_documents_its_errors(make_project):
    """The schema names the error shape once and every operation lists the errors it may give
    (the fuzzer's status-code check holds the API to it)."""
    _, _, users = make_project(0, raters=["r1"])
    client = client_for(users["r1"])
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"detail", "code"}
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
    ]
    assert len(operations) > 50
    for path, method, op in operations:
        for status in ("401", "403", "404"):
            assert status in op["responses"], (path, method, status)
        if method != "get":
            assert "400" in op["responses"], (path, method)


def test_a_database_refusal_that_slipped_past_validation_is_a_400_not_a_500():
    from django.db import DataError

    from config.exceptions import exception_handler

    response = exception_handler(DataError("integer out of range"), {"view": None})
    assert response.status_code == 400
    assert response.data["code"] == "out_of_range"
