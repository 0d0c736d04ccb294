"""Sources whose manifest and images live in the bucket (`storage:PREFIX/…`): the confinement
rule, the import, a filter job over them (in-process here; on workers without a shared disk in
test_workers_without_shared_disk.py), and the scratch cache the stages read from."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
from django.conf import settings

from core.scratch import ScratchCache
from core.storage import resolve_storage_inside
from curation.models import Decision, Image, JobStatus, SourceItem
from curation.services.jobs import start_job
from curation.services.sources import import_source
from curation.sources import MissingLabelFile
from humanbeauty.paths import PathOutsideRoots
from tests.conftest import client_for, make_user

from .conftest import no_local_media

ROOTS = ["imports", "more/data"]


@pytest.mark.parametrize(
    ("path", "base", "name"),
    [
        ("storage:imports/a/m.csv", None, "imports/a/m.csv"),
        ("x.jpg", "storage:imports/a", "imports/a/x.jpg"),
        ("b/../x.jpg", "storage:imports/a", "imports/a/x.jpg"),
        ("../x.jpg", "storage:imports/a", "imports/x.jpg"),  # a `..` that stays inside is fine
        ("storage:more/data/y.png", None, "more/data/y.png"),
    ],
)
def test_storage_names_inside_the_roots(path, base, name):
    assert resolve_storage_inside(path, ROOTS, base=base) == name


@pytest.mark.parametrize(
    ("path", "base", "reason"),
    [
        ("storage:images/ab/cd.jpg", None, "outside the storage import roots"),
        ("storage:importsX/a.jpg", None, "outside the storage import roots"),  # not a prefix
        ("../../images/x.jpg", "storage:imports/a", "climbs out of the storage import roots"),
        ("../../../../x.jpg", "storage:imports/a", "climbs out of the storage"),
        ("/etc/passwd", "storage:imports/a", "not a storage name"),
        ("x.jpg", None, "needs a storage base folder"),
        ("storage:imports/\x00.jpg", None, "NUL byte"),
        ("storage:", None, "empty"),
    ],
)
def test_storage_names_outside_the_roots_are_refused(path, base, reason):
    with pytest.raises(PathOutsideRoots) as refused:
        resolve_storage_inside(path, ROOTS, base=base)
    assert reason in refused.value.message and refused.value.code == "outside_import_roots"
    assert "storage:imports" in refused.value.message  # the roots are named, as on disk


def test_no_storage_roots_means_no_storage_imports():
    with pytest.raises(PathOutsideRoots, match="no storage import roots are configured"):
        resolve_storage_inside("storage:imports/m.csv", [])


# --- the scratch cache ------------------------------------------------------------------------


class _Store:
    """A storage with no local paths, over a dict (the scratch cache's unit tests)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.opened: list[str] = []

    def path(self, name):
        raise NotImplementedError

    def open(self, name, mode="rb"):
        import io

        if name not in self.files:
            raise FileNotFoundError(name)
        self.opened.append(name)
        return io.BytesIO(self.files[name])

    def exists(self, name):
        return name in self.files


def test_the_scratch_cache_fetches_once_and_stays_within_its_bound(tmp_path):
    store = _Store({f"f{i}.jpg": bytes([i]) * 1000 for i in range(10)})
    cache = ScratchCache(tmp_path / "s", max_bytes=3500, grace_s=0.0)
    first = cache.fetch("f0.jpg", store)
    assert first.read_bytes() == bytes([0]) * 1000 and first.suffix == ".jpg"
    assert cache.fetch("f0.jpg", store) == first and store.opened == ["f0.jpg"]  # cached
    os.utime(first, (time.time() - 100, time.time() - 100))
    for i in range(1, 10):
        cache.fetch(f"f{i}.jpg", store)
        used = time.time() - 100 + i  # fetched in this order, each a second later
        os.utime(cache.target(f"f{i}.jpg"), (used, used))
        cache.evict()
        assert cache.size() <= 3500
    kept = {p.name.split(".")[0] for _, _, p in cache.entries()}
    # The least recently used went first: the last three stayed.
    assert kept == {cache.target(f"f{i}.jpg").stem for i in (7, 8, 9)}
    with pytest.raises(FileNotFoundError):
        cache.fetch("missing.jpg", store)
    assert not [p for p in (tmp_path / "s").rglob(".*")]  # no partial file left behind


def test_copies_in_use_are_not_evicted_within_the_grace_period(tmp_path):
    store = _Store({f"f{i}": b"x" * 1000 for i in range(5)})
    cache = ScratchCache(tmp_path / "s", max_bytes=1000, grace_s=600.0)
    paths = [cache.fetch(f"f{i}", store) for i in range(5)]
    cache.evict()
    assert all(p.is_file() for p in paths)  # all used just now: a reader may hold any of them
    old = time.time() - 3600
    for p in paths[:4]:
        os.utime(p, (old, old))
    cache.evict()
    assert [p.is_file() for p in paths] == [False, False, False, False, True]


def test_eviction_passes_over_folders_it_did_not_make(tmp_path):
    store = _Store({f"f{i}": b"x" * 1000 for i in range(3)})
    paths = [ScratchCache(tmp_path / "s", max_bytes=10**9).fetch(f"f{i}", store)
             for i in range(3)]
    cache = ScratchCache(tmp_path / "s", max_bytes=1000, grace_s=0.0)
    stranger = paths[0].parent / "not-a-copy"
    stranger.mkdir()
    (stranger / "inside").write_bytes(b"y" * 5000)
    old = time.time() - 3600
    for p in paths:
        os.utime(p, (old, old))
    cache.evict()  # no IsADirectoryError; the folder and what it holds are left alone
    assert (stranger / "inside").is_file()
    assert sum(p.is_file() for p in paths) == 1


def _fetch_all(root: str, names: list[str]) -> list[bytes]:
    store = _Store({n: n.encode() * 5000 for n in names})
    cache = ScratchCache(Path(root), max_bytes=10**9)
    return [cache.fetch(n, store).read_bytes() for n in names]


def test_processes_sharing_a_scratch_folder_each_see_whole_copies(tmp_path):
    names = [f"img-{i}.jpg" for i in range(40)]
    # Forked processes: each its own ScratchCache on the same folder, as workers on a machine.
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.starmap(_fetch_all, [(str(tmp_path / "s"), names)] * 4)
    for result in results:
        assert result == [n.encode() * 5000 for n in names]
    copies = [p for p in (tmp_path / "s").rglob("*") if p.is_file()]
    assert len(copies) == 40 and not [p for p in copies if p.name.startswith(".")]


# --- imports and jobs from the bucket -----------------------------------------------------------


@pytest.fixture
def stored_dataset(s3_bucket, settings, tmp_path):
    """The planted dataset of tests/curation_jobs, uploaded under imports/set1/ in the bucket
    (nothing of it on this machine's disk)."""
    from tests.curation_jobs.conftest import write_dataset

    local = tmp_path / "upload"
    manifest = write_dataset(local)
    for path in local.iterdir():
        s3_bucket.put(f"imports/set1/{path.name}", path.read_bytes())
    for path in local.iterdir():
        path.unlink()
    local.rmdir()
    # A record that climbs out of the import prefix, into the pool's own files.
    text = manifest.name
    s3_bucket.put(
        f"imports/set1/{text}",
        s3_bucket.get(f"imports/set1/{text}") + b"../../images/ab/stolen.jpg,3\n",
    )
    settings.IMPORT_STORAGE_ROOTS = ["imports"]
    settings.IMPORT_ROOTS = []
    return f"storage:imports/set1/{text}"


@pytest.mark.django_db(transaction=True)  # the job is enqueued after commit
def test_a_manifest_in_the_bucket_is_imported_and_filtered_from_it(
    stored_dataset, s3_bucket, eager_celery
):
    from tests.curation_jobs.conftest import EXPECTED

    report = import_source("manifest", stored_dataset, "set1", scale=(1, 10))
    assert report.created == len(EXPECTED)
    assert len(report.errors) == 1 and "stolen.jpg" in report.errors[0]
    assert "climbs out" in report.errors[0]
    assert report.source.location == "storage:imports/set1"

    job = start_job(report.source, overrides={"clip": {"enabled": False}, "chunk_size": 4})
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.progress
    got = {
        d.item.path: (d.decision, sorted(d.reasons))
        for d in Decision.objects.filter(job=job).select_related("item")
    }
    assert got == {name: (dec, sorted(reasons)) for name, (dec, reasons) in EXPECTED.items()}
    stored = set(Image.objects.values_list("file", flat=True))
    assert stored and stored <= set(s3_bucket.names("images/"))
    assert SourceItem.objects.filter(source=report.source, image__isnull=False).count() == len(
        [n for n, (_, r) in EXPECTED.items() if "corrupt" not in r]
    )
    assert no_local_media(settings.MEDIA_ROOT) == []


@pytest.mark.django_db
def test_the_import_api_checks_storage_paths_against_the_storage_roots(stored_dataset):
    curator = client_for(make_user("cur", "curator"))
    body = {"kind": "manifest", "name": "x", "scale": [1, 10]}
    for path in ("storage:images/ab/x.csv", "storage:imports/../images/x.csv"):
        refused = curator.post("/api/sources/", {**body, "path": path}, format="json")
        assert refused.status_code == 400, refused.content
        assert refused.json()["code"] == "outside_import_roots"
    wrong_kind = curator.post(
        "/api/sources/", {**body, "kind": "ava", "path": "storage:imports/set1"}, format="json"
    )
    assert wrong_kind.status_code == 400 and "manifest" in wrong_kind.json()["detail"]
    with pytest.raises(MissingLabelFile, match=r"storage:imports/none\.csv does not exist"):
        import_source("manifest", "storage:imports/none.csv", "none", scale=(1, 10))


@pytest.mark.django_db
def test_the_command_line_imports_a_manifest_from_the_bucket(stored_dataset):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("import_source", "manifest", stored_dataset, "--name", "cli", "--scale", "1",
                 "10", stdout=out, stderr=StringIO())
    source = SourceItem.objects.filter(source__name="cli").first().source
    assert source.location == "storage:imports/set1" and source.items.count() == 9
