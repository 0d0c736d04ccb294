"""A project made from a source and a release built over it take the same filter job: the
newest that ran to its end. Not a cancelled one (it decided only part of the images), and
not the one that happened to finish last."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import ProjectImage
from annotation.services import WorkflowError
from annotation.services.from_curation import project_from_source
from curation.models import Decision, FilterJob, Image, JobStatus, Source, SourceItem
from curation.selectors import latest_finished_job
from modeling.selectors import has_rows, release_rows

pytestmark = pytest.mark.django_db


def source_with_items(n: int) -> tuple[Source, list[SourceItem]]:
    source = Source.objects.create(name="src", kind="manifest", score_min=0, score_max=1)
    items = []
    for i in range(n):
        image = Image.objects.create(
            file=f"images/lj/{i}.jpg", sha256=f"{i:064x}", width=400, height=400, format="JPEG"
        )
        items.append(
            SourceItem.objects.create(
                source=source, path=f"{i}.jpg", raw_score=0.5, score=0.5, image=image
            )
        )
    return source, items


def job_accepting(source, items, accepted: SourceItem, status: str, finished_at) -> FilterJob:
    """A job that decided every item and accepted only `accepted` (written directly: which job
    is taken is under test here, the pipeline in tests/curation_jobs)."""
    job = FilterJob.objects.create(source=source, status=status, finished_at=finished_at)
    for item in items:
        Decision.objects.create(
            job=job,
            item=item,
            decision="accepted" if item == accepted else "rejected",
            reasons=[] if item == accepted else ["no_face"],
        )
    return job


def released_images(source: Source) -> set[int]:
    return {row.image_id for row in release_rows([], [source])}


def test_project_and_release_take_the_newest_job_that_ran_to_its_end():
    source, items = source_with_items(3)
    now = timezone.now()
    # Two jobs ran side by side: the newer one finished first. Then one was cancelled.
    older = job_accepting(source, items, items[0], JobStatus.DONE, now)
    newer = job_accepting(source, items, items[1], JobStatus.DONE, now - timedelta(hours=1))
    job_accepting(source, items, items[2], JobStatus.CANCELLED, now + timedelta(hours=1))
    assert older.pk < newer.pk

    assert latest_finished_job(source) == newer
    result = project_from_source(source, "From the source")
    project_images = set(
        ProjectImage.objects.filter(project=result.project).values_list("image_id", flat=True)
    )
    assert result.job == newer
    assert project_images == released_images(source) == {items[1].image_id}


def test_a_source_whose_only_finished_job_was_cancelled_gives_neither():
    source, items = source_with_items(2)
    job_accepting(source, items, items[0], JobStatus.CANCELLED, timezone.now())

    assert latest_finished_job(source) is None
    with pytest.raises(WorkflowError, match="no filter job that ran to its end"):
        project_from_source(source, "Partial")
    assert not has_rows([], [source]) and released_images(source) == set()
