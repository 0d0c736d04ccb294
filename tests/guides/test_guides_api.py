"""The guides API: members read, managers edit and pin examples; outsiders see nothing."""

from __future__ import annotations

import pytest

from annotation import services
from annotation.models import AuditEvent, GuideExample, ItemKind, ProjectImage
from annotation.services import guides as guide_services
from annotation.services.quality import set_references
from humanbeauty.dimension_guides import DEFAULT_GUIDES
from humanbeauty.standard import DIMENSION_KEYS, LEVELS
from tests.conftest import client_for, full_scores, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def guided(make_project):
    """A project with an annotator, a reviewer, an admin; image 0 gold, 1 training, 2 test."""
    project, images, users = make_project(5, raters=("ann", "rev", "boss"))
    services.add_member(project, "rev", "reviewer")
    services.add_member(project, "boss", "admin")
    set_references(project, [(images[0], full_scores(2))], ItemKind.GOLD)
    set_references(project, [(images[1], full_scores(4))], ItemKind.TRAINING)
    set_references(project, [(images[2], full_scores(3))], ItemKind.TEST)
    users["stranger"] = make_user("stranger")
    return project, images, users


def url(project, tail=""):
    return f"/api/projects/{project.pk}/guides/{tail}"


def test_every_member_reads_the_defaults(guided):
    project, _, users = guided
    resp = client_for(users["ann"]).get(url(project))
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["can_edit"] is False
    assert [d["key"] for d in body["dimensions"]] == list(DIMENSION_KEYS)
    outfit = next(d for d in body["dimensions"] if d["key"] == "outfit")
    assert outfit["definition"] == DEFAULT_GUIDES["outfit"][0]
    assert [lv["level"] for lv in outfit["levels"]] == list(LEVELS)
    assert outfit["levels"][0]["description"] == DEFAULT_GUIDES["outfit"][1][0]
    assert client_for(users["rev"]).get(url(project)).json()["can_edit"] is True


def test_outsiders_get_the_missing_project_answer(guided):
    project, _, users = guided
    stranger = client_for(users["stranger"])
    for resp in (
        stranger.get(url(project)),
        stranger.patch(url(project), {"dimensions": {}}, format="json"),
        stranger.get(url(project, "examples/")),
    ):
        assert resp.status_code == 404, resp.content
    assert client_for().get(url(project)).status_code in (401, 403)
    assert client_for(users["ann"]).get("/api/projects/999999/guides/").status_code == 404


def test_a_manager_edits_texts_audited_and_an_annotator_cannot(guided):
    project, _, users = guided
    change = {"dimensions": {"looks": {"definition": "Hair and face only.",
                                       "levels": {"excellent": "Magazine cover."}}}}
    refused = client_for(users["ann"]).patch(url(project), change, format="json")
    assert refused.status_code == 403
    project.refresh_from_db()
    assert project.dimension_guides == {}

    resp = client_for(users["boss"]).patch(url(project), change, format="json")
    assert resp.status_code == 200, resp.content
    looks = next(d for d in resp.json()["dimensions"] if d["key"] == "looks")
    assert looks["definition"] == "Hair and face only."
    assert looks["levels"][4]["description"] == "Magazine cover."
    assert looks["custom"] == ["definition", "excellent"]
    # The rater reads the project's own texts.
    seen = client_for(users["ann"]).get(url(project)).json()
    assert next(d for d in seen["dimensions"] if d["key"] == "looks")["definition"] == (
        "Hair and face only."
    )
    event = AuditEvent.objects.get(project=project, action="guides_updated")
    assert event.actor == users["boss"]
    assert event.details["dimensions"] == ["looks"]
    assert event.details["after"]["looks"]["definition"] == "Hair and face only."

    # PUT replaces: what it does not name goes back to the default.
    put = {"dimensions": {"outfit": {"definition": "Clothes."}}}
    resp = client_for(users["rev"]).put(url(project), put, format="json")
    assert resp.status_code == 200, resp.content
    project.refresh_from_db()
    assert project.dimension_guides == {"outfit": {"definition": "Clothes."}}
    assert AuditEvent.objects.filter(project=project, action="guides_replaced").count() == 1


@pytest.mark.parametrize(
    ("dimensions", "needle"),
    [
        ({"nose": {"definition": "x"}}, "unknown dimension 'nose'"),
        ({"looks": {"levels": {"superb": "x"}}}, "unknown level 'superb'"),
    ],
)
def test_unknown_dimension_or_level_is_a_clear_400(guided, dimensions, needle):
    project, _, users = guided
    resp = client_for(users["boss"]).patch(url(project), {"dimensions": dimensions}, format="json")
    assert resp.status_code == 400
    assert needle in resp.json()["detail"]
    assert resp.json()["code"] == "invalid_guide"
    assert not AuditEvent.objects.filter(project=project, action="guides_updated").exists()


