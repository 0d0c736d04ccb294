"""Celery tasks of the platform core (thin: the work is in core.jobs)."""

from celery import shared_task

from . import health, jobs


@shared_task
def reap_lost_jobs() -> dict[str, int]:
    """Resume (or, after repeated losses, fail) every running job whose worker vanished."""
    reaped = jobs.reap()
    return {"resumed": len(reaped.resumed), "failed": len(reaped.failed)}


@shared_task
def prune_worker_heartbeats() -> int:
    """Forget workers not heard from in WORKER_HEARTBEAT_KEEP_DAYS."""
    return health.prune_heartbeats()
