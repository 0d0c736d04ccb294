"""Malformed request bodies get a 400 with `{"detail", "code"}`, never a 500 (issue #11 item 3).

The fuzzer found deep nesting, huge integers, `1e400` and NUL bytes reaching code that could
not handle them; the parser refuses all of these for every JSON endpoint at once.
"""

import json
import uuid

import pytest
from rest_framework.test import APIClient

from tests.conftest import full_scores

pytestmark = pytest.mark.django_db


def raw_post(client: APIClient, url: str, body: str):
    return client.generic("POST", url, body, content_type="application/json")


def json_body(scores_text: str) -> str:
    return f'{{"scores": {scores_text}, "request_id": "{uuid.uuid4()}"}}'


def deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize("depth", [100, 1_000, 100_000])
def test_deep_nesting_unauthenticated_on_token_endpoint(depth):
    response = raw_post(APIClient(), "/api/auth/token/", '{"username": ' + deep(depth) + "}")
    assert response.status_code == 400, response.content[:200]
    assert response.json()["code"] == "parse_error"


def test_deep_nesting_on_rating(make_project):
    from annotation import services

    project, _, users = make_project(1, raters=["r1"])
    client = APIClient()
    client.force_authenticate(users["r1"])
    task = services.next_task(project, users["r1"])
    body = json_body(deep(5_000))
    response = raw_post(client, f"/api/assignments/{task.pk}/rating/", body)
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize(
    "number",
    ["1" + "0" * 400, "-" + "9" * 300, "1e400", "-1e400", "NaN", "Infinity", "-Infinity"],
)
def test_numbers_that_are_no_finite_double_are_refused(make_project, number):
    from annotation import services
    from annotation.models import Rating

    project, _, users = make_project(1, raters=["r1"])
    client = APIClient()
    client.force_authenticate(users["r1"])
    task = services.next_task(project, users["r1"])
    scores = json.dumps(full_scores()).replace("0.7", number, 1)
    assert number in scores
    body = json_body(scores)
    response = raw_post(client, f"/api/assignments/{task.pk}/rating/", body)
    assert response.status_code == 400, response.content[:300]
    assert set(response.json()) >= {"detail", "code"}
    assert Rating.objects.count() == 0


@pytest.mark.parametrize("field", ["username", "password"])
def test_nul_bytes_in_json_strings_are_refused(field):
    body = {"username": "someone", "password": "pw"}
    body[field] = "a\u0000b"
    response = raw_post(APIClient(), "/api/auth/token/", json.dumps(body))
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_nul_bytes_in_form_data_and_query_are_refused():
    from django.test import Client

    client = Client()
    form = client.post(
        "/accounts/login/",
        "username=a%00b&password=x",
        content_type="application/x-www-form-urlencoded",
    )
    assert form.status_code == 400
    # multipart fields: Django's form refuses the NUL itself (the page again, no 500)
    multipart = client.post("/accounts/login/", {"username": "a\x00b", "password": "x"})
    assert multipart.status_code == 200 and b"Null characters" in multipart.content
    query = APIClient().get("/api/dimensions/?x=a%00b")
    assert query.status_code == 400


def test_invalid_utf8_and_lone_surrogates_are_refused():
    response = APIClient().generic(
        "POST", "/api/auth/token/", b'{"username": "\xff\xfe"}', content_type="application/json"
    )
    assert response.status_code == 400
    response = raw_post(APIClient(), "/api/auth/token/", '{"username": "\\ud800", "password": "x"}')
    assert response.status_code == 400


@pytest.mark.parametrize("suffix", ["rating/", "skip/"])
def test_options_on_action_views_is_not_a_500(make_project, suffix):
    from annotation import services

    project, _, users = make_project(1, raters=["r1"])
    client = APIClient()
    client.force_authenticate(users["r1"])
    task = services.next_task(project, users["r1"])
    response = client.options(f"/api/assignments/{task.pk}/{suffix}")
    assert response.status_code == 200
    assert "POST" in response["Allow"]


