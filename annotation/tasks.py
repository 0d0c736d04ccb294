"""Celery tasks for the rating workflow and quality control (thin: the work is in services)."""

from celery import shared_task

from . import services
from .models import Project, ProjectImage
from .services.quality import refresh_statistics


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
def refresh_project_statistics(project_id: int) -> dict:
    """Recompute one project's rater figures, consensus of stale images and agreement."""
    report = refresh_statistics(Project.objects.get(pk=project_id))
    return {
        "ratings": report.ratings,
        "images_updated": report.images_updated,
        "raters_excluded": report.raters_excluded,
        "review_items": report.review_items,
    }


@shared_task(acks_late=True)
def refresh_stale_projects() -> list[int]:
    """Periodic: refresh every project that received ratings since its last refresh."""
    ids = sorted(
        set(ProjectImage.objects.filter(consensus_stale=True).values_list("project_id", flat=True))
    )
    for project_id in ids:
        refresh_project_statistics.delay(project_id)
    return ids
