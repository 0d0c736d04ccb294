"""Filter jobs and projects made from them never keep two members of one near-duplicate
cluster, whatever the order or concurrency; a displaced representative is recorded and shown."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from PIL import Image as PILImage

from annotation.services.from_curation import project_from_job
from curation.models import ClusterChange, Decision, FilterJob, Image, Source
from curation.services import jobs
from curation.services.sources import import_source
from tests.curation_api import conftest as api_fixtures
from tests.curation_jobs import conftest as job_fixtures

from .test_pool_ingest import astronaut, jpeg, near_duplicates_of_astronaut, other_photos
from .test_pool_order import empty_pool

pytestmark = pytest.mark.django_db(transaction=True)
# The fixtures of the curation tests, here too.
users, client_as = api_fixtures.users, api_fixtures.client_as
import_root = job_fixtures.import_root
NO_MODELS = {"clip": {"enabled": False}, "faces": {"enabled": False}}


def make_source(folder: Path, files: dict[str, bytes], name: str) -> Source:
    """A manifest source whose items come in the order of `files`."""
    folder.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        (folder / fname).write_bytes(data)
    (folder / "m.csv").write_text("path\n" + "\n".join(files) + "\n")
    return import_source("manifest", folder / "m.csv", name).source


def accepted_images(job: FilterJob) -> list[Image]:
    ids = [d.item.image_id for d in Decision.objects.filter(job=job).select_related("item")
           if d.final == "accepted"]
    return list(Image.objects.filter(pk__in=ids))


def assert_one_per_cluster(images: list[Image]) -> None:
    clusters = [i.cluster_id for i in images if i.cluster_id is not None]
    assert len(clusters) == len(set(clusters)), clusters


def test_the_demo_astronaut_twice_is_accepted_once(import_root, eager_celery, client_as):
    """The issue's case: the smaller copy comes first and is accepted while alone; the larger
    one displaces it. Only the larger is accepted, the change is recorded and visible."""
    base = astronaut()
    files = {"a_small.jpg": jpeg(base, 90),
             "b_big.jpg": jpeg(base.resize((1024, 1024), PILImage.LANCZOS), 90),
             "coffee.jpg": other_photos()["coffee.jpg"]}
    source = make_source(import_root / "s", files, "s")
    job = jobs.start_job(source, overrides={**NO_MODELS, "chunk_size": 1})
    job.refresh_from_db()
    assert job.status == "done"
    d = {x.item.path: x for x in Decision.objects.filter(job=job).select_related("item")}
    assert d["b_big.jpg"].decision == "accepted" and d["b_big.jpg"].reasons == []
    assert d["a_small.jpg"].decision == "rejected"
    assert d["a_small.jpg"].reasons == ["near_duplicate"]
    small, big = d["a_small.jpg"].item.image, d["b_big.jpg"].item.image
    assert small.cluster_id == big.cluster_id is not None
    assert_one_per_cluster(accepted_images(job))

    change = ClusterChange.objects.get()
    assert (change.old_representative_id, change.new_representative_id, change.caused_by_id) \
        == (small.pk, big.pk, big.pk)
    assert change.details["decisions"] == [d["a_small.jpg"].pk]
    note = d["a_small.jpg"].measurements["cluster_change"]
    assert note["old_representatives"] == [small.pk] and note["new_representative"] == big.pk
    assert d["a_small.jpg"].measurements["cluster_representative"] == big.pk

    # visible: the decisions API, the cluster-changes API, the report
    client = client_as("researcher")
    rows = client.get(f"/api/jobs/{job.pk}/decisions/").json()["results"]
    row = next(r for r in rows if r["item"]["path"] == "a_small.jpg")
    assert row["measurements"]["cluster_change"]["new_representative"] == big.pk
    changes = client.get(f"/api/jobs/{job.pk}/cluster-changes/").json()
    assert [(c["old_representative"], c["new_representative"]) for c in changes] == \
        [(small.pk, big.pk)]
    assert client.get(f"/api/jobs/{job.pk}/report/?format=json").json()["cluster_changes"] == 1

    result = project_from_job(job, "from-job")
    assert sorted(result.project.items.values_list("image_id", flat=True)) == sorted(
        [big.pk, d["coffee.jpg"].item.image_id])


def test_a_later_image_through_another_door_updates_the_job(import_root, eager_celery,
                                                           tmp_path):
    base = astronaut()
    files = {"small.jpg": jpeg(base, 90), "coffee.jpg": other_photos()["coffee.jpg"]}
    job = jobs.start_job(make_source(import_root / "s", files, "s"), overrides=NO_MODELS)
    job.refresh_from_db()
    small = Decision.objects.get(job=job, item__path="small.jpg")
    assert small.decision == "accepted"
    # a larger copy arrives later through import_images
    folder = tmp_path / "later"
    folder.mkdir()
    (folder / "big.jpg").write_bytes(jpeg(base.resize((900, 900)), 85))
    call_command("import_images", str(folder), "--project", "p", stdout=io.StringIO(),
                 verbosity=0)
    big = Image.objects.get(original_path="big.jpg")
    small.refresh_from_db()
    assert (small.decision, small.reasons) == ("rejected", ["near_duplicate"])
    assert small.measurements["cluster_change"]["caused_by"] == big.pk
    # the job no longer offers the displaced image to a project
    result = project_from_job(job, "after")
    assert list(result.project.items.values_list("image_id", flat=True)) == [
        Decision.objects.get(job=job, item__path="coffee.jpg").item.image_id]


def test_an_override_cannot_put_two_members_of_a_cluster_in_a_project(import_root,
                                                                      eager_celery, users):
    dups = near_duplicates_of_astronaut()
    job = jobs.start_job(make_source(import_root / "s", dups, "s"), overrides=NO_MODELS)
    job.refresh_from_db()
    accepted = accepted_images(job)
    assert len(accepted) == 1
    for d in Decision.objects.filter(job=job, decision="rejected"):
        jobs.override_decision(d, "accepted", "curator says keep", users["curator"])
    result = project_from_job(job, "overridden")
    images = list(Image.objects.filter(pk__in=result.project.items.values("image_id")))
    assert len(images) == 1 and images[0].pk == accepted[0].pk


def run_concurrently(job: FilterJob, lanes: int = 2) -> None:
    """Two workers take the job's chunks from one queue at the same moment, as Celery's
    prefork workers would (each thread has its own PostgreSQL connection)."""
    chunks = jobs.plan_chunks(job)
    jobs.mark_running(job.pk, len(chunks))
    queue = list(enumerate(chunks))
    lock = threading.Lock()
    barrier = threading.Barrier(lanes)
    errors = []

    def worker():
        try:
            barrier.wait(timeout=60)
            while True:
                with lock:
                    if not queue:
                        return
                    index, chunk = queue.pop()
                jobs.process_chunk(job.pk, chunk, index)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(lanes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors


def reset() -> None:
    from annotation.models import Project

    Project.objects.all().delete()
    empty_pool()


def job_files() -> dict[str, bytes]:
    from skimage import data

    camera = PILImage.fromarray(data.camera()).convert("RGB")
    return {**near_duplicates_of_astronaut(), **other_photos(),
            "camera_big.jpg": jpeg(camera.resize((900, 900)), 80),
            "camera_small.jpg": jpeg(camera.resize((300, 300)), 95)}


def test_same_images_any_order_or_concurrency_same_accepted_set(import_root, eager_celery):
    files = job_files()
    outcomes = []
    for run, names in enumerate((list(files), list(files)[::-1], sorted(files, key=len))):
        empty_pool()
        source = make_source(import_root / f"r{run}", {n: files[n] for n in names}, f"r{run}")
        job = jobs.start_job(source, overrides={**NO_MODELS, "chunk_size": 2})
        outcomes.append(sorted(i.sha256 for i in accepted_images(job)))
    for run, names in enumerate((list(files), list(files)[::-1])):
        reset()
        source = make_source(import_root / f"c{run}", {n: files[n] for n in names}, f"c{run}")
        job = FilterJob.objects.create(source=source, config=jobs.merged_config(
            {**NO_MODELS, "chunk_size": 1}), progress={"total": len(files)})
        run_concurrently(job)
        job.refresh_from_db()
        assert job.status == "done" and Decision.objects.filter(job=job).count() == len(files)
        accepted = accepted_images(job)
        assert_one_per_cluster(accepted)
        outcomes.append(sorted(i.sha256 for i in accepted))
        project = project_from_job(job, f"concurrent-{run}").project
        assert_one_per_cluster(list(Image.objects.filter(pk__in=project.items.values("image_id"))))
    assert all(o == outcomes[0] for o in outcomes), outcomes
    assert len(outcomes[0]) == 3  # one per group: astronaut, camera, coffee


def test_source_priority_counts_every_source_holding_the_bytes(import_root, eager_celery):
    """X (in a low- and a high-priority source) and Y (a near-duplicate of the same size, in a
    middle one): X is kept whichever source's job stored X first."""
    base = astronaut().resize((700, 700))
    x, y = jpeg(base, 90), jpeg(base, 75)
    kept = []
    for run, order in enumerate((("low", "mid", "high"), ("high", "mid", "low"))):
        reset()
        priority = {"low": 0, "mid": 3, "high": 5}
        files = {"low": {"x.jpg": x}, "mid": {"y.jpg": y}, "high": {"x.jpg": x}}
        for name in order:
            folder = import_root / f"{name}{run}"
            folder.mkdir()
            for fname, data in files[name].items():
                (folder / fname).write_bytes(data)
            (folder / "m.csv").write_text("path\n" + "\n".join(files[name]) + "\n")
            source = import_source("manifest", folder / "m.csv", f"{name}{run}",
                                   priority=priority[name]).source
            jobs.start_job(source, overrides=NO_MODELS)
        image_x = Image.objects.get(sha256=Image.objects.get(original_path="x.jpg").sha256)
        assert image_x.cluster.representative_id == image_x.pk
        mid = Decision.objects.get(job__source__name=f"mid{run}")
        assert (mid.decision, mid.reasons) == ("rejected", ["near_duplicate"])
        kept.append(image_x.sha256)
    assert kept[0] == kept[1]
