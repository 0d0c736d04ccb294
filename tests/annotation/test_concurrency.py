"""Many raters at once on PostgreSQL: nothing lost, nothing doubled, overlap exact."""

import random
import threading

import pytest
from django.db import connection
from django.db.models import Count

from annotation import services
from annotation.models import Assignment, AssignmentStatus, ProjectImage, Rating
from tests.conftest import full_scores, new_request_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

N_RATERS = 20
N_IMAGES = 40
OVERLAP = 3


def test_twenty_raters_hammering_next_and_submit(make_project):
    project, images, users = make_project(
        N_IMAGES, overlap=OVERLAP, raters=[f"rater{i:02d}" for i in range(N_RATERS)]
    )
    barrier = threading.Barrier(N_RATERS)
    submitted: dict[str, list[int]] = {name: [] for name in users}
    errors: list[BaseException] = []

    def work(name: str, user) -> None:
        rng = random.Random(name)
        try:
            barrier.wait()
            held: list[int] = []
            while True:
                # like the rater page: the lease on screen plus one preloaded
                while len(held) < 2:
                    task = services.next_task(project, user, exclude=held)
                    if task is None:
                        break
                    assert task.pk not in held
                    held.append(task.pk)
                if not held:
                    break
                task_id = held.pop(0)
                rid = new_request_id()
                result = services.submit_rating(task_id, user, full_scores(rng.randint(1, 5)), rid)
                if rng.random() < 0.2:  # a client retry must not create anything
                    again = services.submit_rating(task_id, user, full_scores(), rid)
                    assert again.rating.pk == result.rating.pk and not again.created
                submitted[name].append(result.rating.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n, u)) for n, u in users.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a rater thread hung"
    assert not errors, errors[:3]

    per_image = dict(
        Rating.objects.filter(project=project).values_list("image").annotate(n=Count("id"))
    )
    assert per_image == {img.pk: OVERLAP for img in images}
    pairs = Rating.objects.filter(project=project).values_list("image", "rater")
    assert len(set(pairs)) == len(pairs), "a rater rated an image twice"
    every_submit = [pk for pks in submitted.values() for pk in pks]
    assert len(every_submit) == N_IMAGES * OVERLAP
    assert set(Rating.objects.values_list("pk", flat=True)) == set(every_submit)
    assert not ProjectImage.objects.filter(project=project).exclude(leased=0).exists()
    assert not Assignment.objects.filter(status=AssignmentStatus.ACTIVE).exists()
    assert services.next_task(project, users["rater00"]) is None
