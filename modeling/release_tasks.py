"""Celery task that builds a release (thin: the work is in modeling.services.releases)."""

from celery import shared_task


@shared_task(acks_late=True)
def build_release_task(release_id: int) -> str:
    from .services.releases import build

    return build(release_id).status