def test_examples_only_from_gold_or_training_items(guided):
    project, images, users = guided
    boss = client_for(users["boss"])
    candidates = boss.get(url(project, "examples/")).json()
    assert {(c["image"], c["kind"]) for c in candidates} == {
        (images[0].pk, "gold"), (images[1].pk, "training")
    }
    assert client_for(users["ann"]).get(url(project, "examples/")).status_code == 403

    pin = {"dimension": "environment", "level": "poor", "image": images[1].pk}
    assert client_for(users["ann"]).post(url(project, "examples/"), pin, format="json")\
        .status_code == 403
    resp = boss.post(url(project, "examples/"), pin, format="json")
    assert resp.status_code == 201, resp.content
    example = resp.json()
    assert boss.post(url(project, "examples/"), pin, format="json").json()["id"] == example["id"]
    assert GuideExample.objects.filter(project=project).count() == 1
    assert AuditEvent.objects.filter(project=project, action="guide_example_pinned").count() == 1

    for image, needle in (
        (images[2].pk, "is a test item of this project; examples are chosen from its gold or "
                       "training items"),
        (images[3].pk, "is a production item"),
        (999999, "is not in this project"),
    ):
        bad = boss.post(url(project, "examples/"), {**pin, "image": image}, format="json")
        assert bad.status_code == 400, bad.content
        assert needle in bad.json()["detail"]
        assert bad.json()["code"] == "not_an_example_item"
    bad = boss.post(url(project, "examples/"), {**pin, "level": "meh"}, format="json")
    assert bad.status_code == 400 and "unknown level 'meh'" in bad.json()["detail"]

    # Every member sees it under its level and may open its image; outsiders may not.
    env = next(d for d in client_for(users["ann"]).get(url(project)).json()["dimensions"]
               if d["key"] == "environment")
    assert env["levels"][1]["examples"] == [example]
    image = client_for(users["ann"]).get(example["url"])
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    assert b"".join(image.streaming_content)[:2] == b"\xff\xd8"
    assert client_for(users["stranger"]).get(example["url"]).status_code == 404

    # Unpinning: managers only, audited.
    one = url(project, f"examples/{example['id']}/")
    assert client_for(users["ann"]).delete(one).status_code == 403
    assert boss.delete(one).status_code == 204
    assert boss.delete(one).status_code == 404
    assert not GuideExample.objects.filter(project=project).exists()
    assert AuditEvent.objects.filter(project=project, action="guide_example_unpinned").exists()
    assert client_for(users["ann"]).get(example["url"]).status_code == 404


def test_the_guides_show_no_reference_scores(guided):
    project, images, users = guided
    pin = {"dimension": "looks", "level": "good", "image": images[0].pk}
    client_for(users["boss"]).post(url(project, "examples/"), pin, format="json")
    text = client_for(users["ann"]).get(url(project)).content.decode()
    assert "gold" not in text and "score" not in text.replace("Score", "")


def test_a_level_holds_few_examples_and_a_test_item_is_never_shown(guided, monkeypatch):
    project, images, users = guided
    boss = client_for(users["boss"])
    monkeypatch.setattr(guide_services, "MAX_EXAMPLES_PER_LEVEL", 1)
    pin = {"dimension": "outfit", "level": "fair"}
    first = boss.post(url(project, "examples/"), {**pin, "image": images[0].pk}, format="json")
    assert first.status_code == 201
    full = boss.post(url(project, "examples/"), {**pin, "image": images[1].pk}, format="json")
    assert full.status_code == 400
    assert "at most 1 examples; unpin one first" in full.json()["detail"]
    assert GuideExample.objects.filter(project=project).count() == 1  # nothing half-done
    assert AuditEvent.objects.filter(action="guide_example_pinned").count() == 1

    # The item becomes a test item: its example is no longer shown, nor its image served.
    ProjectImage.objects.filter(project=project, image=images[0]).update(kind=ItemKind.TEST)
    seen = client_for(users["ann"]).get(url(project)).json()
    outfit = next(d for d in seen["dimensions"] if d["key"] == "outfit")
    assert all(not lv["examples"] for lv in outfit["levels"])
    assert client_for(users["ann"]).get(first.json()["url"]).status_code == 404


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"dimension": "looks", "level": "good"}, "image"),
        ({"dimension": "looks", "level": "good", "image": 2**63}, "image"),
        ({"dimension": "looks", "level": "good", "image": "one"}, "image"),
        ({"dimension": "charm", "level": "good", "image": 1}, "unknown dimension 'charm'"),
    ],
)
def test_a_malformed_pin_is_a_400_that_changes_nothing(guided, body, needle):
    project, _, users = guided
    resp = client_for(users["boss"]).post(url(project, "examples/"), body, format="json")
    assert resp.status_code == 400, resp.content
    assert needle in resp.content.decode()
    assert not GuideExample.objects.exists()


def test_a_malformed_guides_body_is_a_400(guided):
    project, _, users = guided
    boss = client_for(users["boss"])
    for body in ({}, {"dimensions": ["looks"]}, {"dimensions": {"looks": "text"}}):
        resp = boss.patch(url(project), body, format="json")
        assert resp.status_code == 400, (body, resp.content)
    project.refresh_from_db()
    assert project.dimension_guides == {}
