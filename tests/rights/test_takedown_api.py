"""The takedown API: admins only, bad input refused with a clear error and nothing changed,
matching by named ids, file names and source records, face matching answered as not
available, decisions and rejection, the ratings setting, clusters after a removal, the
blocklist's near-duplicate refusal and the append-only audit trail."""

from __future__ import annotations

import io

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from PIL import Image as PILImage

from annotation import services as annotation
from annotation.models import ProjectImage, Rating
from curation.imaging.validate import InvalidImage
from curation.models import DuplicateCluster, Image, SourceItem
from curation.services import import_directory, register_image
from humanbeauty.standard import DIMENSIONS
from rights.models import AuditEvent, Match, TakedownRequest, WithdrawnRatings
from rights.services import TakedownError
from tests.conftest import client_for, image_bytes, make_user
from tests.quality.conftest import SimRater, rate_until_done

from .conftest import jpeg, photo, recompressed_copy, sha

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"person": "A. Person", "contact": "a@example.org", "reason": "Please remove me."}


@pytest.fixture
def users(db):
    return {
        "admin": make_user("boss", "admin"),
        "curator": make_user("cur", "curator"),
        "researcher": make_user("res", "researcher"),
        "annotator": make_user("ann"),
    }


@pytest.fixture
def pool(tmp_path):
    """The photo, its copy, and four unrelated images, imported from a folder."""
    folder = tmp_path / "pool"
    folder.mkdir()
    (folder / "portrait.jpg").write_bytes(photo())
    (folder / "copy_small.jpg").write_bytes(recompressed_copy())
    for i in range(4):
        (folder / f"n{i}.jpg").write_bytes(image_bytes(size=(120, 90), seed=50 + i, fmt="JPEG"))
    import_directory(folder)
    return {i.original_path: i for i in Image.objects.all()}


