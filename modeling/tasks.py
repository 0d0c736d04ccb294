"""Celery tasks for serving and training (thin: the work is in modeling.services). Ids travel,
never images; both are safe to deliver twice (see core.jobs)."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def score_job(job_id: int) -> str:
    """Score a release's images or the pool chunk by chunk into MEDIA_ROOT/scores/."""
    from .services.scoring import run_scoring_job

    return run_scoring_job(job_id).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def train_model(run_id: int) -> str:
    """Run `python -m modeling.train` for a TrainingRun and register the model it saves."""
    from .services.training import run_training

    return run_training(run_id).status
