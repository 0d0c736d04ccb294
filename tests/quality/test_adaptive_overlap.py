"""Adaptive overlap adds raters exactly where disagreement is high, never beyond the maximum,
with the foundation's concurrency guarantees intact."""

import threading
import time

import pytest
from django.db import connection
from django.db.models import Count

from annotation import services
from annotation.models import ProjectImage, Rating
from humanbeauty.standard import DIMENSION_KEYS
from tests.conftest import new_request_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

N_IMAGES, N_RATERS, OVERLAP, MAX_OVERLAP = 16, 8, 2, 4


def scores_for(image_index: int, rater_index: int) -> dict[str, float]:
    """Even images: everyone agrees. Odd images: every rater says something else, so any two
    of them differ by at least 1/7 (a standard deviation of 0.1 or more)."""
    value = 0.5 if image_index % 2 == 0 else rater_index / (N_RATERS - 1)
    return dict.fromkeys(DIMENSION_KEYS, value)


def test_disputed_images_get_more_raters_up_to_the_maximum(make_project):
    names = [f"r{i}" for i in range(N_RATERS)]
    project, images, users = make_project(N_IMAGES, overlap=OVERLAP, raters=names)
    project.max_overlap, project.disagreement_threshold = MAX_OVERLAP, 0.05
    project.save()
    index_of = {img.pk: i for i, img in enumerate(images)}
    errors = []
    barrier = threading.Barrier(N_RATERS)

    def work(rater_index: int, user) -> None:
        try:
            barrier.wait()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                task = services.next_task(project, user)
                if task is None:
                    # Like a rater coming back later: others' ratings may still add a slot.
                    if not ProjectImage.objects.filter(project=project, leased__gt=0).exists():
                        break
                    time.sleep(0.05)
                    continue
                services.submit_rating(
                    task.pk,
                    user,
                    scores_for(index_of[task.image_id], rater_index),
                    new_request_id(),
                )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, users[n])) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]

    counts = dict(Rating.objects.values_list("image").annotate(n=Count("id")))
    for item in ProjectImage.objects.filter(project=project):
        i = index_of[item.image_id]
        assert counts[item.image_id] == item.completed == item.target
        if i % 2 == 0:
            assert item.target == OVERLAP, f"agreed image {i} got extra raters"
        else:
            assert item.target == MAX_OVERLAP, f"disputed image {i} stopped at {item.target}"
    pairs = list(Rating.objects.values_list("image", "rater"))
    assert len(pairs) == len(set(pairs))


def test_adaptive_overlap_is_off_without_a_maximum(make_project):
    project, images, users = make_project(1, overlap=2, raters=["a", "b", "c"])
    for i, name in enumerate(["a", "b"]):
        task = services.next_task(project, users[name])
        services.submit_rating(task.pk, users[name], scores_for(1, i), new_request_id())
    assert ProjectImage.objects.get(project=project).target == 2
    assert services.next_task(project, users["c"]) is None
