"""Reads for the rating workflow: who sees what, and progress."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour, TruncWeek
from django.urls import reverse
from django.utils import timezone

from core.access import has_global_role, sees_whole_pool
from curation.models import Image
from humanbeauty.dimension_guides import effective_guides
from humanbeauty.roles import OVERSIGHT_ROLES, RATING_ROLES, Role
from humanbeauty.standard import DIMENSION_KEYS, LEVELS

from .models import (
    Assignment,
    AssignmentStatus,
    ConsensusLabel,
    GuideExample,
    Invitation,
    ItemKind,
    Membership,
    Project,
    ProjectImage,
    ProjectStats,
    Rating,
    ReviewItem,
    ReviewStatus,
    Skip,
    SkipReason,
)
from .services.errors import ExampleNotFound


def membership_of(user: AbstractBaseUser, project: Project) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(project=project, user=user).first()


def projects_for(user: AbstractBaseUser) -> QuerySet[Project]:
    """Members see their projects; platform admins and researchers (read-only) see all."""
    if user.is_superuser or has_global_role(user, Role.ADMIN, Role.RESEARCHER):
        return Project.objects.order_by("name")
    return Project.objects.filter(memberships__user=user).order_by("name")


def role_in(user: AbstractBaseUser, project: Project) -> str | None:
    membership = membership_of(user, project)
    if membership is not None:
        return membership.role
    if user.is_superuser or has_global_role(user, Role.ADMIN):
        return Role.ADMIN.value
    if has_global_role(user, Role.RESEARCHER):
        return Role.RESEARCHER.value
    return None


def sees_all_ratings(user: AbstractBaseUser, project: Project) -> bool:
    return role_in(user, project) in OVERSIGHT_ROLES


def rater_may_view_image(user: AbstractBaseUser, image: Image) -> bool:
    """Annotators see the images they were leased; reviewers and admins their projects' all."""
    if Assignment.objects.filter(rater=user, image=image, project__memberships__user=user).exists():
        return True
    return ProjectImage.objects.filter(
        image=image,
        project__memberships__user=user,
        project__memberships__role__in=[r.value for r in OVERSIGHT_ROLES],
    ).exists()


def reference_candidates(user: AbstractBaseUser, project: Project) -> QuerySet[Image]:
    """The images `user` may make gold/training/test items of in `project`: the project's own,
    or the whole pool for those who may see it (core.access.sees_whole_pool)."""
    if sees_whole_pool(user):
        return Image.objects.all()
    return Image.objects.filter(project_items__project=project)


def ratings_visible_to(user: AbstractBaseUser, project: Project) -> QuerySet[Rating]:
    """Reviewers and admins see every rating; everyone else only their own."""
    qs = Rating.objects.filter(project=project).order_by("id")
    if sees_all_ratings(user, project):
        return qs
    return qs.filter(rater=user)


