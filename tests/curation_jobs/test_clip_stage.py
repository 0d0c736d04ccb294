"""The CLIP stage inside a job: a tiny random CLIP loaded from a local file through the job's
configuration (this checks the wiring, not accuracy)."""

import pytest

from core import jobs as core_jobs
from curation.models import Decision, FilterJob, Source, StagedItem
from curation.services import jobs
from curation.services.jobs import start_job
from curation.services.sources import import_source
from tests.curation_imaging.tiny_clip import TINY_MODEL, write_tiny_clip

from .conftest import EXPECTED, write_dataset

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(("person_threshold", "adds_no_person"), [(0.0, False), (1.0, True)])
def test_clip_scores_and_reasons_reach_the_decisions(
    import_root, eager_celery, tmp_path, person_threshold, adds_no_person, settings
):
    checkpoint = write_tiny_clip(tmp_path / "clip")
    settings.MODEL_ROOTS = [(tmp_path / "clip").resolve()]
    manifest = write_dataset(import_root / "clip")
    import_source("manifest", manifest, "clip", scale=(1, 10))
    job = start_job(
        Source.objects.get(name="clip"),
        overrides={"clip": {"model": TINY_MODEL, "checkpoint": str(checkpoint),
                  "person_threshold": person_threshold, "inappropriate_threshold": 1.0}},
    )
    assert job.config["clip"]["checkpoint"] == str(checkpoint)
    for d in Decision.objects.filter(job=job).select_related("item"):
        decodable = "corrupt" not in d.reasons
        if not decodable:
            assert "clip_person" not in d.measurements
            continue
        assert 0.0 <= d.measurements["clip_person"] <= 1.0
        assert 0.0 <= d.measurements["clip_inappropriate"] <= 1.0
        expected = set(EXPECTED[d.item.path][1]) | ({"no_person"} if adds_no_person else set())
        assert set(d.reasons) == expected, d.item.path


def test_a_redelivered_cpu_or_gpu_stage_redoes_nothing(import_root, tmp_path, settings):
    """The CPU stages stage each readable item once; the GPU stage decides each once; the job's
    counts are those of one pass, however often Celery delivers either part."""
    checkpoint = write_tiny_clip(tmp_path / "clip")
    manifest = write_dataset(import_root / "twice")
    source = import_source("manifest", manifest, "twice", scale=(1, 10)).source
    config = jobs.merged_config({
        "clip": {"model": TINY_MODEL, "checkpoint": str(checkpoint), "person_threshold": 0.0,
                 "inappropriate_threshold": 1.0},
        "faces": {"enabled": False},
    })
    job = FilterJob.objects.create(source=source, config=config)
    (chunk,) = jobs.plan_chunks(job)
    jobs.mark_running(job.pk, 1)

    assert jobs.process_chunk(job.pk, chunk, 0) is True  # waits for its GPU stage
    staged = set(StagedItem.objects.filter(job=job).values_list("item_id", flat=True))
    unreadable = {d.item_id for d in Decision.objects.filter(job=job)}
    assert len(staged) == 7 and len(unreadable) == 2 and not staged & unreadable
    assert jobs.process_chunk(job.pk, chunk, 0) is True  # redelivered: nothing new
    assert set(StagedItem.objects.filter(job=job).values_list("item_id", flat=True)) == staged

    assert jobs.clip_chunk(job.pk, chunk, 0) == 7
    assert jobs.clip_chunk(job.pk, chunk, 0) == 0  # redelivered: nothing left to decide
    job.refresh_from_db()
    assert job.status == "done" and not StagedItem.objects.filter(job=job).exists()
    assert job.progress["stages"]["validate"] == 9 and job.progress["stages"]["clip"] == 7
    assert Decision.objects.filter(job=job).count() == 9
    for d in Decision.objects.filter(job=job).select_related("item"):
        assert ("clip_person" in d.measurements) == (d.item_id in staged)
        assert set(d.reasons) == set(EXPECTED[d.item.path][1]) - {"no_face"}, d.item.path


def test_a_cancelled_job_leaves_nothing_staged(import_root, tmp_path):
    checkpoint = write_tiny_clip(tmp_path / "clip")
    manifest = write_dataset(import_root / "cancelled")
    source = import_source("manifest", manifest, "cancelled", scale=(1, 10)).source
    config = jobs.merged_config({
        "clip": {"model": TINY_MODEL, "checkpoint": str(checkpoint)},
        "faces": {"enabled": False},
    })
    job = FilterJob.objects.create(source=source, config=config)
    (chunk,) = jobs.plan_chunks(job)
    jobs.mark_running(job.pk, 1)
    assert jobs.process_chunk(job.pk, chunk, 0) is True
    assert StagedItem.objects.filter(job=job).count() == 7
    core_jobs.cancel(FilterJob, job.pk, None)
    assert jobs.clip_chunk(job.pk, chunk, 0) == 0  # its GPU stage, delivered after the cancel
    assert not StagedItem.objects.filter(job=job).exists()
    assert Decision.objects.filter(job=job).count() == 2  # what it had decided stays
