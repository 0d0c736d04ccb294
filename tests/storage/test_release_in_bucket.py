"""Releases kept in the bucket (MEDIA_STORAGE=s3, a real moto S3 server over HTTP): a worker
with its own empty MEDIA_ROOT, RELEASE_ROOT and scratch folder builds the release, and its
files end up under `releases/<id>/` of the bucket only; the download streams them back from
there (withdrawn files left out) to researchers only; a failed or cancelled build leaves
nothing under its prefix; a later version counts what was withdrawn from the earlier one."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
import tracemalloc
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction

from annotation import services as annotation
from annotation.services.quality import refresh_statistics
from core import jobs
from modeling.models import Release, ReleaseItem, ReleaseStatus
from modeling.release import withdrawal
from modeling.release.store import StorageFiles
from modeling.release_api import tar_stream
from modeling.services.releases import create_release, release_files
from rights.services.removal import _notices
from tests.celery_worker import start_worker, stop_worker, worker_env
from tests.conftest import client_for
from tests.quality.conftest import SimRater, rate_until_done

from .conftest import no_local_media

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MiB = 1 << 20


@pytest.fixture
def queues(s3_bucket, settings, tmp_path, empty_queues):
    """Empty task queues, and this (web) process's release folder."""
    settings.RELEASE_ROOT = (tmp_path / "web-releases").resolve()
    return s3_bucket


def _machine(tmp_path, bucket) -> tuple[dict[str, str], dict]:
    """A worker's environment as on a machine of its own: every folder it could write empty."""
    folders = {k: tmp_path / "worker" / k for k in ("media", "scratch", "releases")}
    env = worker_env(**bucket.env, MEDIA_ROOT=str(folders["media"]),
                     SCRATCH_DIR=str(folders["scratch"]), RELEASE_ROOT=str(folders["releases"]))
    return env, folders


