"""Gold items look like production items in every field and timing a rater sees (#11.6).

A gold lease never expired, so `next` handed an old one back with `expires_at` in the past,
which no production lease ever shows."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.models import Assignment, ItemKind
from annotation.services.quality import set_references
from tests.conftest import full_scores

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", [ItemKind.GOLD, ItemKind.PRODUCTION])
def test_a_lease_left_past_its_expiry_is_not_handed_back(make_project, kind):
    project, images, users = make_project(6, raters=["r1"], lease_minutes=30)
    project.gold_rate = 1.0 if kind == ItemKind.GOLD else 0.0
    project.save()
    set_references(project, [(img, full_scores()) for img in images[:3]], ItemKind.GOLD)
    from annotation.models import Membership

    Membership.objects.filter(project=project).update(status="certified")
    rater = users["r1"]
    t0 = timezone.now()
    first = services.next_task(project, rater, now=t0, rng=random.Random(0))
    assert first.project_image.kind == kind
    later = t0 + timedelta(minutes=31)
    again = services.next_task(project, rater, now=later, rng=random.Random(0))
    # Production and gold alike: a new lease that expires in the future, never the stale one.
    assert again.pk != first.pk
    assert again.expires_at > later
    assert Assignment.objects.get(pk=first.pk).expires_at < later
