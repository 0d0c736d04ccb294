"""Celery tasks for the rating workflow (thin: the work is in services)."""

from celery import shared_task

from . import services
from .models import Project


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
