"""Celery tasks for the rating workflow and quality control (thin: the work is in services)."""

from celery import shared_task
from django.db.models import F, Q

from . import services
from .models import Project, ProjectImage, ProjectStats
from .services.quality import run_scheduled_refresh


@shared_task(acks_late=True)
def reclaim_expired_leases() -> int:
    """Free the slots of every project's expired leases; safe to run at any time, repeatedly.

    next_task already reclaims lazily for the project it serves; this periodic sweep keeps
    progress counts honest for projects nobody is rating right now.
    """
    return sum(
        services.reclaim_expired(project)
        for project in Project.objects.filter(is_active=True).only("id")
    )


@shared_task(acks_late=True)
def refresh_project_statistics(project_id: int, figures: bool | None = None) -> dict:
    """Recompute the consensus of one project's stale images, and its rater figures, screening
    and agreement when due (`figures=True`: always). Queued, debounced, by every rating."""
    report = run_scheduled_refresh(project_id, figures=figures)
    if report is None:
        return {}
    return {
        "ratings": report.ratings,
        "images_updated": report.images_updated,
        "raters_excluded": report.raters_excluded,
        "review_items": report.review_items,
        "figures": report.figures,
    }


@shared_task(acks_late=True)
def refresh_stale_projects() -> list[int]:
    """Periodic safety net: refresh every project with stale images (a queued refresh that was
    lost, a worker that died) or whose rater figures lag its consensus."""
    stale = set(
        ProjectImage.objects.filter(consensus_stale=True).values_list("project_id", flat=True)
    )
    lagging = set(
        ProjectStats.objects.filter(
            Q(figures_computed_at__isnull=True)
            | Q(consensus_computed_at__gt=F("figures_computed_at"))
        ).values_list("project_id", flat=True)
    )
    ids = sorted(stale | lagging)
    for project_id in ids:
        refresh_project_statistics.delay(project_id)
    return ids
