"""Reads for releases: the rows a release is built from, streamed from the database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.db.models import Exists, OuterRef, Q

from annotation.models import ConsensusLabel, Project, ProjectImage
from curation.imaging.hashing import from_signed64, int_to_hex
from curation.models import Decision, DecisionKind, FilterJob, Image, JobStatus, Source
from humanbeauty.standard import DIMENSION_KEYS, OVERALL_KEY

from .models import Release, ReleaseItem, ReleaseStatus, Split
from .release import ReleaseRow

IMAGE_FIELDS = ("id", "file", "sha256", "phash", "cluster_id", "width", "height", "format")


def _image_parts(values: Sequence) -> dict:
    pk, file, sha, phash, cluster, width, height, fmt = values
    from django.conf import settings

    return {
        "image_id": pk,
        "file": str(settings.MEDIA_ROOT / file) if file else None,
        "sha256": sha,
        "phash": int_to_hex(from_signed64(phash)) if phash is not None else None,
        "cluster": cluster,
        "width": width,
        "height": height,
        "format": fmt,
    }


def expert_rows(
    projects: Sequence[Project], *, min_raters: int = 1, max_disagreement: float | None = None
) -> Iterator[ReleaseRow]:
    """12-dimension rows: consensus labels of production images that reviewers did not exclude;
    a reviewer's final scores win over the computed ones."""
    excluded = ProjectImage.objects.filter(
        project=OuterRef("project"), image=OuterRef("image"), excluded=True
    )
    labels = (
        ConsensusLabel.objects.filter(project__in=projects, n_raters__gte=min_raters)
        .filter(~Exists(excluded))
        .select_related("project")
        .order_by("image_id", "project_id")
    )
    if max_disagreement is not None:
        labels = labels.filter(Q(max_std__lte=max_disagreement) | Q(final__isnull=False))
    seen: set[int] = set()
    images = Image.objects.filter(pk__in=labels.values("image_id")).values_list(*IMAGE_FIELDS)
    by_id = {v[0]: v for v in images.iterator(chunk_size=5000)}
    for label in labels.iterator(chunk_size=5000):
        if label.image_id in seen:  # an image in two projects: the first project wins
            continue
        seen.add(label.image_id)
        if label.final:
            scores = tuple(label.final.get(k) for k in DIMENSION_KEYS)
            std = tuple(0.0 if v is not None else None for v in scores)
            n = tuple((label.scores.get(k) or {}).get("n", 0) for k in DIMENSION_KEYS)
        else:
            cells = [label.scores.get(k) for k in DIMENSION_KEYS]
            scores = tuple(c["mos"] if c else None for c in cells)
            std = tuple(c["std"] if c else None for c in cells)
            n = tuple(c["n"] if c else 0 for c in cells)
        overall = scores[DIMENSION_KEYS.index(OVERALL_KEY)]
        if overall is None:
            continue
        yield ReleaseRow(
            **_image_parts(by_id[label.image_id]),
            source=label.project.name,
            overall=float(overall),
            scores=scores,
            std=std,
            n=n,
        )


def overall_rows(sources: Sequence[Source], skip: set[int]) -> Iterator[ReleaseRow]:
    """Overall-only rows: images accepted by each source's latest finished filter job, with the
    source's min-max normalised score."""
    for source in sources:
        job = (
            FilterJob.objects.filter(source=source, status=JobStatus.DONE)
            .order_by("-finished_at", "-id")
            .first()
        )
        if job is None:
            continue
        accepted = (
            Decision.objects.filter(job=job)
            .filter(
                Q(override=DecisionKind.ACCEPTED) | Q(override="", decision=DecisionKind.ACCEPTED)
            )
            .filter(item__score__isnull=False, item__image__isnull=False)
            .order_by("item__image_id")
            .values_list("item__score", *(f"item__image__{f}" for f in IMAGE_FIELDS))
        )
        for score, *image in accepted.iterator(chunk_size=5000):
            if image[0] in skip:
                continue
            skip.add(image[0])
            yield ReleaseRow(
                **_image_parts(image),
                source=source.name,
                overall=float(score),
                scores=None,
                std=None,
                n=None,
            )


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
