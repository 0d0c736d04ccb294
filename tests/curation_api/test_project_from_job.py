"""Into annotation: a rating project from a job's accepted images, all or a stratified sample."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.models import AuditEvent, Membership, Project, ProjectImage
from annotation.services.from_curation import (
    Candidate,
    project_from_job,
    stratified_sample,
)
from curation.models import Decision, FilterJob, Image, JobStatus, Source, SourceItem

pytestmark = pytest.mark.django_db(transaction=True)


def project_images(name: str) -> set[int]:
    return set(ProjectImage.objects.filter(project__name=name).values_list("image_id", flat=True))


def accepted_image(job: FilterJob, path: str) -> int:
    return Decision.objects.get(job=job, item__path=path).item.image_id


def test_a_project_gets_exactly_the_accepted_images(client_as, finished_job, users):
    job = finished_job
    curator = client_as("curator")
    response = curator.post(f"/api/jobs/{job.pk}/project/", {"name": "Set 1"}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["images"] == data["accepted"] == 2 and data["sample"] is None
    project = Project.objects.get(pk=data["project"]["id"])
    assert (
        project.name == "Set 1" and project.overlap == 3 and project.created_by == users["curator"]
    )
    assert project_images("Set 1") == {
        accepted_image(job, "person.jpg"),
        accepted_image(job, "person_mirror.jpg"),
    }
    assert set(ProjectImage.objects.filter(project=project).values_list("target", flat=True)) == {3}
    audit = AuditEvent.objects.get(project=project)
    assert audit.action == "created_from_curation" and audit.details["job"] == job.pk

    # the final decision counts: overrides both ways
    gradient = Decision.objects.get(job=job, item__path="gradient.png")
    mirror = Decision.objects.get(job=job, item__path="person_mirror.jpg")
    for d, new in ((gradient, "accepted"), (mirror, "rejected")):
        curator.post(
            f"/api/decisions/{d.pk}/override/", {"decision": new, "reason": "by eye"}, format="json"
        )
    again = curator.post(
        f"/api/jobs/{job.pk}/project/", {"name": "Set 1b", "overlap": 2}, format="json"
    )
    assert again.status_code == 201 and again.json()["project"]["overlap"] == 2
    assert project_images("Set 1b") == {
        accepted_image(job, "person.jpg"),
        gradient.item.image_id,
    }

    taken = curator.post(f"/api/jobs/{job.pk}/project/", {"name": "Set 1"}, format="json")
    assert taken.status_code == 409 and "already exists" in taken.json()["detail"]
    assert project_images("Set 1") == {
        accepted_image(job, "person.jpg"),
        accepted_image(job, "person_mirror.jpg"),
    }  # unchanged
    assert curator.post(f"/api/jobs/{job.pk}/project/", {}, format="json").status_code == 400
    zero = curator.post(f"/api/jobs/{job.pk}/project/", {"name": "z", "sample": 0}, format="json")
    assert zero.status_code == 400
    assert (
        curator.post("/api/jobs/999999/project/", {"name": "n"}, format="json").status_code == 404
    )

    # from the source: its latest finished job
    src = curator.post(
        f"/api/sources/{job.source_id}/project/", {"name": "From source"}, format="json"
    )
    assert src.status_code == 201 and src.json()["job"] == job.pk
    assert project_images("From source") == project_images("Set 1b")

    # a running job is refused
    FilterJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    running = curator.post(f"/api/jobs/{job.pk}/project/", {"name": "Early"}, format="json")
    assert running.status_code == 409 and "still running" in running.json()["detail"]
    assert not Project.objects.filter(name="Early").exists()


def test_the_command_line(finished_job):
    job = finished_job
    out = io.StringIO()
    call_command("project_from_job", str(job.pk), "--name", "CLI", "--overlap", "2", stdout=out)
    assert f"project 'CLI' (id {Project.objects.get(name='CLI').pk}): 2 images" in out.getvalue()
    assert len(project_images("CLI")) == 2
    with pytest.raises(CommandError, match="already exists"):
        call_command("project_from_job", str(job.pk), "--name", "CLI", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no job"):
        call_command("project_from_job", "999999", "--name", "x", stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "project_from_job",
        str(job.pk),
        "--name",
        "One",
        "--sample",
        "1",
        "--seed",
        "3",
        stdout=out,
    )
    assert len(project_images("One")) == 1 and "stratified sample (seed 3)" in out.getvalue()


def scored_job(n_known: int, n_unknown: int, *, rejected: int = 10) -> FilterJob:
    """A finished job over a scored source: n_known accepted images with distinct scores,
    n_unknown accepted without a score, and some rejected ones (written directly: the sampling
    is under test here, the pipeline in tests/curation_jobs)."""
    source = Source.objects.create(name="scored", kind="manifest", score_min=0, score_max=1)
    job = FilterJob.objects.create(source=source, status=JobStatus.DONE)
    rng = np.random.default_rng(0)
    scores = rng.permutation(np.linspace(0.01, 0.99, n_known)).tolist() + [None] * n_unknown
    for i, score in enumerate(scores + [0.5] * rejected):
        image = Image.objects.create(
            file=f"images/x/{i}.jpg", sha256=f"{i:064x}", width=400, height=400, format="JPEG"
        )
        item = SourceItem.objects.create(
            source=source, path=f"{i}.jpg", raw_score=score, score=score, image=image
        )
        Decision.objects.create(
            job=job,
            item=item,
            decision="accepted" if i < len(scores) else "rejected",
            reasons=[] if i < len(scores) else ["no_face"],
        )
    return job


def test_a_stratified_sample_is_proportional_and_seeded(client_as):
    job = scored_job(100, 20)
    curator = client_as("curator")

    def sample(name, n, seed):
        response = curator.post(
            f"/api/jobs/{job.pk}/project/",
            {"name": name, "sample": n, "seed": seed},
            format="json",
        )
        assert response.status_code == 201, response.content
        return response.json()

    a = sample("A", 24, 7)
    assert a["images"] == 24 and a["accepted"] == 120 and a["seed"] == 7
    # five quantile bins of 20 known scores each, and the 20 without a score: 4 from each
    assert [(s["size"], s["taken"]) for s in a["strata"]] == [(20, 4)] * 6
    assert a["strata"][-1]["low"] is None
    lows = [s["low"] for s in a["strata"][:-1]]
    assert lows == sorted(lows)
    items = SourceItem.objects.filter(image_id__in=project_images("A"))
    scores = [i.score for i in items]
    assert sum(s is None for s in scores) == 4
    known = sorted(s for s in scores if s is not None)
    all_known = sorted(
        SourceItem.objects.filter(score__isnull=False, decisions__decision="accepted").values_list(
            "score", flat=True
        )
    )
    edges = np.quantile(all_known, [0.2, 0.4, 0.6, 0.8])
    assert Counter(np.searchsorted(edges, known, side="right")) == {b: 4 for b in range(5)}
    rejected = set(
        Decision.objects.filter(job=job, decision="rejected").values_list(
            "item__image_id", flat=True
        )
    )
    assert not project_images("A") & rejected

    b = sample("B", 24, 7)
    assert project_images("B") == project_images("A")  # the same seed: the same images
    sample("C", 24, 8)
    assert project_images("C") != project_images("A")
    everything = sample("D", 500, 1)
    assert everything["images"] == 120 and project_images("D") == {
        i.item.image_id for i in Decision.objects.filter(job=job, decision="accepted")
    }
    assert b["strata"] == a["strata"]


def test_uneven_strata_share_by_largest_remainder():
    cands = [Candidate(i, i / 100) for i in range(30)] + [
        Candidate(100 + i, None) for i in range(7)
    ]
    chosen, strata = stratified_sample(cands, 10, seed=0, bins=3)
    assert len(chosen) == 10 and len({c.image_id for c in chosen}) == 10
    # 10 each in three bins and 7 without a score: shares 2.70, 2.70, 2.70, 1.89
    assert [(s.size, s.taken) for s in strata] == [(10, 3), (10, 3), (10, 2), (7, 2)]
    assert chosen == stratified_sample(list(reversed(cands)), 10, seed=0, bins=3)[0]
    # many ties: empty quantile bins are dropped, the sample still has its size
    tied = [Candidate(i, 0.5 if i < 40 else 0.9) for i in range(50)]
    chosen, strata = stratified_sample(tied, 10, seed=1)
    assert len(chosen) == 10 and sum(s.taken for s in strata) == 10
    assert [s.size for s in strata] == [40, 10] and [s.taken for s in strata] == [8, 2]
    # no scores at all: one stratum
    chosen, strata = stratified_sample([Candidate(i, None) for i in range(9)], 4, seed=2)
    assert len(chosen) == 4 and [(s.size, s.taken) for s in strata] == [(9, 4)]


def test_projects_are_refused_for_jobs_that_accepted_nothing(client_as):
    job = scored_job(0, 0, rejected=3)
    response = client_as("admin").post(
        f"/api/jobs/{job.pk}/project/", {"name": "none"}, format="json"
    )
    assert response.status_code == 400 and "accepted no images" in response.json()["detail"]
    with pytest.raises(Exception, match="accepted no images"):
        project_from_job(job, "none")
    assert not Project.objects.exists()


def test_whoever_makes_the_project_manages_it_and_nothing_more(client_as, finished_job, users):
    """The curator who makes a project is its admin (members page, guides) without becoming a
    platform admin; other curators get nothing in it."""
    curator = client_as("curator")
    made = curator.post(f"/api/jobs/{finished_job.pk}/project/", {"name": "Mine"}, format="json")
    assert made.status_code == 201, made.content
    project = Project.objects.get(name="Mine")
    member = Membership.objects.get(project=project, user=users["curator"])
    assert (member.role, member.certified_via) == ("admin", "creator")
    assert not users["curator"].groups.filter(name="admin").exists()
    audit = AuditEvent.objects.get(project=project, action="created_from_curation")
    assert audit.details["manager"] == users["curator"].username

    members = curator.get(f"/api/projects/{project.pk}/members/")
    assert members.status_code == 200, members.content
    # a project admin who is not a platform admin may not hand out platform powers
    grant = curator.post(
        f"/api/projects/{project.pk}/members/",
        {"username": users["annotator"].username, "role": "admin"},
        format="json",
    )
    assert grant.status_code == 403, grant.content
    assert Membership.objects.filter(project=project).count() == 1
