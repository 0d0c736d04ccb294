"""The production queue's bounded pick (annotation/services/queue.py) and excluded images."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.models import Assignment, ProjectImage, ReviewItem
from annotation.services.queue import QUEUE_WINDOW
from annotation.services.review import decide
from annotation.services.review_queue import queue_for_review
from tests.conftest import full_scores, new_request_id

pytestmark = pytest.mark.django_db


def rate(project, user):
    a = services.next_task(project, user)
    assert a is not None
    services.submit_rating(a.pk, user, full_scores(), new_request_id())
    return a


def test_a_rater_far_ahead_of_the_others_still_gets_work_in_queue_order(make_project):
    # r1 rates more images than the head window holds; each still waits for a second rater,
    # so r1's own history fills the head of the queue.
    n = QUEUE_WINDOW + 6
    project, images, users = make_project(n, overlap=2, raters=["r1", "r2", "r3"])
    ids = sorted(ProjectImage.objects.filter(project=project).values_list("image_id", flat=True))
    for _ in range(QUEUE_WINDOW + 2):
        rate(project, users["r1"])
    rated = set(Assignment.objects.filter(rater=users["r1"]).values_list("image_id", flat=True))
    assert rated == set(ids[: QUEUE_WINDOW + 2])

    # r1 sees only their own rated images in the window: the next one is the first fresh image.
    a = services.next_task(project, users["r1"])
    assert a.image_id == ids[QUEUE_WINDOW + 2]
    # r2 gets started images first, in queue order, from the same window.
    b = services.next_task(project, users["r2"])
    assert b.image_id == ids[0]
    # Nobody is ever given an image twice, whichever step found it.
    services.submit_rating(a.pk, users["r1"], full_scores(), new_request_id())
    seen = list(Assignment.objects.filter(rater=users["r1"]).values_list("image_id", flat=True))
    assert len(seen) == len(set(seen))


def test_with_no_fresh_image_left_the_pick_searches_the_whole_queue(make_project):
    # r1 has rated more images than the head window holds, no image is fresh any more, and
    # the one image r1 has not seen (started by r2) lies beyond the window: r1 still gets it.
    n = QUEUE_WINDOW + 2
    project, _, users = make_project(n, overlap=2, raters=["r1", "r2"])
    ids = sorted(ProjectImage.objects.filter(project=project).values_list("image_id", flat=True))
    for _ in range(n - 1):
        rate(project, users["r1"])
    # r2 holds a lease on the last image (taken out of queue order, as after an expiry race).
    item = ProjectImage.objects.get(project=project, image_id=ids[-1])
    Assignment.objects.create(
        project=project,
        project_image=item,
        image_id=item.image_id,
        rater=users["r2"],
        expires_at=timezone.now() + timedelta(minutes=30),
    )
    ProjectImage.objects.filter(pk=item.pk).update(leased=1)
    assert not ProjectImage.objects.filter(project=project, completed=0, leased=0).exists()

    a = services.next_task(project, users["r1"])
    assert a.image_id == ids[-1]
    assert services.next_task(project, users["r1"], exclude=[a.pk]) is None


@pytest.mark.parametrize("ending", ["skip", "expiry"])
def test_an_excluded_image_does_not_return_to_the_queue_when_its_live_lease_ends(
    make_project, ending
):
    project, images, users = make_project(1, overlap=2, raters=["r1", "r2"])
    services.add_member(project, "rev", "reviewer")
    reviewer = type(users["r1"]).objects.get(username="rev")
    lease = services.next_task(project, users["r1"])
    queue_for_review(project.pk, lease.image_id, ["flag:inappropriate"])
    decide(ReviewItem.objects.get(project=project), reviewer, "exclude")
    later = lease.expires_at + timedelta(minutes=1)
    if ending == "skip":
        services.skip_assignment(lease.pk, users["r1"], "skip")
    assert services.next_task(project, users["r2"], now=later) is None
    item = ProjectImage.objects.get(project=project)
    assert item.excluded and item.leased == 0


def test_an_empty_pick_sweeps_expired_leases_even_between_sweeps(make_project):
    # next() sweeps expired leases at most every RECLAIM_EVERY; a rater who would otherwise
    # hear "nothing left" must still get the image an expired lease holds.
    project, _, users = make_project(1, overlap=1, raters=["r1", "r2"])
    t0 = timezone.now()
    lease = services.next_task(project, users["r1"], now=t0)  # sweeps at t0
    Assignment.objects.filter(pk=lease.pk).update(expires_at=t0)  # ran out at once
    soon = t0 + services.workflow.RECLAIM_EVERY / 2  # no periodic sweep due yet
    other = services.next_task(project, users["r2"], now=soon)
    assert other is not None and other.image_id == lease.image_id
    item = ProjectImage.objects.get(project=project)
    assert (item.leased, item.remaining) == (1, 0)
