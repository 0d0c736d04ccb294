"""Submit and skip: validation, ownership, late submits, idempotency."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection

from annotation import services
from annotation.models import Assignment, AssignmentStatus, ProjectImage, Rating, Skip
from tests.conftest import full_scores, new_request_id

pytestmark = pytest.mark.django_db


def test_submit_stores_all_twelve_scores_and_frees_the_lease(make_project):
    project, _, users = make_project(1, raters=["r1"])
    a = services.next_task(project, users["r1"])
    scores = full_scores(5, facial_brightness=0.1, outfit=None)
    result = services.submit_rating(a.pk, users["r1"], scores, new_request_id(), time_spent_ms=4200)
    assert result.created
    rating = Rating.objects.get(pk=result.rating.pk)
    assert rating.scores == scores and rating.time_spent_ms == 4200 and not rating.late
    item = ProjectImage.objects.get(project=project)
    assert (item.completed, item.leased) == (1, 0)
    a.refresh_from_db()
    assert a.status == AssignmentStatus.COMPLETED


@pytest.mark.parametrize(
    "scores",
    [
        full_scores(environment=1.2),
        full_scores(environment=-1),
        full_scores(looks=None),
        {**full_scores(), "sparkle": 0.3},
        {k: v for k, v in full_scores().items() if k != "looks"},
        full_scores(facial_aesthetic=None),
    ],
)
def test_invalid_scores_change_nothing(make_project, scores):
    project, _, users = make_project(1, raters=["r1"])
    a = services.next_task(project, users["r1"])
    with pytest.raises(services.InvalidRating):
        services.submit_rating(a.pk, users["r1"], scores, new_request_id())
    assert Rating.objects.count() == 0
    a.refresh_from_db()
    assert a.status == AssignmentStatus.ACTIVE
    assert ProjectImage.objects.get(project=project).leased == 1


def test_someone_elses_lease_is_refused(make_project):
    project, _, users = make_project(1, raters=["r1", "r2"])
    a = services.next_task(project, users["r1"])
    # The same answer as a lease that does not exist: raters learn nothing of others' leases.
    with pytest.raises(services.LeaseNotFound, match="does not exist"):
        services.submit_rating(a.pk, users["r2"], full_scores(), new_request_id())
    with pytest.raises(services.LeaseNotFound):
        services.skip_assignment(a.pk, users["r2"], "skip")
    assert Rating.objects.count() == 0 and Skip.objects.count() == 0


def test_unknown_assignment_is_not_found(make_project):
    _project, _, users = make_project(1, raters=["r1"])
    with pytest.raises(services.LeaseNotFound):
        services.submit_rating(999_999, users["r1"], full_scores(), new_request_id())


def test_retry_with_same_request_id_returns_the_first_rating(make_project):
    project, _, users = make_project(1, raters=["r1"])
    a = services.next_task(project, users["r1"])
    rid = new_request_id()
    first = services.submit_rating(a.pk, users["r1"], full_scores(), rid)
    again = services.submit_rating(a.pk, users["r1"], full_scores(), rid)
    assert not again.created and again.rating.pk == first.rating.pk
    assert Rating.objects.count() == 1
    assert ProjectImage.objects.get(project=project).completed == 1


def test_second_submit_with_a_new_request_id_is_a_conflict(make_project):
    project, _, users = make_project(1, raters=["r1"])
    a = services.next_task(project, users["r1"])
    services.submit_rating(a.pk, users["r1"], full_scores(), new_request_id())
    with pytest.raises(services.Conflict, match="already rated"):
        services.submit_rating(a.pk, users["r1"], full_scores(2), new_request_id())
    assert Rating.objects.count() == 1


def test_request_id_reused_for_another_lease_is_a_conflict(make_project):
    project, _, users = make_project(2, raters=["r1"])
    a = services.next_task(project, users["r1"])
    b = services.next_task(project, users["r1"], exclude=[a.pk])
    rid = new_request_id()
    services.submit_rating(a.pk, users["r1"], full_scores(), rid)
    with pytest.raises(services.Conflict, match="request_id"):
        services.submit_rating(b.pk, users["r1"], full_scores(), rid)
    b.refresh_from_db()
    assert b.status == AssignmentStatus.ACTIVE


def lease_gone_stale(make_project, *, overlap: int):
    """One image, raters r1 and r2; r1 leased the image. Returns (project, users, r1's
    assignment, a moment one minute after its lease expired)."""
    project, _, users = make_project(1, overlap=overlap, raters=["r1", "r2"])
    a = services.next_task(project, users["r1"])
    return project, users, a, a.expires_at + timedelta(minutes=1)


def test_late_submit_is_accepted_while_the_image_still_needs_ratings(make_project):
    project, users, a, later = lease_gone_stale(make_project, overlap=2)
    result = services.submit_rating(a.pk, users["r1"], full_scores(), new_request_id(), now=later)
    assert result.rating.late
    item = ProjectImage.objects.get(project=project)
    assert (item.completed, item.leased) == (1, 0)


def test_late_submit_is_refused_when_the_slot_went_to_someone_else(make_project):
    project, users, a, later = lease_gone_stale(make_project, overlap=1)
    b = services.next_task(project, users["r2"], now=later)
    assert b.image_id == a.image_id
    services.submit_rating(b.pk, users["r2"], full_scores(), new_request_id(), now=later)
    with pytest.raises(services.Conflict, match="enough ratings"):
        services.submit_rating(a.pk, users["r1"], full_scores(), new_request_id(), now=later)
    assert Rating.objects.count() == 1
    item = ProjectImage.objects.get(project=project)
    assert (item.completed, item.leased) == (1, 0)


def test_skip_of_an_expired_unreclaimed_lease_gives_its_slot_back(make_project):
    # The lease ran out but no next() reclaimed it yet: skipping must still free the slot once.
    project, users, a, later = lease_gone_stale(make_project, overlap=1)
    services.skip_assignment(a.pk, users["r1"], "skip", now=later)
    item = ProjectImage.objects.get(project=project)
    assert (item.completed, item.leased, item.remaining) == (0, 0, 1)
    b = services.next_task(project, users["r2"], now=later)
    assert b is not None and b.image_id == a.image_id


def test_skip_frees_the_slot_records_the_reason_and_is_idempotent(make_project):
    project, _, users = make_project(1, overlap=1, raters=["r1", "r2"])
    a = services.next_task(project, users["r1"])
    skip, created = services.skip_assignment(a.pk, users["r1"], "not_a_person")
    assert created and skip.is_flag
    again, created_again = services.skip_assignment(a.pk, users["r1"], "not_a_person")
    assert not created_again and again.pk == skip.pk
    assert ProjectImage.objects.get(project=project).leased == 0
    # the freed slot goes to another rater, never back to r1
    assert services.next_task(project, users["r1"]) is None
    assert services.next_task(project, users["r2"]).image_id == a.image_id
    with pytest.raises(services.Conflict):
        services.submit_rating(a.pk, users["r1"], full_scores(), new_request_id())


@pytest.mark.parametrize(("reason", "text"), [("sparkly", ""), ("other", "  ")])
def test_bad_skip_reasons_are_refused(make_project, reason, text):
    project, _, users = make_project(1, raters=["r1"])
    a = services.next_task(project, users["r1"])
    with pytest.raises(services.WorkflowError):
        services.skip_assignment(a.pk, users["r1"], reason, text=text)
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_double_submitted_request_races_create_one_rating(make_project):
    """Two threads post the same request at the same moment: one rating, same id for both."""
    project, _, users = make_project(1, raters=["r1"])
    a = services.next_task(project, users["r1"])
    rid = str(uuid.uuid4())
    barrier = threading.Barrier(4)
    results, errors = [], []

    def post():
        try:
            barrier.wait()
            results.append(services.submit_rating(a.pk, users["r1"], full_scores(), rid))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.rating.pk for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert Rating.objects.count() == 1
