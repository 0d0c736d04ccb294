"""Issue #10, finding 5: screening finds outliers; it never blanks a small project's consensus.

No rater is screened before sharing the project's minimum of images with others; automatic
screening never excludes a majority; every exclusion carries its reason; a manager's decision
wins over screening (audited) until undone.
"""

from __future__ import annotations

import random

import pytest
from django.contrib.auth import get_user_model

from annotation import services
from annotation.models import AuditEvent, ConsensusLabel, Membership, ProjectStats
from annotation.services.quality import refresh_statistics
from tests.conftest import client_for, full_scores, new_request_id
from tests.quality.conftest import SimRater, rate_until_done

pytestmark = pytest.mark.django_db



def excluded_names(project) -> set[str]:
    return set(
        Membership.objects.filter(project=project, excluded=True).values_list(
            "user__username", flat=True
        )
    )


def round_robin(project, users, sims) -> None:
    rng = random.Random(5)
    active = set(sims)
    while active:
        for name in sorted(active):
            if rate_until_done(project, users[name], sims[name], rng=rng, limit=1) == 0:
                active.discard(name)


def test_a_small_project_of_three_raters_keeps_every_rater(make_project):
    # Three raters who disagree on six shared images: under the old rule all three fell
    # below the correlation threshold and the consensus went blank.
    project, images, users = make_project(6, overlap=3, raters=["a", "b", "c"])
    levels = {"a": [1, 2, 3, 4, 5, 1], "b": [5, 4, 3, 2, 1, 5], "c": [3, 5, 1, 4, 2, 2]}
    for name, seq in levels.items():
        for level in seq:
            task = services.next_task(project, users[name])
            services.submit_rating(task.pk, users[name], full_scores(level), new_request_id())
    report = refresh_statistics(project, only_stale=False)
    assert report.raters_excluded == []
    assert excluded_names(project) == set()
    labels = ConsensusLabel.objects.filter(project=project)
    assert labels.count() == 6
    assert all(lab.scores["looks"]["n"] == 3 for lab in labels)
    # The manager is told why nobody was screened yet.
    services.add_member(project, "rev", "reviewer")
    rev = get_user_model().objects.get(username="rev")
    rows = {r["username"]: r for r in client_for(rev).get(
        f"/api/projects/{project.pk}/raters/").json()}
    note = rows["a"]["screening_note"]
    assert "6 images" in note and "20" in note


def test_a_planted_random_rater_among_six_is_still_screened_with_its_reason(make_project):
    names = ["c1", "c2", "c3", "c4", "c5", "rnd"]
    project, images, users = make_project(24, overlap=6, raters=names)
    sims = {n: SimRater("random" if n == "rnd" else "careful", seed=i) for i, n in enumerate(names)}
    round_robin(project, users, sims)
    report = refresh_statistics(project, only_stale=False)
    assert report.raters_excluded == ["rnd"]
    member = Membership.objects.get(project=project, user=users["rnd"])
    assert member.excluded and member.exclusion_source == "screening"
    assert "correlation" in member.exclusion_reason
    services.add_member(project, "rev", "reviewer")
    rev = get_user_model().objects.get(username="rev")
    rows = {r["username"]: r for r in client_for(rev).get(
        f"/api/projects/{project.pk}/raters/").json()}
    assert rows["rnd"]["excluded"] and rows["rnd"]["exclusion_reason"] == member.exclusion_reason
    assert rows["rnd"]["exclusion_source"] == "screening"
    assert not rows["c1"]["excluded"] and rows["c1"]["exclusion_reason"] == ""


def test_screening_never_excludes_a_majority(make_project):
    # Four random raters and two careful ones: low agreement everywhere, not outliers.
    names = ["r1", "r2", "r3", "r4", "c1", "c2"]
    project, images, users = make_project(24, overlap=6, raters=names)
    sims = {n: SimRater("random" if n.startswith("r") else "careful", seed=i)
            for i, n in enumerate(names)}
    round_robin(project, users, sims)
    report = refresh_statistics(project, only_stale=False)
    assert len(report.raters_excluded) < len(names) / 2
    assert len(excluded_names(project)) < len(names) / 2
    warning = ProjectStats.objects.get(project=project).screening["warning"]
    assert "low agreement" in warning
    assert all(lab.scores["looks"] for lab in ConsensusLabel.objects.filter(project=project))


def test_a_managers_reversal_holds_across_refreshes_and_is_audited(make_project):
    names = ["c1", "c2", "c3", "c4", "c5", "rnd"]
    project, images, users = make_project(24, overlap=6, raters=names)
    sims = {n: SimRater("random" if n == "rnd" else "careful", seed=i) for i, n in enumerate(names)}
    round_robin(project, users, sims)
    refresh_statistics(project, only_stale=False)
    assert excluded_names(project) == {"rnd"}
    services.add_member(project, "rev", "reviewer")
    rev = get_user_model().objects.get(username="rev")
    client = client_for(rev)
    url = f"/api/projects/{project.pk}/raters/{{}}/exclusion/"

    bad = client.post(url.format("rnd"), {"decision": "maybe"}, format="json")
    assert bad.status_code == 400
    answer = client.post(
        url.format("rnd"), {"decision": "include", "reason": "checked by hand"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["excluded"] is False and answer.json()["exclusion_source"] == "manager"
    for _ in range(2):
        refresh_statistics(project, only_stale=False)
        assert excluded_names(project) == set()
    label = ConsensusLabel.objects.filter(project=project).first()
    assert label.scores["looks"]["n"] == 6  # rnd counts again
    event = AuditEvent.objects.get(project=project, action="rater_included")
    assert event.actor == rev and event.subject == users["rnd"]
    assert event.details["reason"] == "checked by hand"

    # Excluding a careful rater by hand also holds, with the manager's reason shown.
    client.post(url.format("c1"), {"decision": "exclude", "reason": "left early"}, format="json")
    refresh_statistics(project, only_stale=False)
    member = Membership.objects.get(project=project, user=users["c1"])
    assert member.excluded and member.exclusion_reason == "left early"
    assert ConsensusLabel.objects.filter(project=project).first().scores["looks"]["n"] == 5

    # Undo: screening decides again.
    client.post(url.format("rnd"), {"decision": "auto"}, format="json")
    client.post(url.format("c1"), {"decision": "auto"}, format="json")
    refresh_statistics(project, only_stale=False)
    assert excluded_names(project) == {"rnd"}
    restored = AuditEvent.objects.filter(project=project, action="rater_screening_restored")
    assert restored.count() == 2
    # annotators may not decide
    other = client_for(users["c2"]).post(url.format("rnd"), {"decision": "include"}, format="json")
    assert other.status_code == 403
