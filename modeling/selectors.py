"""Reads for releases: the rows a release is built from, streamed from the database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.db.models import Exists, OuterRef, Q

from annotation.models import ConsensusLabel, Project, ProjectImage
from curation.imaging.hashing import from_signed64, int_to_hex
from curation.models import Decision, DecisionKind, FilterJob, JobStatus, Source
from humanbeauty.standard import DIMENSION_KEYS, OVERALL_KEY

from .models import Release, ReleaseItem, ReleaseStatus, Split
from .release import ReleaseRow

IMAGE_FIELDS = ("id", "file", "sha256", "phash", "cluster_id", "width", "height", "format")


def _image_parts(values: Sequence, media_root: str) -> dict:
    pk, file, sha, phash, cluster, width, height, fmt = values
    return {
        "image_id": pk,
        "file": f"{media_root}/{file}" if file else None,
        "sha256": sha,
        "phash": int_to_hex(from_signed64(phash)) if phash is not None else None,
        "cluster": cluster,
        "width": width,
        "height": height,
        "format": fmt,
    }


def _labels(projects: Sequence[Project], min_raters: int, max_disagreement: float | None):
    excluded = ProjectImage.objects.filter(
        project=OuterRef("project"), image=OuterRef("image"), excluded=True
    )
    labels = ConsensusLabel.objects.filter(project__in=projects, n_raters__gte=min_raters).filter(
        ~Exists(excluded)
    )
    if max_disagreement is not None:
        labels = labels.filter(Q(max_std__lte=max_disagreement) | Q(final__isnull=False))
    return labels


def has_rows(
    projects: Sequence[Project],
    sources: Sequence[Source],
    *,
    min_raters: int = 1,
    max_disagreement: float | None = None,
) -> bool:
    """Whether the selection holds anything, without reading it."""
    if _labels(projects, min_raters, max_disagreement).exists():
        return True
    return any(
        _accepted(job).exists()
        for job in (_latest_job(source) for source in sources)
        if job is not None
    )


def expert_rows(
    projects: Sequence[Project], *, min_raters: int = 1, max_disagreement: float | None = None
) -> Iterator[ReleaseRow]:
    """12-dimension rows: consensus labels of production images that reviewers did not exclude;
    a reviewer's final scores win over the computed ones. Streamed in image order."""
    from django.conf import settings

    media_root = str(settings.MEDIA_ROOT)
    labels = (
        _labels(projects, min_raters, max_disagreement)
        .order_by("image_id", "project_id")
        .values_list("project__name", "scores", "final", *(f"image__{f}" for f in IMAGE_FIELDS))
    )
    last = None
    for project_name, cells_by_key, final, *image in labels.iterator(chunk_size=5000):
        if image[0] == last:  # an image in two projects: the first project wins
            continue
        last = image[0]
        if final:
            scores = tuple(final.get(k) for k in DIMENSION_KEYS)
            std = tuple(0.0 if v is not None else None for v in scores)
            n = tuple((cells_by_key.get(k) or {}).get("n", 0) for k in DIMENSION_KEYS)
        else:
            cells = [cells_by_key.get(k) for k in DIMENSION_KEYS]
            scores = tuple(c["mos"] if c else None for c in cells)
            std = tuple(c["std"] if c else None for c in cells)
            n = tuple(c["n"] if c else 0 for c in cells)
        overall = scores[DIMENSION_KEYS.index(OVERALL_KEY)]
        if overall is None:
            continue
        yield ReleaseRow(
            **_image_parts(image, media_root),
            source=project_name,
            overall=float(overall),
            scores=scores,
            std=std,
            n=n,
        )


def _latest_job(source: Source) -> FilterJob | None:
    return (
        FilterJob.objects.filter(source=source, status=JobStatus.DONE)
        .order_by("-finished_at", "-id")
        .first()
    )


def _accepted(job: FilterJob):
    return (
        Decision.objects.filter(job=job)
        .filter(Q(override=DecisionKind.ACCEPTED) | Q(override="", decision=DecisionKind.ACCEPTED))
        .filter(item__score__isnull=False, item__image__isnull=False)
    )


def overall_rows(sources: Sequence[Source], skip: set[int]) -> Iterator[ReleaseRow]:
    """Overall-only rows: images accepted by each source's latest finished filter job, with the
    source's min-max normalised score; images in `skip` (and each one once) are left out."""
    from django.conf import settings

    media_root = str(settings.MEDIA_ROOT)
    for source in sources:
        job = _latest_job(source)
        if job is None:
            continue
        accepted = (
            _accepted(job)
            .order_by("item__image_id")
            .values_list("item__score", *(f"item__image__{f}" for f in IMAGE_FIELDS))
        )
        for score, *image in accepted.iterator(chunk_size=5000):
            if image[0] in skip:
                continue
            skip.add(image[0])
            yield ReleaseRow(
                **_image_parts(image, media_root),
                source=source.name,
                overall=float(score),
                scores=None,
                std=None,
                n=None,
            )


def release_rows(
    projects: Sequence[Project],
    sources: Sequence[Source],
    *,
    min_raters: int = 1,
    max_disagreement: float | None = None,
) -> Iterator[ReleaseRow]:
    """Every row of a release, in a stable order: 12-dimension rows first, then overall-only
    rows of images not already in (a generator: a release is built in two streamed passes)."""
    seen: set[int] = set()
    for row in expert_rows(projects, min_raters=min_raters, max_disagreement=max_disagreement):
        seen.add(row.image_id)
        yield row
    yield from overall_rows(sources, seen)


def previous_splits(release: Release) -> tuple[set[int], set[int]]:
    """(test ids, train+val ids) of the newest earlier ready version of the same release name:
    its test set stays in test, and nothing it trained on moves into test."""
    previous = (
        Release.objects.filter(name=release.name, status=ReleaseStatus.READY)
        .exclude(pk=release.pk)
        .filter(created_at__lt=release.created_at)
        .order_by("-created_at")
        .first()
    )
    if previous is None:
        return set(), set()
    test, trainval = set(), set()
    for image_id, split in ReleaseItem.objects.filter(release=previous).values_list(
        "image_id", "split"
    ):
        (test if split == Split.TEST else trainval).add(image_id)
    return test, trainval
