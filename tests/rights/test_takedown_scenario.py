"""The takedown scenario of issue #17 on PostgreSQL with a real Celery worker: a photo in the
pool, in two rating projects (an open lease, ratings, a review item) and in two releases, with
a recompressed and resized copy under another name; one supplied photo finds both; after
confirmation both are gone everywhere, stay out, and nothing else changed by a byte."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from annotation import services as annotation
from annotation.models import (
    Assignment,
    AssignmentStatus,
    ConsensusLabel,
    Project,
    ProjectImage,
    Rating,
    ReviewItem,
)
from annotation.selectors import project_progress
from annotation.services.review_queue import queue_for_review
from config.celery import app as celery_app
from curation.models import Image
from curation.services import import_directory
from humanbeauty.standard import DIMENSIONS
from modeling.models import Release, ReleaseItem, ReleaseStatus
from modeling.release.withdrawal import NOTICE, read_notice
from modeling.services.releases import create_release
from rights.models import (
    AuditEvent,
    BlockedImage,
    Match,
    Removal,
    RequestStatus,
    WithdrawnRatings,
)
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.conftest import client_for, image_bytes, make_user, new_request_id
from tests.quality.conftest import SimRater, rate_until_done

from .conftest import files_by_hash, photo, recompressed_copy, sha

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def rating_rows(exclude: set[int]) -> dict[int, tuple]:
    keys = ["project_id", "image_id", "rater_id", "assignment_id", "time_spent_ms",
            "request_id", *[d.key for d in DIMENSIONS]]
    return {r[0]: r[1:] for r in Rating.objects.exclude(image_id__in=exclude)
            .order_by("id").values_list("id", *keys)}


def lease_on(project: Project, rater, image: Image) -> Assignment:
    """Rate the rater's tasks until `image` is leased to them; leave that lease open."""
    sim = SimRater("careful", seed=rater.pk)
    while True:
        task = annotation.next_task(project, rater)
        assert task is not None, "the photo was never offered"
        if task.image_id == image.pk:
            return task
        annotation.submit_rating(task.pk, rater, sim.scores(task.image_id), new_request_id())


def build(name: str, version: str, out: Path, project: Project, formats: list[str]) -> Release:
    release = create_release(name, version, out, projects=[project.name], formats=formats,
                             split={"train": 0.5, "val": 0.25, "test": 0.25}, shard_size=3)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.READY, release.error
    return release


def download(client, release: Release) -> tarfile.TarFile:
    r = client.get(f"/api/releases/{release.pk}/download/")
    assert r.status_code == 200
    return tarfile.open(fileobj=io.BytesIO(b"".join(r.streaming_content)), mode="r:")


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def wait_for(removal_id: int, worker, seconds: float = 180) -> Removal:
    deadline = time.monotonic() + seconds
    while True:
        removal = Removal.objects.get(pk=removal_id)
        if removal.is_over:
            return removal
        assert time.monotonic() < deadline, f"removal not over: {removal.progress}"
        assert worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.2)


