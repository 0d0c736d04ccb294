"""Celery task that builds a release (thin: the work is in modeling.services.releases)."""

from celery import shared_task

# An earlier version still being built: try again every 30 s, for up to two hours.
PENDING_RETRY_S = 30
PENDING_RETRIES = 240


@shared_task(bind=True, acks_late=True, max_retries=PENDING_RETRIES)
def build_release_task(self, release_id: int) -> str:
    from .services.releases import EarlierVersionPending, build, fail

    try:
        return build(release_id).status
    except EarlierVersionPending as exc:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            fail(release_id, exc.message)
            return "failed"
        raise self.retry(countdown=PENDING_RETRY_S) from None
