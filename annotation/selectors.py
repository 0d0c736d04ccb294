"""Reads for the rating workflow: who sees what, and progress."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from curation.access import has_global_role
from curation.models import Image
from humanbeauty.roles import OVERSIGHT_ROLES, Role

from .models import Assignment, AssignmentStatus, Membership, Project, ProjectImage, Rating


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