def test_options_on_review_decision_is_not_a_500(make_project):
    project, _, users = make_project(1, raters=["r1"])
    client = APIClient()
    client.force_authenticate(users["r1"])
    response = client.options("/api/reviews/1/decision/")
    assert response.status_code in (200, 403, 404)


@pytest.mark.parametrize("url", ["/api/reviews/abc/decision/", "/api/reviews/1e3/", "/api/jobs/x/"])
def test_non_numeric_ids_are_404(make_project, url):
    project, _, users = make_project(1, raters=["r1"])
    client = APIClient()
    client.force_authenticate(users["r1"])
    response = client.post(url, {}, format="json")
    assert response.status_code == 404


def _api_views():
    from django.urls import get_resolver
    from django.urls.resolvers import URLResolver

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern), p.callback

    views = walk(get_resolver().url_patterns)
    return [(route, cb) for route, cb in views if route.startswith("api/")]


def test_every_api_view_parses_json_strictly():
    """The class of the fix: no view (or viewset action) names plain JSONParser."""
    from rest_framework.parsers import JSONParser

    from config.parsers import StrictJSONParser

    views = _api_views()
    assert len(views) > 30
    lax = []
    for route, callback in views:
        cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if cls is None:
            continue
        parser_lists = [cls.parser_classes]
        for name in (getattr(callback, "actions", None) or {}).values():
            method = getattr(cls, name, None)
            parser_lists.append((getattr(method, "kwargs", {}) or {}).get("parser_classes", []))
        for parsers in parser_lists:
            for parser in parsers:
                if issubclass(parser, JSONParser) and not issubclass(parser, StrictJSONParser):
                    lax.append((route, parser.__name__))
    assert lax == []


# Body fields that name a row by id (PrimaryKeyRelatedField): looked up, never stored as given.
REFERENCES = {"source", "release"}


def test_every_integer_input_is_bounded_in_the_schema(make_project):
    """The class of the int32/int16 overflows (a priority of 10^11 was a 500): every integer
    a request may carry has a documented minimum and maximum, enforced by its serializer."""
    _, _, users = make_project(0, raters=["r1"])
    client = APIClient()
    client.force_authenticate(users["r1"])
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]

    def integers(node, path):
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[-1]
                if name not in seen:
                    seen.add(name)
                    yield from integers(components[name], name)
                return
            if node.get("type") == "integer" and not node.get("readOnly"):
                yield path, node
            for key, value in node.items():
                yield from integers(value, f"{path}.{key}")
        elif isinstance(node, list):
            for value in node:
                yield from integers(value, path)

    unbounded = []
    for route, item in schema["paths"].items():
        for method, op in item.items():
            seen: set[str] = set()
            # Path and query integers never reach a column (Django answers an out-of-range
            # id with "no such object"); bodies do. References to rows are looked up likewise.
            for path, node in integers(op.get("requestBody", {}), f"{method.upper()} {route}"):
                if path.rsplit(".", 1)[-1] in REFERENCES:
                    continue
                if "maximum" not in node or "minimum" not in node:
                    unbounded.append(path)
    assert unbounded == [], "\n".join(unbounded)


@pytest.mark.django_db(transaction=True)  # the database's own refusal must not end the test
def test_a_value_beyond_its_column_is_a_400_and_leaves_nothing(tmp_path, settings):
    from django.contrib.auth import get_user_model

    from curation.models import Source, SourceItem

    settings.IMPORT_ROOTS = [tmp_path.resolve()]
    (tmp_path / "m.csv").write_text("path,score\na.jpg,1\n")
    root = get_user_model().objects.create_superuser("root", password="root-pass-123")
    client = APIClient()
    client.force_authenticate(root)
    before = (Source.objects.count(), SourceItem.objects.count())
    for priority in (99_999_999_999, -(2**40)):
        response = client.post(
            "/api/sources/",
            {"kind": "manifest", "path": str(tmp_path / "m.csv"), "name": "big",
             "priority": priority, "scale": [0, 1]},
            format="json",
        )
        assert response.status_code == 400, response.json()
        assert set(response.json()) >= {"detail", "code"}
    assert (Source.objects.count(), SourceItem.objects.count()) == before
