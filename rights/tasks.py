"""Celery tasks of the rights app (thin: the work is in rights.services). Ids travel; each is
safe to deliver twice (core.jobs)."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def remove_confirmed_task(removal_id: int) -> str:
    """Remove a takedown request's confirmed images from everything."""
    from .services.removal import remove_confirmed

    return remove_confirmed(removal_id).status
