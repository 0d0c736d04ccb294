"""Celery tasks of the modeling app: release builds, batch scoring, training (thin: the work is
in modeling.services). Ids travel, never images; each is safe to deliver twice (core.jobs).
"""

from celery import shared_task

# An earlier version still being built: try again every 30 s, for up to two hours.
PENDING_RETRY_S = 30
PENDING_RETRIES = 240


@shared_task(bind=True, acks_late=True, max_retries=PENDING_RETRIES)
def build_release_task(self, release_id: int) -> str:
    """Build a release; wait (retrying) while an earlier version of it is still building."""
    from .services.releases import EarlierVersionPending, build, fail

    try:
        return build(release_id).status
    except EarlierVersionPending as exc:
        if self.request.is_eager or self.request.retries >= self.max_retries:
            fail(release_id, exc.message)
            return "failed"
        raise self.retry(countdown=PENDING_RETRY_S) from None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def score_job(job_id: int) -> str:
    """Score a release's images or the pool chunk by chunk into the media storage's scores/."""
    from .services.scoring import run_scoring_job

    return run_scoring_job(job_id).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def train_model(run_id: int) -> str:
    """Run `python -m modeling.train` for a TrainingRun and register the model it saves."""
    from .services.training import run_training

    return run_training(run_id).status
