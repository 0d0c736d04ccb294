"""Celery tasks for curation (thin: the work is in services). Ids travel, never image bytes."""

from celery import shared_task

from .services import jobs


@shared_task(acks_late=True)
def run_filter_job(job_id: int) -> int:
    """Split a job into chunks and queue those not reported yet; safe to run again (a resumed
    job queues the rest, and decided items are skipped)."""
    todo = jobs.chunks_to_run(job_id)
    for index, item_ids in todo:
        process_chunk.delay(job_id, item_ids, index)
    return len(todo)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def process_chunk(job_id: int, item_ids: list[int], chunk_index: int) -> bool:
    """The CPU stages of one chunk (idempotent: a redelivered chunk redoes only the rest); with
    CLIP on, the chunk's GPU stage is queued next."""
    waits_for_gpu = jobs.process_chunk(job_id, item_ids, chunk_index)
    if waits_for_gpu:
        clip_chunk.delay(job_id, item_ids, chunk_index)
    return waits_for_gpu


@shared_task(acks_late=True, reject_on_worker_lost=True)
def clip_chunk(job_id: int, item_ids: list[int], chunk_index: int) -> int:
    """The GPU stage (CLIP) of one chunk, on the `gpu` queue."""
    return jobs.clip_chunk(job_id, item_ids, chunk_index)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def import_source_task(import_id: int) -> str:
    """Run a recorded source import (a redelivery re-imports: nothing is duplicated)."""
    from .services.sources import run_import

    return run_import(import_id).status
