"""Reads for the rating workflow: who sees what, and progress."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Q, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone

from curation.access import has_global_role
from curation.models import Image
from humanbeauty.roles import OVERSIGHT_ROLES, RATING_ROLES, Role

from .models import (
    Assignment,
    AssignmentStatus,
    ConsensusLabel,
    ItemKind,
    Membership,
    Project,
    ProjectImage,
    ProjectStats,
    Rating,
    ReviewItem,
    Skip,
    SkipReason,
)


def membership_of(user: AbstractBaseUser, project: Project) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(project=project, user=user).first()


def projects_for(user: AbstractBaseUser) -> QuerySet[Project]:
    if user.is_superuser or has_global_role(user, Role.ADMIN):
        return Project.objects.order_by("name")
    return Project.objects.filter(memberships__user=user).order_by("name")


def role_in(user: AbstractBaseUser, project: Project) -> str | None:
    membership = membership_of(user, project)
    if membership is not None:
        return membership.role
    if user.is_superuser or has_global_role(user, Role.ADMIN):
        return Role.ADMIN.value
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
    """Cached agreement figures; computed on first use."""
    stats = ProjectStats.objects.filter(project=project).first()
    if stats is None:
        from .services.quality import refresh_statistics

        refresh_statistics(project)
        stats = ProjectStats.objects.get(project=project)
    return stats


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
                "n_ratings": counts.get(m.user_id, 0),
                "qualification": m.qualification_result,
            }
        )
    return rows


def consensus_labels(project: Project) -> QuerySet[ConsensusLabel]:
    return ConsensusLabel.objects.filter(project=project).order_by("image_id")


def review_queue(project: Project, status: str = "open") -> QuerySet[ReviewItem]:
    qs = ReviewItem.objects.filter(project=project).order_by("id")
    return qs if status == "all" else qs.filter(status=status)


def review_entries(reviews) -> list[dict]:
    """Review items with every rater's scores side by side (for reviewers only)."""
    reviews = list(reviews)
    keys = {(r.project_id, r.image_id) for r in reviews}
    ratings: dict[tuple[int, int], list[dict]] = {k: [] for k in keys}
    for rating in Rating.objects.filter(
        project_id__in={k[0] for k in keys}, image_id__in={k[1] for k in keys}
    ).select_related("rater"):
        if (rating.project_id, rating.image_id) in ratings:
            ratings[(rating.project_id, rating.image_id)].append(
                {"rater": rating.rater.username, "scores": rating.scores, "late": rating.late}
            )
    labels = {
        (c.project_id, c.image_id): c
        for c in ConsensusLabel.objects.filter(
            project_id__in={k[0] for k in keys}, image_id__in={k[1] for k in keys}
        )
    }
    flags: dict[tuple[int, int], list[dict]] = {k: [] for k in keys}
    for skip in (
        Skip.objects.filter(project_id__in={k[0] for k in keys}, image_id__in={k[1] for k in keys})
        .exclude(reason=SkipReason.SKIP)
        .select_related("rater")
    ):
        if (skip.project_id, skip.image_id) in flags:
            flags[(skip.project_id, skip.image_id)].append(
                {"rater": skip.rater.username, "reason": skip.reason, "text": skip.text}
            )
    out = []
    for r in reviews:
        label = labels.get((r.project_id, r.image_id))
        out.append(
            {
                "id": r.pk,
                "image": r.image_id,
                "image_url": reverse("image-file", args=[r.image_id]),
                "reasons": r.reasons,
                "status": r.status,
                "decision": r.decision,
                "note": r.note,
                "reviewer": r.reviewer.username if r.reviewer_id else None,
                "ratings": ratings[(r.project_id, r.image_id)],
                "flags": flags[(r.project_id, r.image_id)],
                "consensus": label.scores if label else None,
                "final": label.final if label else None,
            }
        )
    return out