def filed(client, **extra) -> dict:
    r = client.post("/api/takedowns/", {**BODY, **extra}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def snapshot() -> tuple:
    return (
        list(TakedownRequest.objects.order_by("id").values_list("id", "status", "names")),
        list(Match.objects.order_by("id").values_list("id", "decision")),
        AuditEvent.objects.count(),
        Image.objects.count(),
    )


# --- who may ----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["curator", "researcher", "annotator", None])
def test_only_platform_admins_reach_the_takedown_api(users, role, pool):
    admin = client_for(users["admin"])
    rid = filed(admin, image_ids=[pool["portrait.jpg"].pk])["id"]
    client = client_for(None if role is None else users[role])
    before = snapshot()
    calls = [
        ("get", "/api/takedowns/", None),
        ("post", "/api/takedowns/", BODY),
        ("get", f"/api/takedowns/{rid}/", None),
        ("get", f"/api/takedowns/{rid}/report/", None),
        ("post", f"/api/takedowns/{rid}/match/", {}),
        ("post", f"/api/takedowns/{rid}/decide/", {"decisions": [{"match": 1,
                                                                  "decision": "confirmed"}]}),
        ("post", f"/api/takedowns/{rid}/remove/", None),
        ("post", f"/api/takedowns/{rid}/reject/", {"why": "no"}),
        ("get", "/api/takedowns/face-matching/", None),
        ("get", "/api/takedown-removals/", None),
    ]
    for method, path, body in calls:
        r = getattr(client, method)(path, body, format="json")
        assert r.status_code in ((401, 403) if role is None else (403,)), (path, r.status_code)
    assert snapshot() == before
    # the page too: a 403 that says who it is for, or the login form
    browser = Client()
    if role is not None:
        browser.force_login(users[role])
    page = browser.get("/takedowns/")
    assert page.status_code == (302 if role is None else 403)


def test_the_admin_page_renders_its_config(users):
    c = Client()
    c.force_login(users["admin"])
    r = c.get("/takedowns/")
    assert r.status_code == 200
    assert b'id="takedowns-config"' in r.content and b"/api/takedowns/" in r.content
    assert b"face matching is not available" in r.content


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("body, words", [
    ({"contact": "x", "reason": "y"}, "person"),
    ({**BODY, "person": "   "}, "person"),
    ({**BODY, "image_ids": ["seven", -1, True, 2**63]}, "image_ids[0]"),
    ({**BODY, "file_names": [""]}, "file_names[0]"),
    ({**BODY, "source_records": [{"source": "s"}]}, "source_records[0]"),
    ({**BODY, "image_ids": list(range(1, 1003))}, "at most 1000"),
])
def test_a_request_that_is_not_usable_is_refused_and_nothing_is_filed(users, body, words):
    client = client_for(users["admin"])
    r = client.post("/api/takedowns/", body, format="json")
    assert r.status_code == 400, r.content
    assert words in r.content.decode()
    assert not TakedownRequest.objects.exists() and not AuditEvent.objects.exists()


def test_malformed_bodies_are_400s_that_change_nothing(users, pool):
    client = client_for(users["admin"])
    rid = filed(client, image_ids=[pool["portrait.jpg"].pk])["id"]
    before = snapshot()
    for path in ("/api/takedowns/", f"/api/takedowns/{rid}/decide/",
                 f"/api/takedowns/{rid}/reject/", f"/api/takedowns/{rid}/match/"):
        r = client.post(path, "{not json", content_type="application/json")
        assert r.status_code == 400, (path, r.content)
        r = client.post(path, [1, 2], format="json")
        assert r.status_code == 400, (path, r.content)
    assert snapshot() == before


def test_a_supplied_file_that_is_no_image_is_refused_and_not_kept(users, pool, settings):
    client = client_for(users["admin"])
    rid = filed(client)["id"]
    bad = io.BytesIO(b"GIF89a not really")
    bad.name = "me.gif"
    r = client.post(f"/api/takedowns/{rid}/photos/", {"photos": [bad]}, format="multipart")
    assert r.status_code == 400 and "not usable" in r.json()["detail"]
    r = client.post(f"/api/takedowns/{rid}/photos/", {}, format="multipart")
    assert r.status_code == 400
    settings.MAX_UPLOAD_BYTES = 100
    big = io.BytesIO(photo())
    big.name = "big.jpg"
    r = client.post(f"/api/takedowns/{rid}/photos/", {"photos": [big]}, format="multipart")
    assert r.status_code == 413
    assert not TakedownRequest.objects.get(pk=rid).photos.exists()


def test_matching_needs_something_named_and_faces_are_not_available(users, pool):
    client = client_for(users["admin"])
    rid = filed(client)["id"]
    r = client.post(f"/api/takedowns/{rid}/match/", {}, format="json")
    assert r.status_code == 400 and "nothing to match" in r.json()["detail"]
    answer = client.get("/api/takedowns/face-matching/").json()
    assert answer["available"] is False and "no face recognition model" in answer["why"]
    rid2 = filed(client, image_ids=[pool["portrait.jpg"].pk])["id"]
    before = snapshot()
    r = client.post(f"/api/takedowns/{rid2}/match/", {"faces": True}, format="json")
    assert r.status_code == 400
    assert r.json()["code"] == "face_matching_unavailable"
    assert snapshot() == before


def test_decisions_are_checked_and_removal_waits_for_all_of_them(users, pool):
    client = client_for(users["admin"])
    rid = filed(client, image_ids=[pool["portrait.jpg"].pk])["id"]
    r = client.post(f"/api/takedowns/{rid}/decide/", {"decisions": [{"match": 1,
                                                      "decision": "confirmed"}]}, format="json")
    assert r.status_code == 409  # not matched yet
    found = client.post(f"/api/takedowns/{rid}/match/", {}, format="json").json()
    # the named image and its near-duplicate copy
    assert {m["how"] for m in found} == {"named_id", "near_duplicate"}
    before = snapshot()
    for decisions, status in [
        ([], 400),
        ([{"match": found[0]["id"], "decision": "maybe"}], 400),
        ([{"match": "x", "decision": "confirmed"}], 400),
        ([{"match": 10**9, "decision": "confirmed"}], 404),
        ([{"match": found[0]["id"], "decision": "confirmed", "note": 5}], 400),
    ]:
        r = client.post(f"/api/takedowns/{rid}/decide/", {"decisions": decisions},
                        format="json")
        assert r.status_code == status, (decisions, r.content)
    assert snapshot() == before
    client.post(f"/api/takedowns/{rid}/decide/", {"decisions": [
        {"match": found[0]["id"], "decision": "confirmed"}]}, format="json")
    r = client.post(f"/api/takedowns/{rid}/remove/")
    assert r.status_code == 409 and "wait for a decision" in r.json()["detail"]
    client.post(f"/api/takedowns/{rid}/decide/", {"decisions": [
        {"match": m["id"], "decision": "rejected", "note": "not her"} for m in found]},
        format="json")
    r = client.post(f"/api/takedowns/{rid}/remove/")
    assert r.status_code == 409 and "no match is confirmed" in r.json()["detail"]
    assert Image.objects.count() == 6


def test_a_rejected_request_removes_nothing_and_takes_no_more_steps(users, pool):
    client = client_for(users["admin"])
    rid = filed(client, file_names=["portrait.jpg"])["id"]
    r = client.post(f"/api/takedowns/{rid}/reject/", {"why": ""}, format="json")
    assert r.status_code == 400
    r = client.post(f"/api/takedowns/{rid}/reject/", {"why": "not a photo of the person"},
                    format="json")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert client.post(f"/api/takedowns/{rid}/match/", {}, format="json").status_code == 409
    assert client.post(f"/api/takedowns/{rid}/reject/", {"why": "again"},
                       format="json").status_code == 409
    actions = [e["action"] for e in client.get(f"/api/takedowns/{rid}/report/").json()["audit"]]
    assert actions == ["filed", "rejected"]
    assert Image.objects.count() == 6


def test_names_find_images_by_file_name_and_source_record(users, pool, tmp_path, settings):
    from curation.services.sources import import_source

    settings.IMPORT_ROOTS = [tmp_path.resolve()]
    (tmp_path / "pool" / "m.csv").write_text("path\nn1.jpg\n")
    import_source("manifest", tmp_path / "pool" / "m.csv", "src")
    SourceItem.objects.filter(path="n1.jpg").update(image=pool["n1.jpg"])
    client = client_for(users["admin"])
    rid = filed(client, file_names=["n0.jpg", "nowhere.jpg"],
                source_records=[{"source": "src", "path": "n1.jpg"},
                                {"source": "src", "path": "n9.jpg"}],
                image_ids=[10**12])["id"]
    found = client.post(f"/api/takedowns/{rid}/match/", {}, format="json").json()
    assert {(m["image_id"], m["how"]) for m in found} == {
        (pool["n0.jpg"].pk, "named_file"), (pool["n1.jpg"].pk, "source_record")}
    matched = AuditEvent.objects.get(request_id=rid, action="matched").details
    assert sorted(matched["not_found"]) == [
        "file name nowhere.jpg", f"image id {10**12}", "source record src:n9.jpg"]


def _rated_project(pool, name="p"):
    project, _ = annotation.get_or_create_project(name, overlap=2)
    annotation.add_images(project, [pool["portrait.jpg"], pool["n0.jpg"]])
    for rater in ("r1", "r2"):
        membership, _ = annotation.add_member(project, rater, "annotator")
        rate_until_done(project, membership.user, SimRater("careful", seed=len(rater)))
    return project


@pytest.mark.parametrize("policy", ["aggregate", "delete"])
def test_the_ratings_setting_keeps_aggregates_or_nothing(users, pool, settings, eager_celery,
                                                         policy):
    settings.TAKEDOWN_RATINGS = policy
    project = _rated_project(pool)
    target = pool["portrait.jpg"]
    assert Rating.objects.filter(image=target).count() == 2
    kept = list(Rating.objects.exclude(image=target).values_list("id", flat=True))
    client = client_for(users["admin"])
    rid = filed(client, image_ids=[target.pk])["id"]
    found = client.post(f"/api/takedowns/{rid}/match/", {}, format="json").json()
    client.post(f"/api/takedowns/{rid}/decide/", {"decisions": [
        {"match": m["id"], "decision": "confirmed" if m["image_id"] == target.pk else
         "rejected"} for m in found]}, format="json")
    r = client.post(f"/api/takedowns/{rid}/remove/")
    assert r.status_code == 202
    assert client.get(f"/api/takedown-removals/{r.json()['id']}/").json()["status"] == "done"
    assert list(Rating.objects.values_list("id", flat=True)) == kept
    aggregates = list(WithdrawnRatings.objects.filter(request_id=rid))
    if policy == "aggregate":
        assert [(a.project_id, a.n_images, a.n_ratings, a.n_raters) for a in aggregates] == [
            (project.pk, 1, 2, 2)]
        means = aggregates[0].means
        assert set(means) == {d.key for d in DIMENSIONS}
        assert all(m["n"] <= 2 and (m["mean"] is None or 0 <= m["mean"] <= 1)
                   for m in means.values())
        assert means["comprehensive_aesthetic"]["n"] == 2
    else:
        assert aggregates == []
    assert ProjectImage.objects.filter(project=project).count() == 1
    # the copy was rejected: it stays, out of its cluster now that the photo is gone
    copy = Image.objects.get(original_path="copy_small.jpg")
    assert copy.cluster_id is None and not DuplicateCluster.objects.exists()


def test_a_bad_ratings_setting_fails_the_removal_with_its_name(users, pool, settings,
                                                               eager_celery):
    settings.TAKEDOWN_RATINGS = "keep-everything"
    client = client_for(users["admin"])
    rid = filed(client, image_ids=[pool["n2.jpg"].pk])["id"]
    found = client.post(f"/api/takedowns/{rid}/match/", {}, format="json").json()
    client.post(f"/api/takedowns/{rid}/decide/", {"decisions": [
        {"match": m["id"], "decision": "confirmed"} for m in found]}, format="json")
    try:
        client.post(f"/api/takedowns/{rid}/remove/")
    except TakedownError as exc:  # an in-process task's failure may reach the caller
        assert "TAKEDOWN_RATINGS" in str(exc)
    removal = TakedownRequest.objects.get(pk=rid).removals.get()
    assert removal.status == "failed" and "TAKEDOWN_RATINGS" in removal.error
    assert Image.objects.filter(pk=pool["n2.jpg"].pk).exists()


def test_a_cluster_that_loses_its_representative_gets_the_next_one(users, pool, eager_celery,
                                                                   tmp_path):
    # a third near-duplicate of the photo: three in one cluster, the photo (most pixels) kept
    third = tmp_path / "third"
    third.mkdir()
    big = PILImage.open(io.BytesIO(photo())).resize((560, 560))
    (third / "mid.jpg").write_bytes(jpeg(big, quality=80))
    import_directory(third)
    target = pool["portrait.jpg"]
    target.refresh_from_db()
    cluster = DuplicateCluster.objects.get()
    assert cluster.representative_id == target.pk and cluster.members.count() == 3
    client = client_for(users["admin"])
    rid = filed(client, image_ids=[target.pk])["id"]
    found = client.post(f"/api/takedowns/{rid}/match/", {}, format="json").json()
    assert len(found) == 3
    client.post(f"/api/takedowns/{rid}/decide/", {"decisions": [
        {"match": m["id"], "decision": "confirmed" if m["image_id"] == target.pk else
         "rejected"} for m in found]}, format="json")
    assert client.post(f"/api/takedowns/{rid}/remove/").status_code == 202
    cluster.refresh_from_db()
    mid = Image.objects.get(original_path="mid.jpg")
    assert cluster.representative_id == mid.pk  # the larger of the two left
    assert set(cluster.members.values_list("original_path", flat=True)) == {
        "mid.jpg", "copy_small.jpg"}


def test_the_blocklist_refuses_near_duplicates_at_register_image(users, pool, eager_celery):
    client = client_for(users["admin"])
    rid = filed(client, image_ids=[pool["portrait.jpg"].pk])["id"]
    found = client.post(f"/api/takedowns/{rid}/match/", {}, format="json").json()
    client.post(f"/api/takedowns/{rid}/decide/", {"decisions": [
        {"match": m["id"], "decision": "confirmed" if m["how"] == "named_id" else "rejected"}
        for m in found]}, format="json")
    client.post(f"/api/takedowns/{rid}/remove/")
    # an unseen variant of the removed photo: other bytes, the same picture
    variant = jpeg(PILImage.open(io.BytesIO(photo())).rotate(1), 75)
    assert sha(variant) != sha(photo())
    with pytest.raises(InvalidImage) as caught:
        register_image(io.BytesIO(variant), original_path="v.jpg")
    assert caught.value.reason == "blocked"
    assert "near-duplicate" in caught.value.message and f"#{rid}" in caught.value.message
    # an unrelated image still goes in
    image, created = register_image(io.BytesIO(image_bytes(seed=999)), original_path="ok.png")
    assert created


def test_the_audit_trail_is_append_only(users, pool):
    client = client_for(users["admin"])
    rid = filed(client)["id"]
    event = AuditEvent.objects.get(request_id=rid)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="nothing happened")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "filed"
    # an actor's account may go: the event stays, its actor null
    users["admin"].delete()
    assert AuditEvent.objects.get(pk=event.pk).actor_id is None
