"""No role reaches past its room (#11.1 and #11.8)."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation import services
from annotation.models import AuditEvent, Membership, ProjectImage
from tests.conftest import client_for, full_scores
from tests.quality.test_review_and_api import csv_text

pytestmark = pytest.mark.django_db



def _reference_upload(client, project, refs):
    upload = SimpleUploadedFile("g.csv", csv_text([(r, full_scores(3)) for r in refs]).encode())
    return client.post(
        f"/api/projects/{project.pk}/references/", {"file": upload, "kind": "gold"},
        format="multipart",
    )


def test_a_reviewer_cannot_pull_pool_images_into_their_project(make_project):
    mine, _, users = make_project(1, raters=["a"])
    _theirs, other_images, _ = make_project(2, raters=["b"])
    services.add_member(mine, "rev", "reviewer")
    reviewer = get_user_model().objects.get(username="rev")
    secret = other_images[1]  # img_0001.jpg: no image of that name in `mine`
    before = ProjectImage.objects.count()
    response = _reference_upload(client_for(reviewer), mine, [secret.pk, secret.original_path])
    # Every row refused: the file is refused whole (a 400 with the rows' errors, nothing set).
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert len(errors) == 2 and "nothing was set" in response.json()["detail"]
    # The same words as for an image that does not exist: the pool cannot be probed.
    missing = _reference_upload(client_for(reviewer), mine, [987654])
    assert errors[0].replace(str(secret.pk), "X") == missing.json()["errors"][0].replace(
        "987654", "X"
    )
    assert ProjectImage.objects.count() == before
    assert client_for(reviewer).get(f"/media/images/{secret.pk}/").status_code in (403, 404)


def test_a_reviewer_may_still_use_their_projects_images(make_project):
    mine, images, _ = make_project(2, raters=["a"])
    services.add_member(mine, "rev", "reviewer")
    reviewer = get_user_model().objects.get(username="rev")
    response = _reference_upload(client_for(reviewer), mine, [images[1].pk])
    assert response.status_code == 200 and response.json()["set"] == 1


def test_a_curator_admin_may_use_the_whole_pool(make_project):
    mine, _, _ = make_project(1, raters=["a"])
    _, other_images, _ = make_project(1, raters=["b"])
    root = get_user_model().objects.create_superuser("root", password="root-pass-123")
    response = _reference_upload(client_for(root), mine, [other_images[0].pk])
    assert response.status_code == 200 and response.json()["set"] == 1


@pytest.mark.parametrize("new_status", ["paused", "revoked", "certified"])
def test_a_reviewer_cannot_change_an_admins_or_their_own_status(make_project, new_status):
    project, _, _ = make_project(1, raters=["a"])
    services.add_member(project, "rev", "reviewer")
    services.add_member(project, "boss", "admin")
    reviewer = get_user_model().objects.get(username="rev")
    url = f"/api/projects/{project.pk}/raters/{{}}/status/"
    before = dict(Membership.objects.values_list("user__username", "status"))
    for target in ("boss", "rev"):
        response = client_for(reviewer).post(url.format(target), {"status": new_status},
                                             format="json")
        assert response.status_code == 403, (target, response.json())
    assert dict(Membership.objects.values_list("user__username", "status")) == before


def test_a_status_change_for_a_non_rater_is_a_clean_400(make_project):
    project, _, _ = make_project(1, raters=["a"])
    services.add_member(project, "cur", "curator")
    services.add_member(project, "boss", "admin")
    boss = get_user_model().objects.get(username="boss")
    events = AuditEvent.objects.count()
    before = dict(Membership.objects.values_list("user__username", "status"))
    response = client_for(boss).post(
        f"/api/projects/{project.pk}/raters/cur/status/", {"status": "paused"}, format="json"
    )
    assert response.status_code == 400 and "does not rate" in response.json()["detail"]
    assert dict(Membership.objects.values_list("user__username", "status")) == before
    assert AuditEvent.objects.count() == events


def test_outsiders_get_404_for_a_projects_quality_pages_and_reviews(make_project):
    from annotation.models import ReviewItem

    project, images, _ = make_project(1, raters=["a"])
    services.add_member(project, "rev", "reviewer")
    review = ReviewItem.objects.create(project=project, image=images[0], reasons=["disagreement"])
    other, _, _ = make_project(1, raters=["b"])
    services.add_member(other, "outsider", "reviewer")
    outsider = client_for(get_user_model().objects.get(username="outsider"))
    for url in (f"/api/projects/{project.pk}/agreement/", f"/api/projects/{project.pk}/reviews/"):
        assert outsider.get(url).status_code == 404
        assert outsider.get(url.replace(str(project.pk), "987654")).status_code == 404
    decision = outsider.post(
        f"/api/reviews/{review.pk}/decision/", {"decision": "accept"}, format="json"
    )
    missing = outsider.post("/api/reviews/987654/decision/", {"decision": "accept"}, format="json")
    assert decision.status_code == missing.status_code == 404
    assert decision.json()["detail"].replace(str(review.pk), "X") == missing.json()[
        "detail"
    ].replace("987654", "X")
    # A member who is no manager still learns it is not theirs to manage.
    member = client_for(get_user_model().objects.get(username="a"))
    assert member.get(f"/api/projects/{project.pk}/agreement/").status_code == 403