def start_of_today(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def project_progress(project: Project, user: AbstractBaseUser) -> dict[str, int]:
    """Aggregate counts only: nothing here reveals another rater's scores."""
    items = ProjectImage.objects.filter(project=project).aggregate(
        images=Count("id"),
        ratings_required=Sum("target"),
        ratings_done=Sum("completed"),
        live_leases=Sum("leased"),
        images_complete=Count("id", filter=Q(completed__gte=F("target"))),
        images_started=Count("id", filter=Q(completed__gt=0) | Q(leased__gt=0)),
    )
    mine = Rating.objects.filter(project=project, rater=user).aggregate(
        total=Count("id"), today=Count("id", filter=Q(created_at__gte=start_of_today()))
    )
    required = items["ratings_required"] or 0
    done = items["ratings_done"] or 0
    return {
        "images": items["images"],
        "images_complete": items["images_complete"],
        "images_in_progress": items["images_started"] - items["images_complete"],
        "images_untouched": items["images"] - items["images_started"],
        "ratings_required": required,
        "ratings_done": done,
        "ratings_left": required - done,
        "live_leases": items["live_leases"] or 0,
        "my_ratings": mine["total"],
        "my_ratings_today": mine["today"],
        "my_skips": Assignment.objects.filter(
            project=project, rater=user, status=AssignmentStatus.SKIPPED
        ).count(),
    }


# --- quality control -----------------------------------------------------------------------


def project_stats(project: Project) -> ProjectStats:
    """Cached agreement figures. A reader first asks `services.quality.ensure_statistics`,
    which computes them for a project that never had any."""
    return ProjectStats.objects.get(project=project)


def production_rating_count(project: Project) -> int:
    return Rating.objects.filter(
        project=project,
        assignment__project_image__kind=ItemKind.PRODUCTION,
        assignment__project_image__excluded=False,
    ).count()


def stale_image_count(project: Project) -> int:
    """Images whose ratings changed since their consensus was computed."""
    return ProjectImage.objects.filter(project=project, consensus_stale=True).count()


def rater_table(project: Project) -> list[dict]:
    counts = dict(
        Rating.objects.filter(project=project, assignment__project_image__kind=ItemKind.PRODUCTION)
        .values_list("rater_id")
        .annotate(n=Count("id"))
    )
    rows = []
    members = (
        Membership.objects.filter(project=project, role__in=[r.value for r in RATING_ROLES])
        .select_related("user")
        .order_by("user__username")
    )
    for m in members:
        rows.append(
            {
                "username": m.user.username,
                "status": m.status,
                "status_reason": m.status_reason,
                "gold_n": m.gold_n,
                "gold_mae": m.gold_mae,
                "bias": m.bias,
                "spread": m.spread,
                "corr_with_others": m.corr_with_others,
                "excluded": m.excluded,
                "exclusion_reason": m.exclusion_reason,
                "exclusion_source": m.exclusion_source,
                "exclusion_override": m.exclusion_override,
                "shared_images": m.shared_images,
                "screening_note": m.screening_note,
                "n_ratings": counts.get(m.user_id, 0),
                "qualification": m.qualification_result,
            }
        )
    return rows


def consensus_labels(project: Project) -> QuerySet[ConsensusLabel]:
    return ConsensusLabel.objects.filter(project=project).order_by("image_id")


def kept_labels(projects: Iterable[Project]) -> QuerySet[ConsensusLabel]:
    """The projects' consensus labels, less those of images a reviewer excluded (an excluded
    image leaves the consensus, whatever label it had)."""
    excluded = ProjectImage.objects.filter(
        project=OuterRef("project"), image=OuterRef("image"), excluded=True
    )
    return ConsensusLabel.objects.filter(project__in=projects).filter(~Exists(excluded))


@dataclass(frozen=True)
class LabelScores:
    """An image's label as readers use it, per dimension in DIMENSION_KEYS order: the score
    (None: not applicable), its spread over the raters, and how many raters gave one."""

    scores: tuple[float | None, ...]
    std: tuple[float | None, ...]
    n: tuple[int, ...]


def label_scores(scores: Mapping[str, dict | None], final: Mapping | None) -> LabelScores:
    """A reviewer's final scores win over the computed MOS (spread 0 where they gave one;
    the raters' counts stay those of the consensus)."""
    cells = [(scores or {}).get(k) for k in DIMENSION_KEYS]
    n = tuple(c["n"] if c else 0 for c in cells)
    if final:  # a reviewer's decision holds all 12 keys; an empty one decides nothing
        values = tuple(final.get(k) for k in DIMENSION_KEYS)
        return LabelScores(values, tuple(None if v is None else 0.0 for v in values), n)
    return LabelScores(
        tuple(c["mos"] if c else None for c in cells),
        tuple(c["std"] if c else None for c in cells),
        n,
    )


def consensus_entries(labels) -> list[dict]:
    """Labels with when they were computed and whether ratings arrived since (`stale`)."""
    labels = list(labels)
    completed = dict(
        ProjectImage.objects.filter(
            project_id__in={c.project_id for c in labels},
            image_id__in=[c.image_id for c in labels],
        ).values_list("image_id", "completed")
    )
    return [
        {
            "image_id": c.image_id,
            "scores": c.scores,
            "final": c.final,
            "n_raters": c.n_raters,
            "n_ratings": c.n_ratings,
            "max_std": c.max_std,
            "inconsistent": c.inconsistent,
            "computed_at": c.updated_at,
            "stale": completed.get(c.image_id, 0) > c.n_ratings,
        }
        for c in labels
    ]


def review_queue(project: Project, status: str = "open") -> QuerySet[ReviewItem]:
    qs = ReviewItem.objects.filter(project=project).order_by("id")
    return qs if status == "all" else qs.filter(status=status)


# (project id, image id): what a review item, its ratings, flags and consensus share
_ItemKey = tuple[int, int]


def review_entries(reviews) -> list[dict]:
    """Review items with every rater's scores side by side (for reviewers only)."""
    reviews = list(reviews)
    keys = {(r.project_id, r.image_id) for r in reviews}
    ratings = _listed_by_item(
        Rating.objects.filter(**_of_items(keys)).select_related("rater"), keys,
        lambda rating: {"rater": rating.rater.username, "scores": rating.scores,
                        "late": rating.late},
    )
    labels = {(c.project_id, c.image_id): c
              for c in ConsensusLabel.objects.filter(**_of_items(keys))}
    flags = _listed_by_item(
        Skip.objects.filter(**_of_items(keys)).exclude(reason=SkipReason.SKIP)
        .select_related("rater"), keys,
        lambda skip: {"rater": skip.rater.username, "reason": skip.reason, "text": skip.text},
    )
    consensus_due = set(
        ProjectImage.objects.filter(**_of_items(keys), kind=ItemKind.PRODUCTION, excluded=False)
        .values_list("project_id", "image_id")
    )
    entries = []
    for r in reviews:
        key = (r.project_id, r.image_id)
        entries.append(_review_entry(r, ratings[key], flags[key], labels.get(key),
                                     production=key in consensus_due))
    return entries


def _of_items(keys: set[_ItemKey]) -> dict[str, set[int]]:
    """The filter for rows of these items' projects and images (a superset of the items:
    callers look rows up by key)."""
    return {"project_id__in": {k[0] for k in keys}, "image_id__in": {k[1] for k in keys}}


def _listed_by_item(
    rows: Iterable[Any], keys: set[_ItemKey], entry: Callable[[Any], dict]
) -> dict[_ItemKey, list[dict]]:
    """Each item's rows, as entries; the rows of other items are left out."""
    listed: dict[_ItemKey, list[dict]] = {k: [] for k in keys}
    for row in rows:
        if (row.project_id, row.image_id) in listed:
            listed[(row.project_id, row.image_id)].append(entry(row))
    return listed


def _review_entry(
    r: ReviewItem, listed: list[dict], flags: list[dict], label: ConsensusLabel | None, *,
    production: bool,
) -> dict:
    """One review item for the page; `production`: a production item not excluded (one
    that gets a consensus)."""
    due = production and bool(listed)
    return {
        "id": r.pk,
        "image": r.image_id,
        "image_url": reverse("image-file", args=[r.image_id]),
        "reasons": r.reasons,
        "status": r.status,
        "decision": r.decision,
        "note": r.note,
        "reviewer": r.reviewer.username if r.reviewer_id else None,
        "ratings": listed,
        "flags": flags,
        "consensus": label.scores if label else None,
        "final": label.final if label else None,
        # A consensus never passes for one of the ratings listed beside it: computed
        # from fewer ratings than are listed, it is marked stale (the page says so).
        "consensus_computed_at": label.updated_at if label else None,
        "consensus_stale": due and (label is None or label.n_ratings < len(listed)),
    }


# --- dashboards -------------------------------------------------------------------------------

TIMELINE_STEPS = {"hour": 3600, "day": 86_400, "week": 7 * 86_400}
TRUNCATE = {"hour": TruncHour, "day": TruncDay, "week": TruncWeek}


def _production_ratings(project: Project) -> QuerySet[Rating]:
    return Rating.objects.filter(
        project=project, assignment__project_image__kind=ItemKind.PRODUCTION
    )


def _bucket_starts(first: datetime, last: datetime, bucket: str) -> list[datetime]:
    """Every bucket start from `first` to `last` (both bucket starts, local time)."""
    tz = timezone.get_current_timezone()
    out = []
    if bucket == "hour":  # absolute hours: DST changes neither add nor lose one
        t, end = first.astimezone(UTC), last.astimezone(UTC)
        while t <= end:
            out.append(t.astimezone(tz))
            t += timedelta(hours=1)
        return out
    step = timedelta(days=7 if bucket == "week" else 1)
    day, end = timezone.localtime(first, tz).date(), timezone.localtime(last, tz).date()
    while day <= end:  # calendar days: a DST day has 23 or 25 hours
        out.append(datetime.combine(day, datetime.min.time(), tzinfo=tz))
        day += step
    return out


def choose_bucket(first: datetime | None, last: datetime | None, max_buckets: int) -> str:
    if first is None or last is None:
        return "day"
    span = (last - first).total_seconds()
    if span <= 2 * 86_400:
        return "hour"
    return "day" if span / TIMELINE_STEPS["day"] < max_buckets else "week"


def project_totals(project: Project) -> dict[str, int]:
    """Project-wide progress of the production queue (no per-user figures)."""
    items = ProjectImage.objects.filter(project=project, kind=ItemKind.PRODUCTION).aggregate(
        images=Count("id"),
        ratings_required=Sum("target"),
        ratings_done=Sum("completed"),
        live_leases=Sum("leased"),
        images_complete=Count("id", filter=Q(completed__gte=F("target"), excluded=False)),
        images_excluded=Count("id", filter=Q(excluded=True)),
    )
    return {
        "images": items["images"],
        "images_complete": items["images_complete"],
        "images_excluded": items["images_excluded"],
        "ratings_required": items["ratings_required"] or 0,
        "ratings_done": items["ratings_done"] or 0,
        "live_leases": items["live_leases"] or 0,
        "open_reviews": ReviewItem.objects.filter(
            project=project, status=ReviewStatus.OPEN
        ).count(),
    }


def rating_timeline(project: Project, bucket: str = "auto", *, max_buckets: int = 1000) -> dict:
    """Production ratings per hour, day or week (all buckets, empty ones too), per rater.

    `points` holds each bucket's count and the running total; each rater's `series` is
    aligned with `points`. `raters` also carries throughput figures: production and
    reference (gold, qualification) ratings, ratings today and the median seconds per rating.
    """
    production = _production_ratings(project)
    bucket = _timeline_bucket(production, bucket, max_buckets)
    starts, totals, per_rater = _counts_per_bucket(production, bucket)
    return {
        "bucket": bucket,
        "timezone": str(timezone.get_current_timezone()),
        "points": _running_totals(starts, totals),
        "raters": _rater_throughput(project, per_rater, len(starts)),
        "progress": project_totals(project),
    }


def _timeline_bucket(production: QuerySet[Rating], asked: str, max_buckets: int) -> str:
    """The bucket asked for, unless it is "auto" or too fine for the ratings' span."""
    span = production.aggregate(first=Min("created_at"), last=Max("created_at"))
    if asked not in TIMELINE_STEPS:
        return choose_bucket(span["first"], span["last"], max_buckets)
    if span["first"] is not None:
        seconds = (span["last"] - span["first"]).total_seconds()
        if seconds / TIMELINE_STEPS[asked] >= max_buckets:
            return choose_bucket(span["first"], span["last"], max_buckets)
    return asked


def _counts_per_bucket(
    production: QuerySet[Rating], bucket: str
) -> tuple[list[datetime], list[int], dict[int, list[int]]]:
    """Every bucket's start, its ratings, and each rater's ratings per bucket (one GROUP BY)."""
    tz = timezone.get_current_timezone()
    counts = list(
        production.annotate(t=TRUNCATE[bucket]("created_at", tzinfo=tz))
        .values_list("t", "rater_id")
        .annotate(n=Count("id"))
        .order_by("t")
    )
    starts = _bucket_starts(counts[0][0], counts[-1][0], bucket) if counts else []
    position = {int(t.timestamp()): i for i, t in enumerate(starts)}
    totals = [0] * len(starts)
    per_rater: dict[int, list[int]] = {}
    for t, rater_id, n in counts:
        i = position[int(t.timestamp())]
        totals[i] += n
        per_rater.setdefault(rater_id, [0] * len(starts))[i] += n
    return starts, totals, per_rater


def _running_totals(starts: list[datetime], totals: list[int]) -> list[dict]:
    points, running = [], 0
    for t, n in zip(starts, totals, strict=True):
        running += n
        points.append({"t": t.isoformat(), "n": n, "cumulative": running})
    return points


def _rater_throughput(
    project: Project, per_rater: Mapping[int, list[int]], n_buckets: int
) -> list[dict]:
    """Every rater who rated anything (production or reference), busiest first."""
    seconds: dict[int, list[float]] = {}
    n_prod: dict[int, int] = {}
    n_ref: dict[int, int] = {}
    n_today: dict[int, int] = {}
    today = start_of_today()
    for rater_id, kind, spent, created in Rating.objects.filter(project=project).values_list(
        "rater_id", "assignment__project_image__kind", "time_spent_ms", "created_at"
    ):
        seconds.setdefault(rater_id, []).append(spent / 1000)
        if kind == ItemKind.PRODUCTION:
            n_prod[rater_id] = n_prod.get(rater_id, 0) + 1
            if created >= today:
                n_today[rater_id] = n_today.get(rater_id, 0) + 1
        else:
            n_ref[rater_id] = n_ref.get(rater_id, 0) + 1
    names = _usernames(project, seconds)
    raters = [
        {
            "username": names[rater_id],
            "n": n_prod.get(rater_id, 0),
            "n_reference": n_ref.get(rater_id, 0),
            "n_today": n_today.get(rater_id, 0),
            "median_seconds": round(median(spent), 2),
            "series": per_rater.get(rater_id, [0] * n_buckets),
        }
        for rater_id, spent in seconds.items()
    ]
    raters.sort(key=lambda r: (-r["n"], r["username"]))
    return raters


def _usernames(project: Project, user_ids: Iterable[int]) -> dict[int, str]:
    """Usernames of the members among `user_ids`, and of raters who have since left."""
    user_ids = set(user_ids)
    names = dict(
        Membership.objects.filter(project=project, user_id__in=user_ids).values_list(
            "user_id", "user__username"
        )
    )
    missing = user_ids - set(names)
    if missing:
        names.update(
            get_user_model().objects.filter(pk__in=missing).values_list("pk", "username")
        )
    return names


def consensus_histograms(project: Project, bins: int = 10) -> dict:
    """Histograms of the consensus score per dimension over the project's labelled images.

    A reviewer's final score wins over the computed MOS; images a reviewer excluded are left
    out (`kept_labels`, `label_scores`); a dimension whose label is "not applicable" is counted
    apart, not as 0.
    """
    values: dict[str, list[float]] = {k: [] for k in DIMENSION_KEYS}
    not_applicable = dict.fromkeys(DIMENSION_KEYS, 0)
    n_images = 0
    for scores, final in kept_labels([project]).values_list("scores", "final"):
        n_images += 1
        for key, value in zip(DIMENSION_KEYS, label_scores(scores, final).scores, strict=True):
            if value is None:
                not_applicable[key] += 1
            else:
                values[key].append(float(value))
    dimensions = {}
    for key, vals in values.items():
        arr = np.asarray(vals, dtype=float)
        # Bins are [low, high) with 1.0 in the last; the small tolerance keeps a score that
        # sits on an edge (the level midpoints do, for 10 bins) out of the bin below it.
        index = np.clip(np.floor(arr * bins + 1e-9).astype(int), 0, bins - 1)
        counts = np.bincount(index, minlength=bins)
        dimensions[key] = {
            "counts": [int(c) for c in counts],
            "n": int(arr.size),
            "not_applicable": not_applicable[key],
            "mean": float(arr.mean()) if arr.size else None,
            "std": float(arr.std(ddof=1)) if arr.size > 1 else None,
        }
    return {
        "bins": bins,
        "edges": [round(i / bins, 10) for i in range(bins + 1)],
        "n_images": n_images,
        "dimensions": dimensions,
    }


# --- the dimension guides (the standard taught on the page) ------------------------------------

# The items a manager may pin as examples; test items never: an example would show a candidate
# the very image they are tested on.
EXAMPLE_KINDS = (ItemKind.GOLD, ItemKind.TRAINING)


def shown_examples(project: Project) -> QuerySet[GuideExample]:
    """The pinned examples raters may see: an item made a test item since is hidden again."""
    return GuideExample.objects.filter(project=project, item__kind__in=EXAMPLE_KINDS)


def project_guides(project: Project) -> dict[str, dict[str, object]]:
    """{key: {"definition", "levels": {level: text}, "custom": [...], "examples": {level:
    [GuideExample, ...]}}}: what the rater page and the guides API show."""
    guides = effective_guides(project.dimension_guides)
    for guide in guides.values():
        guide["examples"] = {level: [] for level in LEVELS}
    for example in shown_examples(project).select_related("item").order_by("id"):
        guides[example.dimension]["examples"][example.level].append(example)
    return guides


def example_image(project: Project, example_id: int) -> Image:
    """The image of a pinned example of the project."""
    example = shown_examples(project).filter(pk=example_id).select_related("item__image").first()
    if example is None:
        raise ExampleNotFound(f"example {example_id} does not exist")
    return example.item.image


def example_items(project: Project) -> list[ProjectImage]:
    """The items a manager may pin: the project's gold and training items."""
    return list(
        ProjectImage.objects.filter(project=project, kind__in=EXAMPLE_KINDS)
        .select_related("image")
        .order_by("kind", "id")
    )


# --- the members page ---------------------------------------------------------------------------


def member_rows(project: Project) -> QuerySet[Membership]:
    """The project's members with how many live leases each holds, by username."""
    return (
        Membership.objects.filter(project=project)
        .select_related("user")
        .annotate(
            live_leases=Count(
                "user__assignments",
                filter=Q(
                    user__assignments__project=project,
                    user__assignments__status=AssignmentStatus.ACTIVE,
                ),
            )
        )
        .order_by("user__username")
    )


def pending_invitations(project: Project, *, now: datetime | None = None) -> QuerySet[Invitation]:
    """The project's invitation links not used and not expired, newest first."""
    return (
        Invitation.objects.filter(
            project=project, used_at__isnull=True, expires_at__gt=now or timezone.now()
        )
        .select_related("created_by")
        .order_by("-created_at")
    )
