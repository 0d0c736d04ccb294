"""Reads of the modeling app: the rows a release is built from (streamed from the database),
then the model registry, batch scoring and training runs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet

from annotation.models import (
    ItemKind,
    Project,
    ProjectImage,
    ProjectStats,
    RaterStatus,
    Rating,
    ReviewItem,
    ReviewStatus,
    Skip,
    SkipReason,
)
from annotation.selectors import kept_labels, label_scores, rater_table
from core.jobs import live
from curation.imaging.hashing import from_signed64, int_to_hex
from curation.models import FilterJob, Image, Source
from curation.selectors import accepted_decisions, job_summary, latest_finished_job
from curation.sources.terms import Terms, resolve
from humanbeauty.standard import DIMENSION_KEYS, OVERALL_KEY

from .models import (
    ModelVersion,
    Release,
    ReleaseItem,
    ReleaseStatus,
    ScoringJob,
    Split,
    TrainingRun,
)
from .release import ReleaseRow, SplitHistory, diff_splits
from .release.errors import ReleaseError
from .release.store import located

OVERALL_INDEX = DIMENSION_KEYS.index(OVERALL_KEY)
IMAGE_FIELDS = ("id", "file", "sha256", "phash", "cluster_id", "width", "height", "format")
# An image's own terms, then its source's (`curation.sources.terms.resolve` decides).
TERMS_FIELDS = ("licence", "consent_basis", "source__licence", "source__consent_basis")


def _terms(own_licence: str, own_basis: str, licence: str, basis: str) -> dict[str, str]:
    terms = resolve(Terms(own_licence, own_basis), Terms(licence, basis))
    return {"licence": terms.licence, "consent_basis": terms.consent_basis}


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
    """Labels reviewers kept, from enough raters, and (unless a reviewer set the final scores)
    agreeing well enough."""
    labels = kept_labels(projects).filter(n_raters__gte=min_raters)
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
    """Whether the selection holds anything, without reading it. A rated image whose consensus
    is stale counts: the build refreshes consensus before it reads labels."""
    if _labels(projects, min_raters, max_disagreement).exists():
        return True
    if ProjectImage.objects.filter(
        project__in=projects, consensus_stale=True, excluded=False
    ).exists():
        return True
    return any(
        _accepted(job).exists()
        for job in (latest_finished_job(source) for source in sources)
        if job is not None
    )


def expert_rows(
    projects: Sequence[Project], *, min_raters: int = 1, max_disagreement: float | None = None
) -> Iterator[ReleaseRow]:
    """12-dimension rows: consensus labels of production images that reviewers did not exclude;
    a reviewer's final scores win over the computed ones. Streamed in image order."""
    media_root = str(settings.MEDIA_ROOT)
    labels = (
        _labels(projects, min_raters, max_disagreement)
        .order_by("image_id", "project_id")
        .values_list("project__name", "scores", "final", *(f"image__{f}" for f in IMAGE_FIELDS),
                     *(f"image__{f}" for f in TERMS_FIELDS))
    )
    last = None
    n = len(IMAGE_FIELDS)
    for project_name, cells_by_key, final, *fields in labels.iterator(chunk_size=5000):
        image, terms = fields[:n], fields[n:]
        if image[0] == last:  # an image in two projects: the first project wins
            continue
        last = image[0]
        label = label_scores(cells_by_key, final)
        overall = label.scores[OVERALL_INDEX]
        if overall is None:
            continue
        yield ReleaseRow(
            **_image_parts(image, media_root),
            source=project_name,
            overall=float(overall),
            scores=label.scores,
            std=label.std,
            n=label.n,
            **_terms(*terms),
        )


def _accepted(job: FilterJob):
    """The job's finally accepted images that have a score (an overall-only row needs one)."""
    return accepted_decisions(job).filter(item__score__isnull=False)