def _files(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _rated_project(make_project, n: int):
    project, images, users = make_project(n, overlap=1, raters=["a"])
    rate_until_done(project, users["a"], SimRater("careful", seed=1))
    refresh_statistics(project)
    return project, images, users["a"]


def _wait(release_id: int, worker, status: str, timeout: float = 240.0) -> Release:
    deadline = time.monotonic() + timeout
    while True:
        release = Release.objects.get(pk=release_id)
        if release.is_over:
            assert release.status == status, (release.status, release.error)
            return release
        assert worker.poll() is None, worker.stdout.read().decode()
        assert time.monotonic() < deadline, release.progress
        time.sleep(0.2)


def _until(predicate, worker, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert worker.poll() is None, worker.stdout.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.2)


def _download(client, release: Release) -> tuple[dict[str, bytes], int]:
    """The download's members by name, and its largest piece."""
    response = client.get(f"/api/releases/{release.pk}/download/")
    assert response.status_code == 200 and response.streaming
    pieces = list(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(b"".join(pieces))) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    return members, max(len(p) for p in pieces)


def _withdraw(release: Release, image) -> list[dict]:
    """A takedown's notice for one image, written as `rights.services.removal` writes it:
    through the release's files, wherever they are kept."""
    files = release_files(release)
    assert files.exists(withdrawal.MANIFEST)
    found = withdrawal.image_files(files, [image.sha256])[image.sha256.lower()]
    withdrawal.write_notice(files, [{"image_sha256": image.sha256.lower(), "image_id": image.pk,
                                     "request": 1, "withdrawn_at": "now", "files": found}])
    return found


def test_a_release_built_by_a_worker_lives_in_the_bucket_and_downloads_from_it(
    queues, make_project, tmp_path
):
    bucket = queues
    project, images, annotator = _rated_project(make_project, 6)
    annotation.add_member(project, "res", "researcher")
    researcher = client_for(type(annotator).objects.get(username="res"))
    refused = client_for(annotator)
    env, disk = _machine(tmp_path, bucket)
    body = {"name": "hb", "version": "1", "out": "hb-v1", "projects": [project.name],
            "images": "copy", "formats": ["official", "parquet"],
            "split": {"train": 0.5, "test": 0.5}}
    assert refused.post("/api/releases/", body, format="json").status_code == 403
    made = researcher.post("/api/releases/", body, format="json")
    assert made.status_code == 202, made.content
    # what an attempt that died mid-upload left: the build starts its prefix afresh
    bucket.put(f"releases/{made.json()['id']}/parquet/stale.parquet", b"half a file")
    worker = start_worker(env)
    try:
        v1 = _wait(made.json()["id"], worker, ReleaseStatus.READY)

        # --- kept in the bucket only, as the manifest says, byte for byte
        prefix = f"releases/{v1.pk}/"
        assert v1.out_dir == f"storage:releases/{v1.pk}"
        manifest_bytes = bucket.get(prefix + "manifest.json")
        assert hashlib.sha256(manifest_bytes).hexdigest() == v1.manifest_sha256
        manifest = json.loads(manifest_bytes)
        listed = {f["path"]: f for f in manifest["files"]}
        assert bucket.names(prefix) == sorted(prefix + p for p in [*listed, "manifest.json"])
        for path, entry in listed.items():
            data = bucket.get(prefix + path)
            assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry["sha256"],
                                                                      entry["size"])
        assert manifest["counts"]["image_files"] == 6
        assert _files(disk["scratch"])  # the worker read the images from local copies
        assert _files(disk["scratch"] / "releases") == []  # its build folder went with it
        for folder in ("media", "releases"):
            assert _files(disk[folder]) == [], folder
        assert _files(settings.RELEASE_ROOT) == []
        assert no_local_media(settings.MEDIA_ROOT) == []

        # --- downloaded from the bucket, streamed, to researchers only
        assert refused.get(f"/api/releases/{v1.pk}/download/").status_code == 403
        assert refused.get(f"/api/releases/{v1.pk}/datasheet/").status_code == 403
        members, largest = _download(researcher, v1)
        assert largest <= MiB
        assert members == {f"hb-1/{name[len(prefix):]}": bucket.get(name)
                           for name in bucket.names(prefix)}
        sheet = researcher.get(f"/api/releases/{v1.pk}/datasheet/")
        assert sheet.status_code == 200
        assert b"".join(sheet.streaming_content) == bucket.get(prefix + "datasheet.html")

        # --- a takedown withdraws one image: the notice is in the bucket, the file left out
        # (through the takedown removal's own step that writes the notices)
        taken = images[0]
        places = _notices(SimpleNamespace(pk=1),
                          [SimpleNamespace(image_ref=taken.pk, sha256=taken.sha256)])
        assert [p["what"] for p in places[taken.pk]] == ["hb 1 (1 file(s))"]
        notice = [json.loads(x) for x in bucket.get(prefix + "withdrawn.jsonl").splitlines()]
        assert [line["image_sha256"] for line in notice] == [taken.sha256.lower()]
        found = notice[0]["files"]
        assert len(found) == 1 and found[0]["path"] in listed
        after, _ = _download(researcher, v1)
        assert set(members) - set(after) == {f"hb-1/{found[0]['path']}"}
        assert after[f"hb-1/{withdrawal.NOTICE}"] == bucket.get(prefix + "withdrawn.jsonl")
        assert _files(settings.RELEASE_ROOT) == []

        # --- a later version reads the earlier one's notice from the bucket; its shards are
        # streamed without a withdrawn sample
        body2 = {**body, "version": "2", "out": "hb-v2", "formats": ["webdataset"],
                 "shard_size": 4}
        made = researcher.post("/api/releases/", body2, format="json")
        assert made.status_code == 202, made.content
        v2 = _wait(made.json()["id"], worker, ReleaseStatus.READY)
        sheet2 = bucket.get(f"releases/{v2.pk}/datasheet.md").decode()
        assert "1 image(s) were withdrawn from earlier versions" in sheet2
        before, _ = _download(researcher, v2)
        found2 = _withdraw(v2, taken)
        shard, _, member = found2[0]["path"].partition("#")
        assert shard.startswith("webdataset/") and member
        after2, _ = _download(researcher, v2)
        with tarfile.open(fileobj=io.BytesIO(before[f"hb-2/{shard}"])) as tar:
            kept = {m.name: tar.extractfile(m).read() for m in tar
                    if m.name.split(".", 1)[0] != member.split(".", 1)[0]}
            assert len(kept) < len(tar.getnames())
        with tarfile.open(fileobj=io.BytesIO(after2[f"hb-2/{shard}"])) as tar:
            assert {m.name: tar.extractfile(m).read() for m in tar} == kept
    finally:
        stop_worker(worker)
    assert _files(disk["scratch"] / "releases") == [] and _files(disk["media"]) == []


