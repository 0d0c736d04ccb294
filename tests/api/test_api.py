"""The REST contract: auth, the rater flow, permissions and bad input."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation import services
from annotation.models import Assignment, Rating, Skip
from curation.models import Image
from tests.conftest import client_for, full_scores, image_bytes, write_image

pytestmark = pytest.mark.django_db



def post_rating(client, assignment_id, scores=None, request_id=None):
    return client.post(
        f"/api/assignments/{assignment_id}/rating/",
        {"scores": scores or full_scores(), "request_id": request_id or str(uuid.uuid4())},
        format="json",
    )


def test_token_login_and_token_auth(make_project):
    project, _, _ = make_project(1, raters=["r1"])
    anon = APIClient()
    bad = anon.post("/api/auth/token/", {"username": "r1", "password": "wrong"}, format="json")
    assert bad.status_code == 400
    ok = anon.post("/api/auth/token/", {"username": "r1", "password": "pw-123456"}, format="json")
    assert ok.status_code == 200 and set(ok.json()) == {"token"}
    anon.credentials(HTTP_AUTHORIZATION=f"Token {ok.json()['token']}")
    projects = anon.get("/api/projects/").json()
    assert [p["id"] for p in projects["results"]] == [project.pk]
    assert projects["results"][0]["role"] == "annotator"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/projects/"),
        ("get", "/api/projects/1/"),
        ("get", "/api/projects/1/next/"),
        ("post", "/api/assignments/1/rating/"),
        ("post", "/api/assignments/1/skip/"),
        ("get", "/api/images/"),
        ("get", "/api/dimensions/"),
        ("get", "/api/schema/"),
        ("get", "/media/images/1/"),
    ],
)
def test_unauthenticated_requests_get_401(method, url):
    response = getattr(APIClient(), method)(url)
    assert response.status_code == 401


def test_project_detail_has_progress_counts(make_project):
    project, _, users = make_project(3, overlap=2, raters=["r1", "r2"])
    client = client_for(users["r1"])
    task = client.get(f"/api/projects/{project.pk}/next/").json()
    assert post_rating(client, task["assignment"]).status_code == 201
    body = client.get(f"/api/projects/{project.pk}/").json()
    progress = body["progress"]
    assert progress["images"] == 3
    assert progress["ratings_required"] == 6
    assert progress["ratings_done"] == 1
    assert progress["ratings_left"] == 5
    assert progress["my_ratings"] == 1 and progress["my_ratings_today"] == 1
    assert progress["images_in_progress"] == 1 and progress["images_untouched"] == 2
    assert body["overlap"] == 2 and "guidelines_html" in body


def test_next_rate_and_retry_contract(make_project):
    project, _, users = make_project(2, overlap=1, raters=["r1"])
    client = client_for(users["r1"])
    response = client.get(f"/api/projects/{project.pk}/next/")
    assert response.status_code == 200
    task = response.json()
    assert set(task) == {"assignment", "image", "dimensions", "expires_at"}
    assert set(task["image"]) == {"id", "url", "width", "height"}
    assert task["image"]["width"] == 64 and task["image"]["height"] == 48
    assert [d["key"] for d in task["dimensions"]][-1] == "comprehensive_aesthetic"
    assert len(task["dimensions"]) == 12

    image = client.get(task["image"]["url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"

    rid = str(uuid.uuid4())
    scores = full_scores(2, outfit=None)
    first = post_rating(client, task["assignment"], scores, rid)
    assert first.status_code == 201
    again = post_rating(client, task["assignment"], scores, rid)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert first.json()["scores"] == scores
    assert Rating.objects.count() == 1

    second = client.get(f"/api/projects/{project.pk}/next/").json()
    assert second["image"]["id"] != task["image"]["id"]
    assert post_rating(client, second["assignment"]).status_code == 201
    assert client.get(f"/api/projects/{project.pk}/next/").status_code == 204


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"scores": full_scores(environment=1.5)}, "outside"),
        ({"scores": {**full_scores(), "glow": 0.2}}, "unknown dimension"),
        ({"scores": full_scores(looks=None)}, "looks"),
        ({"scores": full_scores(), "request_id": "not-a-uuid"}, "request_id"),
        ({"scores": "high"}, "scores"),
    ],
)
def test_bad_ratings_get_400_and_change_nothing(make_project, payload, fragment):
    project, _, users = make_project(1, raters=["r1"])
    client = client_for(users["r1"])
    task = client.get(f"/api/projects/{project.pk}/next/").json()
    body = {"request_id": str(uuid.uuid4()), **payload}
    response = client.post(f"/api/assignments/{task['assignment']}/rating/", body, format="json")
    assert response.status_code == 400
    assert fragment in str(response.json())
    assert Rating.objects.count() == 0


def test_anothers_lease_answers_like_an_unknown_one(make_project):
    project, _, users = make_project(1, raters=["r1", "r2"])
    task = client_for(users["r1"]).get(f"/api/projects/{project.pk}/next/").json()
    response = post_rating(client_for(users["r2"]), task["assignment"])
    unknown = post_rating(client_for(users["r2"]), 987654)
    assert response.status_code == unknown.status_code == 404
    assert response.json()["code"] == unknown.json()["code"] == "not_found"
    assert Rating.objects.count() == 0


def test_next_refuses_unknown_projects_outsiders_and_non_raters(make_project):
    project, _, users = make_project(1, raters=["r1"])
    services.add_member(project, "cur", "curator")  # a member who does not rate
    User = type(users["r1"])
    outsider = User.objects.create_user("outsider", password="pw-123456")
    client = client_for(users["r1"])
    assert client.get("/api/projects/987654/next/").status_code == 404
    assert client.get("/api/projects/abc/next/").status_code == 404
    assert client.post("/api/assignments/abc/rating/", {}, format="json").status_code == 404
    response = client_for(outsider).get(f"/api/projects/{project.pk}/next/")
    missing = client_for(outsider).get("/api/projects/987654/next/")
    # Outsiders get the answer a missing project gives: they learn nothing of it.
    assert response.status_code == missing.status_code == 404
    assert response.json()["code"] == missing.json()["code"] == "not_found"
    assert project.name not in response.json()["detail"]
    curator = User.objects.get(username="cur")
    response = client_for(curator).get(f"/api/projects/{project.pk}/next/")
    assert response.status_code == 403 and "curator" in response.json()["detail"]
    assert not Assignment.objects.exists()


def test_full_image_gives_409_on_late_submit(make_project):
    from datetime import timedelta

    project, _, users = make_project(1, overlap=1, raters=["r1", "r2"])
    a = services.next_task(project, users["r1"])
    b = services.next_task(project, users["r2"], now=a.expires_at + timedelta(seconds=5))
    services.submit_rating(b.pk, users["r2"], full_scores(), str(uuid.uuid4()))
    Assignment.objects.filter(pk=a.pk).update(expires_at=a.created_at)  # it ran out for real
    response = post_rating(client_for(users["r1"]), a.pk)
    assert response.status_code == 409 and "enough ratings" in response.json()["detail"]


def test_skip_and_flag(make_project):
    project, _, users = make_project(2, raters=["r1"])
    client = client_for(users["r1"])
    task = client.get(f"/api/projects/{project.pk}/next/").json()
    response = client.post(
        f"/api/assignments/{task['assignment']}/skip/", {"reason": "inappropriate"}, format="json"
    )
    assert response.status_code == 201 and response.json()["flagged"] is True
    bad = client.post(f"/api/assignments/{task['assignment']}/skip/", {"reason": "meh"},
                      format="json")
    assert bad.status_code == 400
    assert Skip.objects.get().reason == "inappropriate"


def test_non_members_and_non_raters_are_refused(make_project):
    project, _, _users = make_project(1, raters=["r1"])
    outsider = get_user_model().objects.create_user("outsider", password="x-123456")
    assert client_for(outsider).get(f"/api/projects/{project.pk}/").status_code == 404
    assert client_for(outsider).get(f"/api/projects/{project.pk}/next/").status_code == 404
    assert client_for(outsider).get("/api/projects/").json()["results"] == []
    services.add_member(project, "cur", "curator")
    curator = get_user_model().objects.get(username="cur")
    assert client_for(curator).get(f"/api/projects/{project.pk}/next/").status_code == 403


def test_annotators_see_only_their_own_ratings(make_project):
    project, _, users = make_project(1, overlap=2, raters=["r1", "r2"])
    for name in ("r1", "r2"):
        task = client_for(users[name]).get(f"/api/projects/{project.pk}/next/").json()
        assert post_rating(client_for(users[name]), task["assignment"]).status_code == 201
    mine = client_for(users["r1"]).get(f"/api/projects/{project.pk}/ratings/").json()["results"]
    assert [r["rater"] for r in mine] == ["r1"]
    services.add_member(project, "rev", "reviewer")
    reviewer = get_user_model().objects.get(username="rev")
    every = client_for(reviewer).get(f"/api/projects/{project.pk}/ratings/").json()["results"]
    assert sorted(r["rater"] for r in every) == ["r1", "r2"]


def test_annotators_cannot_reach_curator_endpoints(make_project):
    _project, _, users = make_project(1, raters=["r1"])
    client = client_for(users["r1"])
    assert client.get("/api/images/").status_code == 403
    upload = client.post("/api/images/", {"file": _upload("x.png", image_bytes())},
                         format="multipart")
    assert upload.status_code == 403


def test_image_files_only_for_those_who_may_see_them(make_project):
    project, _images, users = make_project(2, overlap=3, raters=["r1", "r2"])
    task = client_for(users["r1"]).get(f"/api/projects/{project.pk}/next/").json()
    url = task["image"]["url"]
    assert client_for(users["r1"]).get(url).status_code == 200
    # r2 was never leased this image: as far as r2 knows it does not exist
    assert client_for(users["r2"]).get(url).status_code == 404
    services.add_member(project, "rev", "reviewer")
    reviewer = get_user_model().objects.get(username="rev")
    assert client_for(reviewer).get(url).status_code == 200


def _upload(name, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


@pytest.fixture
def curator(make_project):
    _project, _, _ = make_project(0, raters=["cur"], role="curator")
    return get_user_model().objects.get(username="cur")


def test_curator_upload_validates_and_dedups(curator, tmp_path, settings):
    client = client_for(curator)
    good = image_bytes(seed=7)
    first = client.post("/api/images/", {"file": _upload("a.png", good)}, format="multipart")
    assert first.status_code == 201 and first.json()["format"] == "PNG"
    again = client.post("/api/images/", {"file": _upload("b.png", good)}, format="multipart")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]

    truncated = image_bytes(seed=8, fmt="JPEG")[:-400]
    cases = {
        "truncated.jpg": (truncated, "decoded"),
        "notes.png": (b"this is not an image at all", "not an image"),
        "empty.jpg": (b"", "empty"),
    }
    for name, (data, says) in cases.items():
        response = client.post("/api/images/", {"file": _upload(name, data)}, format="multipart")
        assert response.status_code == 400, name
        assert says in str(response.json()), (name, response.json())

    settings.MAX_IMAGE_PIXELS = 1000  # 64x48 = 3072 pixels: a "bomb" for this limit
    bomb = client.post("/api/images/", {"file": _upload("bomb.png", image_bytes(seed=9))},
                       format="multipart")
    assert bomb.status_code == 400 and bomb.json()["code"] == "decompression_bomb"

    settings.MAX_UPLOAD_BYTES = 100
    big = client.post("/api/images/", {"file": _upload("big.png", image_bytes(seed=10))},
                      format="multipart")
    assert big.status_code == 413
    assert Image.objects.count() == 1


def test_schema_and_docs_are_served_to_logged_in_users(make_project):
    _project, _, users = make_project(0, raters=["r1"])
    client = client_for(users["r1"])
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/projects/{id}/next/", "/api/assignments/{id}/rating/",
                 "/api/assignments/{id}/skip/", "/api/auth/token/"):
        assert path in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_session_auth_needs_csrf(make_project):
    project, _, _users = make_project(1, raters=["r1"])
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="r1", password="pw-123456")
    task = client.get(f"/api/projects/{project.pk}/next/").json()
    response = post_rating(client, task["assignment"])
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_write_image_helper_makes_distinct_files(tmp_path):
    a = write_image(tmp_path / "a.jpg", seed=1).read_bytes()
    b = write_image(tmp_path / "b.jpg", seed=2).read_bytes()
    assert a != b