def test_one_supplied_photo_takes_the_photo_and_its_copy_out_of_everything(
    tmp_path, eager_celery, settings
):
    settings.RELEASE_ROOT = tmp_path / "releases"
    # --- the pool: the photo, its copy under another name, six unrelated images
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "portrait.jpg").write_bytes(photo())
    (folder / "scraped" / "x_small.jpg").parent.mkdir()
    (folder / "scraped" / "x_small.jpg").write_bytes(recompressed_copy())
    for i in range(6):
        (folder / f"other_{i}.jpg").write_bytes(image_bytes(size=(120, 90), seed=i, fmt="JPEG"))
    import_directory(folder)
    target = Image.objects.get(sha256=sha(photo()))
    copy = Image.objects.get(sha256=sha(recompressed_copy()))
    others = list(Image.objects.exclude(pk__in=[target.pk, copy.pk]).order_by("id"))
    assert len(others) == 6
    gone = {target.pk, copy.pk}

    # --- two rating projects: ratings given, an open lease, a review item
    a, _ = annotation.get_or_create_project("faces-a", overlap=2)
    b, _ = annotation.get_or_create_project("faces-b", overlap=2)
    annotation.add_images(a, [target, *others[:3]])
    annotation.add_images(b, [target, *others[3:]])
    for project in (a, b):
        for name in ("r1", "r2", "r3"):
            annotation.add_member(project, name, "annotator")
    r1, r2, r3 = (Project.objects.get(pk=a.pk).memberships.get(user__username=n).user
                  for n in ("r1", "r2", "r3"))
    rate_until_done(a, r1, SimRater("careful", seed=1))
    open_lease = lease_on(a, r2, target)
    rate_until_done(a, r3, SimRater("careful", seed=3))
    rate_until_done(b, r1, SimRater("careful", seed=4))
    rate_until_done(b, r3, SimRater("careful", seed=5))
    assert queue_for_review(b.pk, target.pk, ["flagged_by_rater"])
    assert Rating.objects.filter(image=target).count() == 3
    assert Assignment.objects.get(pk=open_lease.pk).status == AssignmentStatus.ACTIVE

    # --- two published releases holding the photo: loose files, then WebDataset shards
    root = settings.RELEASE_ROOT
    v1 = build("hb", "1", root / "hb-1", a, ["parquet", "csv"])
    v2 = build("hb", "2", root / "hb-2", a, ["webdataset"])
    assert ReleaseItem.objects.filter(image=target).count() == 2

    # --- before: every other stored file, rating and release file, and the counts
    stored_before = files_by_hash(Path(settings.MEDIA_ROOT) / "images")
    ratings_before = rating_rows(gone)
    releases_before = {r.pk: files_by_hash(Path(r.out_dir)) for r in (v1, v2)}
    items = {p.pk: ProjectImage.objects.get(project=p, image=target) for p in (a, b)}
    progress_before = {p.pk: project_progress(p, r1) for p in (a, b)}
    target_file, copy_file = target.file.name, copy.file.name
    assert default_storage.exists(target_file) and default_storage.exists(copy_file)

    # --- the request: one supplied photo (the person's own copy of the picture)
    admin = make_user("boss", "admin")
    client = client_for(admin)
    r = client.post("/api/takedowns/", {"person": "A. Person", "contact": "a@example.org",
                                        "reason": "I did not agree to this."}, format="json")
    assert r.status_code == 201, r.content
    rid = r.json()["id"]
    upload = io.BytesIO(photo())
    upload.name = "mine.jpg"
    r = client.post(f"/api/takedowns/{rid}/photos/", {"photos": [upload]}, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["photos"][0]["sha256"] == sha(photo())
    r = client.post(f"/api/takedowns/{rid}/match/", {}, format="json")
    assert r.status_code == 200, r.content
    found = {m["image_id"]: m for m in r.json()}
    assert set(found) == gone
    assert found[target.pk]["how"] == "exact_sha256"
    assert found[copy.pk]["how"] == "near_duplicate"
    assert found[copy.pk]["distance"] <= 10
    # nothing of the supplied photo is stored beyond the pool's own copy
    assert files_by_hash(Path(settings.MEDIA_ROOT) / "images") == stored_before

    r = client.post(f"/api/takedowns/{rid}/decide/", {"decisions": [
        {"match": m["id"], "decision": "confirmed", "note": "same picture"}
        for m in found.values()]}, format="json")
    assert r.status_code == 200, r.content

    # --- the removal runs on a real worker
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    worker = start_worker(worker_env())
    try:
        r = client.post(f"/api/takedowns/{rid}/remove/")
        assert r.status_code == 202, r.content
        removal = wait_for(r.json()["id"], worker)
    finally:
        stop_worker(worker)
        celery_app.conf.task_always_eager = True
    assert removal.status == "done", removal.error
    assert removal.progress == {"done": 2, "total": 2}

    # no file left in storage, no row left anywhere
    assert not default_storage.exists(target_file) and not default_storage.exists(copy_file)
    leftover = files_by_hash(Path(settings.MEDIA_ROOT))
    assert not {sha(photo()), sha(recompressed_copy())} & set(leftover.values())
    assert not Image.objects.filter(pk__in=gone).exists()
    for model in (ProjectImage, Assignment, Rating, ReviewItem, ConsensusLabel, ReleaseItem):
        assert not model.objects.filter(image_id__in=gone).exists(), model.__name__

    # project progress: the photo's item is gone, every other figure as it was
    for p in (a, b):
        item, before = items[p.pk], progress_before[p.pk]
        after = project_progress(p, r1)
        assert after["images"] == before["images"] - 1
        assert after["ratings_required"] == before["ratings_required"] - item.target
        assert after["ratings_done"] == before["ratings_done"] - item.completed
        assert after["live_leases"] == before["live_leases"] - item.leased
        assert after["ratings_left"] == after["ratings_required"] - after["ratings_done"]
        assert after["my_ratings"] == before["my_ratings"] - 1  # r1 rated it in both
    # ratings kept only as anonymised aggregates (the default)
    aggregates = {w.project_name: w for w in WithdrawnRatings.objects.filter(request_id=rid)}
    assert {n: w.n_ratings for n, w in aggregates.items()} == {"faces-a": 1, "faces-b": 2}
    assert all(0 <= w.means["comprehensive_aesthetic"]["mean"] <= 1
               for w in aggregates.values())

    # both releases carry the notice; their downloads omit the files
    for release in (v1, v2):
        out = Path(release.out_dir)
        notice = read_notice(out)
        assert [line["image_sha256"] for line in notice] == [target.sha256]
        assert notice[0]["request"] == rid and notice[0]["files"]
        assert b"\xff\xd8" not in (out / NOTICE).read_bytes()  # names and checksums only
    stem = target.sha256[:16]
    tar = download(client, v1)
    names = [m.name for m in tar.getmembers()]
    assert not [n for n in names if stem in n]
    assert "hb-1/withdrawn.jsonl" in names
    for rel, digest in releases_before[v1.pk].items():
        if stem not in rel:
            assert sha(tar.extractfile(f"hb-1/{rel}").read()) == digest, rel
    tar = download(client, v2)
    shards = [n for n in releases_before[v2.pk] if n.endswith(".tar")]
    notice = read_notice(Path(v2.out_dir))
    withdrawn_from = {f["path"].partition("#")[0] for f in notice[0]["files"]}
    assert withdrawn_from and withdrawn_from <= set(shards)
    for rel in shards:
        on_disk = members((Path(v2.out_dir) / rel).read_bytes())
        served = members(tar.extractfile(f"hb-2/{rel}").read())
        assert served == {k: v for k, v in on_disk.items() if not k.startswith(stem)}
        assert (rel in withdrawn_from) == (served != on_disk)

    # every other image, rating and release file is byte-for-byte unchanged
    assert files_by_hash(Path(settings.MEDIA_ROOT) / "images") == {
        k: v for k, v in stored_before.items() if v not in (target.sha256, copy.sha256)
    }
    assert rating_rows(gone) == ratings_before
    for release in (v1, v2):
        after = files_by_hash(Path(release.out_dir))
        assert after.pop(NOTICE)
        assert after == releases_before[release.pk]

    # a new version leaves them out and counts what was withdrawn before it
    v3 = build("hb", "3", root / "hb-3", a, ["parquet"])
    assert ReleaseItem.objects.filter(release=v3).count() == 3
    sheet = (Path(v3.out_dir) / "datasheet.md").read_text()
    assert "1 image(s) were withdrawn from earlier versions of this name" in sheet
    assert not [n for n in files_by_hash(Path(v3.out_dir)) if stem in n]

    # re-importing either copy is refused, at every door, with the request's number
    again = tmp_path / "again"
    again.mkdir()
    (again / "portrait_again.jpg").write_bytes(photo())
    (again / "small_again.jpg").write_bytes(recompressed_copy())
    report = import_directory(again)
    assert sorted((p, reason) for p, reason, _ in report.bad) == [
        ("portrait_again.jpg", "blocked"), ("small_again.jpg", "blocked")]
    assert all(f"takedown request #{rid}" in message for _, _, message in report.bad)
    curator = client_for(make_user("cur", "curator"))
    upload = io.BytesIO(recompressed_copy())
    upload.name = "innocent.jpg"
    r = curator.post("/api/images/", {"file": upload}, format="multipart")
    assert r.status_code == 400 and r.json()["code"] == "blocked"
    assert BlockedImage.objects.filter(request_id=rid).count() == 2
    assert not Image.objects.filter(sha256__in=[target.sha256, copy.sha256]).exists()

    # the audit trail lists every step; the report every place and what was done
    actions = list(AuditEvent.objects.filter(request_id=rid).order_by("id")
                   .values_list("action", flat=True))
    assert actions == ["filed", "photo_added", "matched", "match_confirmed", "match_confirmed",
                       "removal_queued", "image_removed", "image_removed", "removal_finished"]
    report = client.get(f"/api/takedowns/{rid}/report/").json()
    assert report["status"] == RequestStatus.REMOVED
    places = {m["image_id"]: {p["place"] for p in m["places"]} for m in report["matches"]}
    assert {"pool", "project queue", "leases", "ratings", "review queue", "consensus",
            "release", "store", "blocklist"} <= places[target.pk]
    assert {"pool", "store", "blocklist", "near-duplicate cluster"} <= places[copy.pk]
    where = [p["what"] for p in next(m for m in report["matches"]
                                     if m["image_id"] == target.pk)["places"]]
    assert any("hb 1" in w for w in where) and any("hb 2" in w for w in where)
    assert any("open" in p["done"] for m in report["matches"] for p in m["places"]
               if p["place"] == "leases")
    assert Match.objects.filter(request_id=rid, image__isnull=True).count() == 2
