"""Reads for the model registry, batch scoring and training runs (releases: selectors.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Max, QuerySet

from curation.models import Image, Source

from .models import ModelVersion, Release, ReleaseItem, ReleaseStatus, ScoringJob, TrainingRun


def model_versions() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("release", "created_by").order_by(
        "-is_active", "-created_at", "-id"
    )


def get_version(version: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(version=version).first()


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def version_names(limit: int = 10) -> list[str]:
    return list(model_versions().values_list("version", flat=True)[:limit])


def scoring_jobs() -> QuerySet[ScoringJob]:
    return ScoringJob.objects.select_related("model_version", "release", "source").order_by("-id")


def training_runs() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("model_version", "release").order_by("-id")


def ready_releases(limit: int = 200) -> QuerySet[Release]:
    return Release.objects.filter(status=ReleaseStatus.READY).order_by("-created_at")[:limit]


@dataclass(frozen=True)
class ImageRow:
    """One image to score: what the scoring job reads and what its output row names."""

    image_id: int
    file: str  # storage name under MEDIA_ROOT
    sha256: str
    path: str  # the path it was imported under, else its storage name
    split: str = ""


def source_names(limit: int = 500) -> list[str]:
    """Sources a pool scoring job may be limited to, by name."""
    return list(Source.objects.order_by("name").values_list("name", flat=True)[:limit])


def max_image_id(source_id: int | None = None) -> int:
    images = Image.objects.all() if source_id is None else Image.objects.filter(source=source_id)
    return images.aggregate(top=Max("id"))["top"] or 0


def pool_image_count(source_id: int | None, up_to: int) -> int:
    images = Image.objects.filter(id__lte=up_to)
    if source_id is not None:
        images = images.filter(source=source_id)
    return images.count()


def scoring_chunks(job: ScoringJob, chunk_size: int) -> Iterator[list[ImageRow]]:
    """The job's images in id order, `chunk_size` at a time (keyset pages, so a pool of
    millions is never held at once): a release's items, or the pool (or one source) up to the
    highest image id there was when the job was created."""
    if job.scope == ScoringJob.Scope.RELEASE:
        items = ReleaseItem.objects.filter(release_id=job.release_id)
        fields = ("image_id", "image__file", "image__sha256", "image__original_path", "split")
        key = "image_id"
    else:
        items = Image.objects.filter(id__lte=job.config.get("max_image_id", 0))
        if job.source_id is not None:
            items = items.filter(source_id=job.source_id)
        fields = ("id", "file", "sha256", "original_path")
        key = "id"
    last = 0
    while True:
        page = list(
            items.filter(**{f"{key}__gt": last}).order_by(key).values_list(*fields)[:chunk_size]
        )
        if not page:
            return
        yield [ImageRow(v[0], v[1], v[2], v[3] or v[1], *v[4:]) for v in page]
        last = page[-1][0]


def release_item_count(release: Release) -> int:
    return ReleaseItem.objects.filter(release=release).count()
