"""Qualification track gates production; managers certify and revoke by hand (audited)."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation import services
from annotation.models import AuditEvent, ItemKind, Membership, RaterStatus
from annotation.services.quality import set_rater_status
from tests.conftest import full_scores, new_request_id
from tests.quality.conftest import SimRater, make_references, rate_until_done

pytestmark = pytest.mark.django_db


@pytest.fixture
def track_project(make_project):
    project, images, users = make_project(12, overlap=2, raters=["careful", "sloppy"])
    make_references(project, images[:2], ItemKind.TRAINING)
    make_references(project, images[2:6], ItemKind.TEST)
    return project, images, users


def test_members_start_as_candidates_once_a_track_exists(track_project):
    project, _, users = track_project
    assert Membership.objects.get(user=users["careful"]).status == RaterStatus.CANDIDATE
    services.add_member(project, "late_joiner", "annotator")
    assert Membership.objects.get(user__username="late_joiner").status == RaterStatus.CANDIDATE


def test_training_then_test_with_feedback_only_in_training(track_project):
    project, images, users = track_project
    client = APIClient()
    client.force_authenticate(users["careful"])
    kinds = []
    for _ in range(6):
        task = client.get(f"/api/projects/{project.pk}/next/").json()
        image_id = task["image"]["id"]
        kinds.append(image_id)
        body = client.post(
            f"/api/assignments/{task['assignment']}/rating/",
            {"scores": SimRater("careful", 1).scores(image_id), "request_id": new_request_id()},
            format="json",
        ).json()
        if image_id in (images[0].pk, images[1].pk):
            assert set(body["feedback"]) == set(full_scores())
        else:
            assert "feedback" not in body
    assert kinds[:2] == [images[0].pk, images[1].pk]  # training first
    assert set(kinds[2:]) == {i.pk for i in images[2:6]}  # then the whole test
    membership = Membership.objects.get(user=users["careful"])
    assert membership.status == RaterStatus.CERTIFIED and membership.certified_via == "test"
    assert membership.qualification_result["passed"] is True
    # ... and now production images come
    task = client.get(f"/api/projects/{project.pk}/next/").json()
    assert task["image"]["id"] in {i.pk for i in images[6:]}


def test_a_failing_candidate_gets_no_production_task(track_project):
    project, _, users = track_project
    done = rate_until_done(project, users["sloppy"], SimRater("random", 2))
    assert done == 6  # the track only
    membership = Membership.objects.get(user=users["sloppy"])
    assert membership.status == RaterStatus.CANDIDATE
    assert membership.qualification_result["passed"] is False
    assert "did not pass" in membership.status_reason
    with pytest.raises(services.NotCertified, match="did not pass"):
        services.next_task(project, users["sloppy"])
    client = APIClient()
    client.force_authenticate(users["sloppy"])
    response = client.get(f"/api/projects/{project.pk}/next/")
    assert response.status_code == 403 and response.json()["code"] == "not_certified"


def test_manager_certifies_and_revokes_by_hand_with_an_audit_trail(track_project):
    project, _, users = track_project
    services.add_member(project, "boss", "admin")
    boss = get_user_model().objects.get(username="boss")
    set_rater_status(project, users["sloppy"], "certified", actor=boss, reason="known expert")
    task = services.next_task(project, users["sloppy"])
    assert task.project_image.kind == ItemKind.PRODUCTION
    services.submit_rating(task.pk, users["sloppy"], full_scores(), new_request_id())
    set_rater_status(project, users["sloppy"], "revoked", actor=boss, reason="left the team")
    with pytest.raises(services.NotCertified, match="revoked"):
        services.next_task(project, users["sloppy"])
    actions = list(
        AuditEvent.objects.filter(subject=users["sloppy"]).values_list("action", "actor__username")
    )
    assert ("rater_certified", "boss") in actions and ("rater_revoked", "boss") in actions


def test_revoke_through_the_api_needs_a_manager(track_project):
    project, _, users = track_project
    url = f"/api/projects/{project.pk}/raters/careful/status/"
    annotator = APIClient()
    annotator.force_authenticate(users["sloppy"])
    assert annotator.post(url, {"status": "revoked"}, format="json").status_code == 403
    services.add_member(project, "rev", "reviewer")
    reviewer = APIClient()
    reviewer.force_authenticate(get_user_model().objects.get(username="rev"))
    response = reviewer.post(url, {"status": "revoked", "reason": "test"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "revoked"


def test_projects_without_a_track_let_annotators_rate_directly(make_project):
    project, _, users = make_project(2, raters=["r1"])
    assert Membership.objects.get(user=users["r1"]).status == RaterStatus.CERTIFIED
    assert services.next_task(project, users["r1"]) is not None
