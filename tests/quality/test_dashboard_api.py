"""The dashboard's JSON reads: ratings over time per rater, consensus histograms, who may read."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from annotation import services
from annotation.models import ConsensusLabel, ItemKind, ProjectImage, Rating
from annotation.services.quality import refresh_statistics
from humanbeauty.standard import DIMENSION_KEYS, level_to_score
from tests.conftest import client_for, full_scores, new_request_id
from tests.quality.conftest import SimRater, make_references, rate_until_done

pytestmark = pytest.mark.django_db



def add_user(project, name, role):
    services.add_member(project, name, role)
    return get_user_model().objects.get(username=name)


def spread_over_days(project, days):
    """Backdate the project's ratings: rating i (in id order) to days[i % len(days)] ago."""
    base = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    ids = list(Rating.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    for i, rating_id in enumerate(ids):
        Rating.objects.filter(pk=rating_id).update(
            created_at=base - timedelta(days=days[i % len(days)])
        )


@pytest.fixture
def simulated(make_project):
    project, images, users = make_project(10, overlap=3, raters=["c1", "c2", "rnd"])
    make_references(project, images[:2], ItemKind.GOLD)
    project.gold_rate = 0.3
    project.save()
    kinds = {"c1": "careful", "c2": "careful", "rnd": "random"}
    for seed, (name, kind) in enumerate(kinds.items()):
        rate_until_done(project, users[name], SimRater(kind, seed))
    users["rev"] = add_user(project, "rev", "reviewer")
    return project, images, users


def test_timeline_counts_production_ratings_per_day_with_empty_days(simulated):
    project, _, users = simulated
    # 5, 4 and 2 days ago: days 3 and 1 and today are empty buckets between and after
    spread_over_days(project, [5, 4, 2])
    body = client_for(users["rev"]).get(f"/api/projects/{project.pk}/timeline/").json()
    assert body["bucket"] == "day"
    production = Rating.objects.filter(
        project=project, assignment__project_image__kind=ItemKind.PRODUCTION
    )
    points = body["points"]
    assert len(points) == 4  # days -5, -4, -3 (empty), -2
    assert points[2]["n"] == 0
    assert sum(p["n"] for p in points) == production.count() == 8 * 3
    assert points[-1]["cumulative"] == production.count()
    assert [p["cumulative"] for p in points] == sorted(p["cumulative"] for p in points)
    by_name = {r["username"]: r for r in body["raters"]}
    assert set(by_name) == {"c1", "c2", "rnd"}
    for name, entry in by_name.items():
        mine = Rating.objects.filter(project=project, rater=users[name])
        assert entry["n"] == mine.filter(assignment__project_image__kind="production").count()
        assert entry["n_reference"] == mine.filter(assignment__project_image__kind="gold").count()
        assert sum(entry["series"]) == entry["n"] and len(entry["series"]) == len(points)
        assert entry["median_seconds"] >= 0
    assert sum(r["n_reference"] for r in body["raters"]) > 0  # gold answers are work too
    progress = body["progress"]
    assert progress["ratings_required"] == 8 * 3 and progress["ratings_done"] == 8 * 3
    assert progress["images"] == 8 and progress["images_complete"] == 8


def test_timeline_picks_hours_for_a_short_span_and_honours_the_bucket_asked(simulated):
    project, _, users = simulated
    client = client_for(users["rev"])
    body = client.get(f"/api/projects/{project.pk}/timeline/").json()
    assert body["bucket"] == "hour"  # everything was rated just now
    assert len(body["points"]) == 1 and body["points"][0]["n"] == 24
    assert client.get(f"/api/projects/{project.pk}/timeline/?bucket=day").json()["bucket"] == "day"
    spread_over_days(project, [0, 2])
    hourly = client.get(f"/api/projects/{project.pk}/timeline/?bucket=hour").json()
    assert hourly["bucket"] == "hour" and len(hourly["points"]) == 2 * 24 + 1
    assert sum(p["n"] for p in hourly["points"]) == 24
    weekly = client.get(f"/api/projects/{project.pk}/timeline/?bucket=week").json()
    assert weekly["bucket"] == "week" and sum(p["n"] for p in weekly["points"]) == 24
    assert 1 <= len(weekly["points"]) <= 2
    bad = client.get(f"/api/projects/{project.pk}/timeline/?bucket=minute")
    assert bad.status_code == 400


def test_timeline_of_a_project_without_ratings(make_project):
    project, _, _ = make_project(2, raters=["a"])
    rev = add_user(project, "rev", "reviewer")
    body = client_for(rev).get(f"/api/projects/{project.pk}/timeline/").json()
    assert body["points"] == [] and body["raters"] == []
    assert body["progress"]["ratings_required"] == 2 * 3


def rate_all(project, users, scores_by_rater):
    for name, scores in scores_by_rater.items():
        while (task := services.next_task(project, users[name])) is not None:
            services.submit_rating(task.pk, users[name], scores, new_request_id())


def test_histograms_of_the_consensus_final_wins_excluded_left_out(make_project):
    project, images, users = make_project(4, overlap=3, raters=["a", "b", "c"])
    same = full_scores(4, outfit=None)  # 0.7 everywhere, outfit not applicable
    rate_all(project, users, {"a": same, "b": same, "c": same})
    refresh_statistics(project)
    ConsensusLabel.objects.filter(project=project, image=images[0]).update(
        final=full_scores(1)  # 0.1 everywhere, outfit included
    )
    ProjectImage.objects.filter(project=project, image=images[1]).update(excluded=True)
    rev = add_user(project, "rev", "reviewer")

    body = client_for(rev).get(f"/api/projects/{project.pk}/histograms/").json()
    assert body["bins"] == 10 and len(body["edges"]) == 11
    assert body["edges"][0] == 0 and body["edges"][-1] == 1
    assert body["n_images"] == 3
    assert list(body["dimensions"]) == list(DIMENSION_KEYS)
    looks = body["dimensions"]["looks"]
    assert (level_to_score(1), level_to_score(4)) == (0.1, 0.7)
    expected = [0] * 10
    expected[1] += 1  # the final score 0.1: bins are [low, high), an edge opens its bin
    expected[7] += 2  # two computed consensus labels of 0.7
    assert looks["counts"] == expected and looks["n"] == 3 and looks["not_applicable"] == 0
    assert looks["mean"] == pytest.approx((0.1 + 0.7 + 0.7) / 3)
    outfit = body["dimensions"]["outfit"]
    assert outfit["n"] == 1 and outfit["not_applicable"] == 2 and sum(outfit["counts"]) == 1
    for entry in body["dimensions"].values():
        assert sum(entry["counts"]) == entry["n"]
        assert entry["n"] + entry["not_applicable"] == body["n_images"]

    five = client_for(rev).get(f"/api/projects/{project.pk}/histograms/?bins=5").json()
    assert five["dimensions"]["looks"]["counts"] == [1, 0, 0, 2, 0]  # one per verbal level
    for bad in ("1", "51", "ten"):
        response = client_for(rev).get(f"/api/projects/{project.pk}/histograms/?bins={bad}")
        assert response.status_code == 400, bad


def test_who_may_read_the_dashboard_endpoints(simulated):
    project, _, users = simulated
    researcher = get_user_model().objects.create_user("res")
    researcher.groups.add(Group.objects.get_or_create(name="researcher")[0])
    other, _ = services.get_or_create_project("other")
    stranger = add_user(other, "stranger", "reviewer")
    for path in ("timeline", "histograms"):
        url = f"/api/projects/{project.pk}/{path}/"
        assert client_for(users["c1"]).get(url).status_code == 403, path  # annotator
        # a reviewer elsewhere gets what a missing project gives (#11: no existence oracle)
        assert client_for(stranger).get(url).status_code == 404, path
        assert APIClient().get(url).status_code == 401, path
        assert client_for(users["rev"]).get(url).status_code == 200, path
        assert client_for(researcher).get(url).status_code == 200, path
    assert client_for(users["rev"]).get("/api/projects/999999/timeline/").status_code == 404


def test_the_endpoints_are_in_the_openapi_schema(simulated):
    _, _, users = simulated
    schema = client_for(users["rev"]).get("/api/schema/?format=json").json()
    for path in ("/api/projects/{id}/timeline/", "/api/projects/{id}/histograms/"):
        assert "get" in schema["paths"][path]
    assert {p["name"] for p in schema["paths"]["/api/projects/{id}/timeline/"]["get"][
        "parameters"]} >= {"bucket"}
