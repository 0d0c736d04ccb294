"""The next-task rules, one by one (PostgreSQL under `make test`)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.models import Assignment, AssignmentStatus, ProjectImage
from tests.conftest import full_scores, new_request_id

pytestmark = pytest.mark.django_db


def rate(project, user, **kw):
    a = services.next_task(project, user, **kw)
    assert a is not None
    services.submit_rating(a.pk, user, full_scores(), new_request_id())
    return a


def test_own_live_lease_comes_back_first(make_project):
    project, _, users = make_project(4)
    first = services.next_task(project, users["r1"])
    again = services.next_task(project, users["r1"])
    assert again.pk == first.pk
    assert Assignment.objects.filter(rater=users["r1"]).count() == 1


def test_exclude_gives_a_second_lease_for_preloading_and_no_more(make_project):
    project, _, users = make_project(4)
    first = services.next_task(project, users["r1"])
    second = services.next_task(project, users["r1"], exclude=[first.pk])
    assert second.pk != first.pk and second.image_id != first.image_id
    # the cap: a client cannot hoard leases by excluding everything it holds
    assert services.next_task(project, users["r1"], exclude=[first.pk, second.pk]) is None
    # and without exclude the oldest live lease comes back
    assert services.next_task(project, users["r1"]).pk == first.pk


def test_an_image_never_goes_to_the_same_rater_twice(make_project):
    project, images, users = make_project(3, overlap=3, raters=["r1"])
    seen = []
    while (a := services.next_task(project, users["r1"])) is not None:
        seen.append(a.image_id)
        if len(seen) % 2:
            services.submit_rating(a.pk, users["r1"], full_scores(), new_request_id())
        else:
            services.skip_assignment(a.pk, users["r1"], "skip")
    assert sorted(seen) == sorted(i.pk for i in images)


def test_overlap_caps_ratings_plus_live_leases(make_project):
    project, _, users = make_project(1, overlap=2, raters=["r1", "r2", "r3"])
    assert services.next_task(project, users["r1"]) is not None
    assert services.next_task(project, users["r2"]) is not None
    # two live leases fill the only image's two slots
    assert services.next_task(project, users["r3"]) is None
    item = ProjectImage.objects.get(project=project)
    assert (item.leased, item.completed, item.remaining) == (2, 0, 0)


def test_started_images_come_before_fresh_ones(make_project):
    project, _, users = make_project(5, overlap=3, raters=["r1", "r2"])
    a1 = rate(project, users["r1"])
    a2 = services.next_task(project, users["r2"])
    assert a2.image_id == a1.image_id


def test_expired_leases_free_their_slot(make_project):
    project, _, users = make_project(1, overlap=1, raters=["r1", "r2"])
    a = services.next_task(project, users["r1"])
    assert services.next_task(project, users["r2"]) is None
    later = a.expires_at + timedelta(seconds=1)
    b = services.next_task(project, users["r2"], now=later)
    assert b is not None and b.image_id == a.image_id
    a.refresh_from_db()
    assert a.status == AssignmentStatus.EXPIRED
    item = ProjectImage.objects.get(project=project)
    assert (item.leased, item.completed) == (1, 0)


def test_expired_own_lease_is_not_offered_again_to_its_rater(make_project):
    project, _, users = make_project(2, overlap=1, raters=["r1"])
    a = services.next_task(project, users["r1"])
    b = services.next_task(project, users["r1"], now=a.expires_at + timedelta(seconds=1))
    assert b.image_id != a.image_id


def test_non_raters_get_no_tasks(make_project):
    project, _, users = make_project(2, raters=["cur"], role="curator")
    with pytest.raises(services.NotAMember):
        services.next_task(project, users["cur"])


def test_nothing_left_returns_none(make_project):
    project, _, users = make_project(2, overlap=1, raters=["r1", "r2"])
    rate(project, users["r1"])
    rate(project, users["r1"])
    assert services.next_task(project, users["r2"]) is None
    assert services.next_task(project, users["r1"]) is None


def test_inactive_project_hands_out_nothing_new(make_project):
    project, _, users = make_project(2, raters=["r1"])
    project.is_active = False
    project.save()
    assert services.next_task(project, users["r1"]) is None


def test_lease_length_follows_the_project(make_project):
    project, _, users = make_project(1, raters=["r1"], lease_minutes=7)
    now = timezone.now()
    a = services.next_task(project, users["r1"], now=now)
    assert a.expires_at == now + timedelta(minutes=7)