def overall_rows(sources: Sequence[Source], skip: set[int]) -> Iterator[ReleaseRow]:
    """Overall-only rows: images accepted by each source's latest finished filter job, with the
    source's min-max normalised score; images in `skip` (and each one once) are left out."""
    media_root = str(settings.MEDIA_ROOT)
    for source in sources:
        job = latest_finished_job(source)
        if job is None:
            continue
        accepted = (
            _accepted(job)
            .order_by("item__image_id")
            .values_list("item__score", *(f"item__image__{f}" for f in IMAGE_FIELDS),
                         "item__image__licence", "item__image__consent_basis")
        )
        # The record is this source's: its terms under the image's own.
        for score, *image, own_licence, own_basis in accepted.iterator(chunk_size=5000):
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
                **_terms(own_licence, own_basis, source.licence, source.consent_basis),
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


def unfinished_earlier_versions(release: Release) -> list[str]:
    """Earlier versions of the same name still queued or building: until they are ready, the
    splits this version must keep are not known."""
    return list(
        Release.objects.filter(
            name=release.name,
            created_at__lt=release.created_at,
        )
        .filter(live(Release))
        .exclude(pk=release.pk)
        .order_by("created_at")
        .values_list("version", flat=True)
    )


def split_history(release: Release) -> SplitHistory:
    """Where images were in EVERY earlier ready version of the same release name (not only the
    newest): the version promise holds against all of them. An image trained on in one version
    keeps the first train/val split it had."""
    items = (
        ReleaseItem.objects.filter(
            release__name=release.name,
            release__status=ReleaseStatus.READY,
            release__created_at__lt=release.created_at,
        )
        .exclude(release=release)
        .order_by("release__created_at", "release_id", "image_id")
        .values_list("image_id", "split")
    )
    test: set[int] = set()
    trained: dict[int, str] = {}
    for image_id, split in items.iterator(chunk_size=20_000):
        if split == Split.TEST:
            test.add(image_id)
        else:
            trained.setdefault(image_id, split)
    return SplitHistory(frozenset(test), trained)


def held_back_images() -> dict[int, str]:
    """Images no release may hold now, with why: an open flag (a rater flagged the image and no
    reviewer has decided on it since) or a reviewer's exclusion, in any project."""
    decided_since = ReviewItem.objects.filter(
        project=OuterRef("project"),
        image=OuterRef("image"),
        status=ReviewStatus.RESOLVED,
        decided_at__gte=OuterRef("created_at"),
    )
    flagged = (
        Skip.objects.exclude(reason=SkipReason.SKIP)
        .filter(~Exists(decided_since))
        .values_list("image_id", flat=True)
    )
    excluded = ProjectImage.objects.filter(excluded=True).values_list("image_id", flat=True)
    held = dict.fromkeys(excluded.iterator(), "reviewer_excluded")
    held.update(dict.fromkeys(flagged.iterator(), "open_flag"))
    return held


def excluded_in(projects: Sequence[Project]) -> set[int]:
    """Images reviewers excluded from the selected projects."""
    return set(
        ProjectImage.objects.filter(project__in=projects, excluded=True).values_list(
            "image_id", flat=True
        )
    )


# --- what a release's datasheet says beyond its rows ------------------------------------------


def source_facts(source: Source) -> dict[str, Any]:
    """A source's provenance (origin, licence, consent basis as recorded; None where not) and
    its newest finished filter job (the one a release takes): settings, final counts and
    rejection reasons."""
    job = latest_finished_job(source)
    summary = job_summary(job) if job is not None else None
    scale = None if source.score_min is None else [source.score_min, source.score_max]
    return {
        "name": source.name,
        "kind": source.kind,
        "description": source.description,
        "location": source.location,
        "licence": source.licence or None,
        "origin": source.origin or None,
        "consent_basis": source.consent_basis or None,
        "score_scale": scale,
        "filter_job": None if job is None else {
            "id": job.pk,
            "config": job.config,
            "counts": summary["counts"],
            "reasons": summary["reasons"],
        },
    }


def _project_ratings(project: Project):
    """Production ratings of images no reviewer excluded: what the stored agreement counts."""
    return Rating.objects.filter(
        project=project,
        assignment__project_image__kind=ItemKind.PRODUCTION,
        assignment__project_image__excluded=False,
    )