def test_a_failed_or_cancelled_build_leaves_nothing_under_its_prefix(
    queues, make_project, tmp_path
):
    bucket = queues
    project, images, annotator = _rated_project(make_project, 4)
    options = {"projects": [project.name], "formats": ["parquet"], "images": "copy"}
    failing = create_release("broken", "1", None, **options)
    dropped = create_release("dropped", "1", None, **options)
    for release in (failing, dropped):  # what a worker that died mid-upload would leave
        release.refresh_from_db()
        assert release.status == ReleaseStatus.QUEUED
        bucket.put(f"releases/{release.pk}/parquet/train.parquet", b"half a file")
    jobs.cancel(Release, dropped.pk, None)  # cancelled while queued
    late = create_release("late", "1", None, **{**options, "images": "none"})
    default_storage.delete(images[-1].file.name)  # an image gone from the bucket
    env, disk = _machine(tmp_path, bucket)
    worker = None
    try:
        # The last build is held just before it records its end, its files all uploaded (its
        # first write to release items waits for this lock), and cancelled there.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {ReleaseItem._meta.db_table} IN SHARE MODE")
            worker = start_worker(env)
            failed = _wait(failing.pk, worker, ReleaseStatus.FAILED)
            assert "missing from the media storage" in failed.error
            _until(lambda: (Release.objects.get(pk=late.pk).progress or {}).get("phase")
                   == "upload" and Release.objects.get(pk=late.pk).progress["done"]
                   == Release.objects.get(pk=late.pk).progress["total"], worker)
            uploaded = bucket.names(f"releases/{late.pk}/")
            assert f"releases/{late.pk}/manifest.json" in uploaded and len(uploaded) > 5
            jobs.cancel(Release, late.pk, None)
        for release in (dropped, late):
            _until(lambda r=release: not bucket.names(f"releases/{r.pk}/"), worker)
    finally:
        if worker is not None:
            stop_worker(worker)
    assert bucket.names("releases/") == []
    for release in (dropped, late):
        assert Release.objects.get(pk=release.pk).status == ReleaseStatus.CANCELLED
    assert not ReleaseItem.objects.filter(release=late).exists()
    assert _files(disk["scratch"] / "releases") == [] and _files(disk["releases"]) == []


def test_the_download_streams_from_the_bucket_without_holding_a_file(s3_bucket, tmp_path):
    """A 24 MiB stored file goes out in 1 MiB pieces while a few MiB are held (pieces in
    flight), where holding the file would show as 24 MiB (django-storages' own `open` fetches
    a whole object before the first byte, which is why the download reads ranges itself)."""
    big = os.urandom(24 * MiB)
    s3_bucket.put("releases/900/manifest.json", b"{}\n")
    s3_bucket.put("releases/900/webdataset/train-000000.bin", big)
    files = StorageFiles(default_storage, "releases/900", "r-1")
    out = tmp_path / "download.tar"
    assert len(files.listing()) == 2  # the client made (boto3 loads its models) before counting
    tracemalloc.start()
    try:
        with out.open("wb") as fh:
            for piece in tar_stream(files):
                assert len(piece) <= MiB
                fh.write(piece)
        streamed_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with files.open("webdataset/train-000000.bin") as fh:  # the file held whole: counted
            assert len(fh.read()) == len(big)
        whole_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    with tarfile.open(out) as tar:
        assert tar.getnames() == ["r-1/manifest.json", "r-1/webdataset/train-000000.bin"]
        assert tar.extractfile("r-1/webdataset/train-000000.bin").read() == big
    assert streamed_peak < 8 * MiB < 24 * MiB <= whole_peak
