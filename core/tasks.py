"""Celery tasks of the platform core (thin: the work is in core.jobs)."""

from celery import shared_task

from . import jobs


@shared_task
def reap_lost_jobs() -> dict[str, int]:
    """Resume (or, after repeated losses, fail) every running job whose worker vanished."""
    reaped = jobs.reap()
    return {"resumed": len(reaped.resumed), "failed": len(reaped.failed)}