def project_rating_table(project: Project) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, rater ids, ratings x 12 with NaN = not applicable), in (image, rater)
    order, for the datasheet's agreement intervals."""
    raw = list(_project_ratings(project).order_by("image_id", "rater_id")
               .values_list("image_id", "rater_id", *DIMENSION_KEYS))
    arr = np.array(raw, dtype=float).reshape(-1, 2 + len(DIMENSION_KEYS))
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2:]


def project_facts(project: Project) -> dict[str, Any]:
    """A rating project as the datasheet describes it: guidelines, raters, certification rule,
    gold accuracy, screening, the stored agreement figures and where its images came from."""
    members = rater_table(project)
    gold_n = sum(m["gold_n"] for m in members)
    gold_err = sum(m["gold_mae"] * m["gold_n"] for m in members if m["gold_n"])
    stats = ProjectStats.objects.filter(project=project).first()
    per_source = (
        ProjectImage.objects.filter(project=project, kind=ItemKind.PRODUCTION)
        .values_list("image__source__name").annotate(n=Count("id")).order_by("image__source__name")
    )
    return {
        "name": project.name,
        "guidelines": project.guidelines,
        "overlap": project.overlap,
        "raters": {
            "members": len(members),
            "rated": sum(1 for m in members if m["n_ratings"]),
            "certified": sum(1 for m in members if m["status"] == RaterStatus.CERTIFIED),
            "excluded": sum(1 for m in members if m["excluded"]),
        },
        "certification": {
            "track": ProjectImage.objects.filter(
                project=project, kind__in=[ItemKind.TRAINING, ItemKind.TEST]).exists(),
            "qual_max_mae": project.qual_max_mae,
            "qual_min_srcc": project.qual_min_srcc,
        },
        "gold": {
            "rate": project.gold_rate,
            "max_mae": project.gold_max_mae,
            "min_n": project.gold_min_n,
            "answers": gold_n,
            "mae": gold_err / gold_n if gold_n else None,
        },
        "agreement": dict(stats.agreement) if stats is not None else {},
        "screening": {
            "method": project.screening,
            "min_shared": project.screening_min_shared,
            **(stats.screening if stats is not None and stats.screening else {}),
        },
        "image_sources": {name or "(no source)": n for name, n in per_source},
    }


def previous_version(release: Release) -> Release | None:
    """The newest ready version of the same name made before this one."""
    return (
        Release.objects.filter(name=release.name, status=ReleaseStatus.READY,
                               created_at__lt=release.created_at)
        .exclude(pk=release.pk).order_by("-created_at").first()
    )


def release_splits(release: Release) -> dict[int, str]:
    """{image id: split} of a built release."""
    return dict(ReleaseItem.objects.filter(release=release).values_list("image_id", "split"))


def release_diff(*, release: Release, against: Release) -> dict[str, Any]:
    """``release`` against ``against`` (both ready): images added, removed, withheld by the
    version promise (listed in the manifest) and moved between splits."""
    for r in (release, against):
        if r.status != ReleaseStatus.READY:
            raise ReleaseError(f"release {r.name} {r.version} is {r.status}; only ready "
                               "releases have splits to compare")
    files = located(release.out_dir, release.name, default_storage)  # a folder or the bucket
    withheld = ()
    if files.exists("manifest.json"):
        with files.open("manifest.json") as fh:
            withheld = [w["image_id"] for w in json.loads(fh.read()).get("withheld", [])]
    return {
        "release": {"id": release.pk, "name": release.name, "version": release.version},
        "against": {"id": against.pk, "name": against.name, "version": against.version},
        **diff_splits(release_splits(against), release_splits(release), withheld=withheld),
    }


# --- the model registry, batch scoring and training runs -------------------------------------


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


def releases() -> QuerySet[Release]:
    """Every release, by name, the newest version first."""
    return Release.objects.order_by("name", "-created_at")


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
