"""Review decisions, the quality API contract, set_gold, and who may see what."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from annotation import selectors, services
from annotation.models import (
    AuditEvent,
    ConsensusLabel,
    ItemKind,
    ProjectImage,
    ProjectStats,
    Reference,
    ReviewItem,
)
from annotation.services.quality import refresh_statistics
from humanbeauty.standard import DIMENSION_KEYS
from tests.conftest import client_for, full_scores, new_request_id

pytestmark = pytest.mark.django_db



def rate_all(project, users, scores_by_rater):
    for name, scores in scores_by_rater.items():
        while (task := services.next_task(project, users[name])) is not None:
            services.submit_rating(task.pk, users[name], scores, new_request_id())


@pytest.fixture
def rated(make_project):
    project, images, users = make_project(3, overlap=3, raters=["a", "b", "c"])
    services.add_member(project, "rev", "reviewer")
    users["rev"] = get_user_model().objects.get(username="rev")
    rate_all(project, users, {"a": full_scores(1), "b": full_scores(5), "c": full_scores(3)})
    refresh_statistics(project)
    return project, images, users


def test_agreement_contract(rated):
    project, _, users = rated
    body = client_for(users["rev"]).get(f"/api/projects/{project.pk}/agreement/").json()
    assert set(body["dimensions"]) == set(DIMENSION_KEYS)
    entry = body["dimensions"]["looks"]
    assert set(entry) == {
        "krippendorff_alpha",
        "icc2_1",
        "icc2_k",
        "mean_pairwise_srcc",
        "n_images",
    }
    assert entry["n_images"] == 3


def test_agreement_is_computed_for_its_first_reader_while_the_selector_only_reads(make_project):
    project, _, users = make_project(3, overlap=3, raters=["a", "b", "c"])
    services.add_member(project, "rev", "reviewer")
    rate_all(project, users, {"a": full_scores(1), "b": full_scores(5), "c": full_scores(3)})
    ProjectStats.objects.filter(project=project).delete()  # never computed
    with pytest.raises(ProjectStats.DoesNotExist):
        selectors.project_stats(project)
    assert not ProjectStats.objects.filter(project=project).exists()

    rev = get_user_model().objects.get(username="rev")
    body = client_for(rev).get(f"/api/projects/{project.pk}/agreement/").json()
    assert body["n_ratings"] == body["n_ratings_now"] == 9
    assert body["dimensions"]["looks"]["n_images"] == 3 and body["computed_at"]


def test_raters_contract(rated):
    project, _, users = rated
    body = client_for(users["rev"]).get(f"/api/projects/{project.pk}/raters/").json()
    by_name = {e["username"]: e for e in body}
    assert {"a", "b", "c", "rev"} <= set(by_name)
    for key in ("username", "status", "gold_n", "gold_mae", "bias", "corr_with_others", "excluded"):
        assert key in by_name["a"]
    assert by_name["a"]["bias"] < 0 < by_name["b"]["bias"]  # 0.1 vs 0.9 around 0.5


def test_consensus_contract_and_review_queue(rated):
    project, images, users = rated
    body = client_for(users["rev"]).get(f"/api/projects/{project.pk}/consensus/").json()
    assert body["count"] == 3
    first = body["results"][0]
    assert first["scores"]["looks"] == {
        "mos": pytest.approx(0.5),
        "std": pytest.approx(0.4),
        "n": 3,
    }
    # 0.1 / 0.5 / 0.9 disagree beyond the default threshold: all three are queued
    queue = client_for(users["rev"]).get(f"/api/projects/{project.pk}/reviews/").json()
    assert queue["count"] == 3
    entry = queue["results"][0]
    assert "disagreement" in entry["reasons"]
    assert sorted(r["rater"] for r in entry["ratings"]) == ["a", "b", "c"]


def test_review_decisions_have_effects_and_an_audit_trail(rated):
    project, images, users = rated
    reviews = {r.image_id: r for r in ReviewItem.objects.filter(project=project)}
    client = client_for(users["rev"])
    url = "/api/reviews/{}/decision/"
    bad = client.post(
        url.format(reviews[images[0].pk].pk),
        {"decision": "set_final", "final_scores": {"looks": 3}},
        format="json",
    )
    assert bad.status_code == 400
    final = full_scores(4)
    ok = client.post(
        url.format(reviews[images[0].pk].pk),
        {"decision": "set_final", "final_scores": final, "note": "clear case"},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["status"] == "resolved"
    assert ConsensusLabel.objects.get(project=project, image=images[0]).final == final
    again = client.post(url.format(reviews[images[0].pk].pk), {"decision": "accept"}, format="json")
    assert again.status_code == 409

    client.post(url.format(reviews[images[1].pk].pk), {"decision": "more_ratings"}, format="json")
    assert ProjectImage.objects.get(project=project, image=images[1]).target == 4
    client.post(url.format(reviews[images[2].pk].pk), {"decision": "exclude"}, format="json")
    excluded = ProjectImage.objects.get(project=project, image=images[2])
    assert excluded.excluded and excluded.remaining == 0
    actions = set(AuditEvent.objects.filter(actor=users["rev"]).values_list("action", flat=True))
    assert {"review_set_final", "review_more_ratings", "review_exclude"} <= actions
    # the excluded image leaves the consensus, and a refresh does not bring it back
    assert not ConsensusLabel.objects.filter(project=project, image=images[2]).exists()
    refresh_statistics(project, only_stale=False)
    assert not ConsensusLabel.objects.filter(project=project, image=images[2]).exists()
    assert ConsensusLabel.objects.filter(project=project).count() == 2


def test_flags_go_to_the_review_queue(make_project):
    project, _, users = make_project(1, raters=["a"])
    task = services.next_task(project, users["a"])
    services.skip_assignment(task.pk, users["a"], "not_a_person")
    review = ReviewItem.objects.get(project=project)
    assert review.reasons == ["flag:not_a_person"]


def test_annotators_reach_no_quality_endpoint(rated):
    project, _, users = rated
    client = client_for(users["a"])
    for path in ("agreement", "raters", "consensus", "reviews"):
        assert client.get(f"/api/projects/{project.pk}/{path}/").status_code == 403, path
    review = ReviewItem.objects.filter(project=project).first()
    response = client.post(
        f"/api/reviews/{review.pk}/decision/", {"decision": "accept"}, format="json"
    )
    assert response.status_code == 403
    assert client.post(f"/api/projects/{project.pk}/refresh/").status_code == 403


def csv_text(rows):
    header = "image," + ",".join(DIMENSION_KEYS)
    lines = [header]
    for image, scores in rows:
        lines.append(
            f"{image},"
            + ",".join("" if scores[k] is None else str(scores[k]) for k in DIMENSION_KEYS)
        )
    return "\n".join(lines) + "\n"


def test_set_gold_cli_keeps_good_rows_and_reports_bad_ones(make_project, tmp_path):
    project, images, _ = make_project(4, raters=["a"])
    good = full_scores(4, outfit=None)
    text = csv_text(
        [
            (images[0].pk, good),
            (images[1].original_path, full_scores(2)),
            (99999, good),
            (images[2].pk, full_scores(3, looks=None)),  # looks cannot be N
        ]
    )
    path = tmp_path / "gold.csv"
    path.write_text(text)
    err = io.StringIO()
    with pytest.raises(CommandError, match="2 row"):
        call_command("set_gold", project.name, str(path), stderr=err, stdout=io.StringIO())
    assert "line 4" in err.getvalue() and "line 5" in err.getvalue()
    gold = ProjectImage.objects.filter(project=project, kind=ItemKind.GOLD)
    assert set(gold.values_list("image_id", flat=True)) == {images[0].pk, images[1].pk}
    ref = Reference.objects.get(item__image=images[0])
    assert ref.scores == good


def test_set_gold_refuses_a_bad_header(make_project, tmp_path):
    project, _, _ = make_project(1, raters=["a"])
    path = tmp_path / "g.csv"
    path.write_text("image,looks\n1,0.5\n")
    with pytest.raises(CommandError, match="header lacks"):
        call_command("set_gold", project.name, str(path), stdout=io.StringIO())


def test_gold_upload_through_the_api_for_managers_only(make_project):
    project, images, users = make_project(2, raters=["a"])
    services.add_member(project, "boss", "admin")
    boss = get_user_model().objects.get(username="boss")
    upload = SimpleUploadedFile("g.csv", csv_text([(images[0].pk, full_scores(3))]).encode())
    url = f"/api/projects/{project.pk}/references/"
    denied = client_for(users["a"]).post(url, {"file": upload}, format="multipart")
    assert denied.status_code == 403
    upload.seek(0)
    ok = client_for(boss).post(url, {"file": upload, "kind": "gold"}, format="multipart")
    assert ok.status_code == 200 and ok.json() == {"set": 1, "errors": []}
    assert ProjectImage.objects.get(image=images[0], project=project).kind == ItemKind.GOLD


def test_gold_is_indistinguishable_in_the_api(make_project):
    import random

    project, images, users = make_project(3, raters=["a"])
    services.quality.set_references(project, [(images[0], full_scores(3))], ItemKind.GOLD)
    project.gold_rate = 0.99
    project.save()
    task = services.next_task(project, users["a"], rng=random.Random(1))
    assert task.image_id == images[0].pk
    body = client_for(users["a"]).get(f"/api/projects/{project.pk}/next/").json()
    assert set(body) == {"assignment", "image", "dimensions", "expires_at"}
    rating = (
        client_for(users["a"])
        .post(
            f"/api/assignments/{body['assignment']}/rating/",
            {"scores": full_scores(3), "request_id": new_request_id()},
            format="json",
        )
        .json()
    )
    assert "feedback" not in rating
