"""Refreshes racing ratings on PostgreSQL (real threads): no rating is ever left out of a
consensus that is marked fresh, and nothing deadlocks."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection

from annotation import services
from annotation.models import ConsensusLabel, ProjectImage
from annotation.services.quality import ensure_fresh, refresh_statistics
from tests.conftest import full_scores, new_request_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_ratings_during_refreshes_are_never_lost_from_a_fresh_label(make_project):
    raters = [f"r{i}" for i in range(6)]
    project, images, users = make_project(12, overlap=3, raters=raters)
    errors: list[BaseException] = []
    raters_done = threading.Event()
    refreshes = [0]

    def rate(name: str) -> None:
        rng = random.Random(name)
        try:
            while (task := services.next_task(project, users[name])) is not None:
                scores = full_scores(rng.randint(1, 5))
                services.submit_rating(task.pk, users[name], scores, new_request_id())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def refresh() -> None:
        try:
            while not raters_done.is_set():
                refresh_statistics(project)
                refreshes[0] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=rate, args=(n,)) for n in raters]
    refreshers = [threading.Thread(target=refresh) for _ in range(2)]
    for t in refreshers + workers:
        t.start()
    for t in workers:
        t.join(timeout=300)
    raters_done.set()
    for t in refreshers:
        t.join(timeout=300)
    assert not errors, errors
    assert refreshes[0] >= 2

    # The invariant: an image marked fresh has a label computed from all of its ratings.
    labels = {c.image_id: c for c in ConsensusLabel.objects.filter(project=project)}
    items = ProjectImage.objects.filter(project=project)
    assert sum(i.completed for i in items) == 12 * 3
    for item in items:
        if not item.consensus_stale:
            label = labels[item.image_id]
            assert label.n_ratings == item.completed, item
            assert label.scores["looks"]["n"] == item.completed
    # And what is stale is caught up by ensure_fresh, equal to a full refresh.
    ensure_fresh(project)
    after = {c.image_id: c.scores for c in ConsensusLabel.objects.filter(project=project)}
    assert len(after) == 12
    refresh_statistics(project, only_stale=False)
    assert {c.image_id: c.scores for c in ConsensusLabel.objects.filter(project=project)} == after
