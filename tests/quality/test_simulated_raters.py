"""Careful, biased and random raters: gold and screening find the random one, and screening
makes the consensus closer to the truth."""

import random

import numpy as np
import pytest
from scipy import stats

from annotation.models import ConsensusLabel, ItemKind, Membership, RaterStatus
from annotation.services.quality import refresh_statistics
from tests.quality.conftest import SimRater, make_references, rate_until_done, true_scores

pytestmark = pytest.mark.django_db

RATERS = {
    "c1": "careful",
    "c2": "careful",
    "c3": "careful",
    "c4": "careful",
    "biased": "biased",
    "random": "random",
}


def consensus_vs_truth(project) -> float:
    labels = ConsensusLabel.objects.filter(project=project)
    mos = [lab.scores["comprehensive_aesthetic"]["mos"] for lab in labels]
    truth = [true_scores(lab.image_id)["comprehensive_aesthetic"] for lab in labels]
    return stats.spearmanr(mos, truth).statistic


def test_gold_and_screening_catch_the_random_rater(make_project):
    project, images, users = make_project(48, overlap=4, raters=list(RATERS))
    make_references(project, images[:8], ItemKind.GOLD)
    project.gold_rate, project.gold_min_n, project.screening = 0.35, 3, "none"
    project.save()
    rng = random.Random(7)
    # round-robin so every rater meets every other on many images
    sims = {name: SimRater(kind, seed=i) for i, (name, kind) in enumerate(RATERS.items())}
    active = set(RATERS)
    while active:
        for name in sorted(active):
            if rate_until_done(project, users[name], sims[name], rng=rng, limit=1) == 0:
                active.discard(name)

    statuses = dict(
        Membership.objects.filter(project=project).values_list("user__username", "status")
    )
    assert statuses["random"] == RaterStatus.FLAGGED
    assert all(statuses[n] == RaterStatus.CERTIFIED for n in ("c1", "c2", "c3", "c4"))
    random_member = Membership.objects.get(user=users["random"])
    assert random_member.gold_n >= 3 and random_member.gold_mae > project.gold_max_mae
    assert "gold MAE" in random_member.status_reason

    report = refresh_statistics(project, only_stale=False)
    assert report.raters_excluded == []
    without = consensus_vs_truth(project)
    project.screening = "correlation"
    project.save()
    report = refresh_statistics(project, only_stale=False)
    assert report.raters_excluded == ["random"]
    with_screening = consensus_vs_truth(project)
    assert with_screening > without
    members = {m.user.username: m for m in Membership.objects.filter(project=project)}
    assert members["biased"].bias > 0.08 > abs(members["c1"].bias)
    assert members["random"].excluded and not members["biased"].excluded
    # excluded, not deleted
    assert users["random"].ratings.count() > 0
    assert np.isfinite(with_screening)
