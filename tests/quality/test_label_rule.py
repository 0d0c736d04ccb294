"""One rule for what an image's label is, read by the dashboard and by releases alike: a
reviewer's final scores win over the computed MOS, and images a reviewer excluded are left
out."""

import pytest
from django.contrib.auth import get_user_model

from annotation import selectors, services
from annotation.models import ConsensusLabel
from annotation.services.quality import refresh_statistics
from annotation.services.review import decide
from annotation.services.review_queue import queue_for_review
from humanbeauty.standard import DIMENSION_KEYS
from modeling.selectors import expert_rows
from tests.conftest import full_scores, new_request_id

pytestmark = pytest.mark.django_db


def test_label_scores_final_wins_and_keeps_the_raters_counts():
    computed = {k: {"mos": 0.7, "std": 0.1, "n": 3} for k in DIMENSION_KEYS}
    computed["outfit"] = None  # most raters said not applicable
    plain = selectors.label_scores(computed, None)
    outfit = DIMENSION_KEYS.index("outfit")
    assert plain.scores[0] == 0.7 and plain.std[0] == 0.1 and plain.n[0] == 3
    assert plain.scores[outfit] is None and plain.std[outfit] is None and plain.n[outfit] == 0

    final = selectors.label_scores(computed, full_scores(1, looks=None))
    looks = DIMENSION_KEYS.index("looks")
    assert final.scores[0] == 0.1 and final.std[0] == 0.0 and final.n[0] == 3
    assert final.scores[outfit] == 0.1 and final.n[outfit] == 0
    assert final.scores[looks] is None and final.std[looks] is None


def test_the_dashboard_and_a_release_read_the_same_labels(make_project):
    project, images, users = make_project(3, overlap=2, raters=["a", "b"])
    for name in ("a", "b"):
        while (task := services.next_task(project, users[name])) is not None:
            services.submit_rating(task.pk, users[name], full_scores(4), new_request_id())
    refresh_statistics(project)
    services.add_member(project, "rev", "reviewer")
    reviewer = get_user_model().objects.get(username="rev")
    final_image, excluded_image, plain_image = images
    for image in (final_image, excluded_image):
        queue_for_review(project.pk, image.pk, ["disagreement"])
    reviews = {r.image_id: r for r in selectors.review_queue(project)}
    decide(reviews[final_image.pk], reviewer, "set_final", final_scores=full_scores(1))
    decide(reviews[excluded_image.pk], reviewer, "exclude")
    # A label left behind for an excluded image (set before the exclusion) stays out too.
    ConsensusLabel.objects.create(
        project=project, image=excluded_image, scores={}, n_raters=2, final=full_scores(5)
    )

    kept = set(selectors.kept_labels([project]).values_list("image_id", flat=True))
    released = {row.image_id: row for row in expert_rows([project])}
    histograms = selectors.consensus_histograms(project, bins=10)
    assert kept == set(released) == {final_image.pk, plain_image.pk}
    assert histograms["n_images"] == 2
    assert released[final_image.pk].overall == 0.1 and released[plain_image.pk].overall == 0.7
    assert histograms["dimensions"]["looks"]["counts"][1] == 1  # the final 0.1
    assert histograms["dimensions"]["looks"]["counts"][7] == 1  # the computed 0.7
