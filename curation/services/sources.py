"""Importing a source: parse its label file, keep every good record as a SourceItem.

Files are only ever read inside the configured import roots (settings.IMPORT_ROOTS): the label
file, and each record's path, which is checked again whenever a job opens it. The command line
imports directly (`import_source`); the API and the curator's page record a SourceImport, which
always runs on a worker with live progress (`start_import`, a long job of `core.jobs`): a
request never does the work, so no import outlives a web worker's timeout half-done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core import jobs
from humanbeauty.errors import DomainError

from ..models import JobStatus, Source, SourceImport, SourceItem
from ..selectors import source_in_use
from ..sources import (
    PARSERS,
    AllowedRoots,
    ParseResult,
    PathOutsideRoots,
    Scale,
    SourceFileError,
    SourceRecord,
    check_scale,
    parse_source,
    resolve_inside,
)
from .provenance import fill_source_terms
from .stored_sources import check_stored_path, is_storage_path, parse_stored, stored_item_file

log = logging.getLogger(__name__)


@dataclass
class SourceImportReport:
    source: Source
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def item_file(item: SourceItem) -> Path:
    """The file behind an item, refused (PathOutsideRoots) outside the import roots (for a
    source in the media storage: a local copy, stored_sources)."""
    if is_storage_path(item.source.location):
        return stored_item_file(item.path, item.source.location)
    return resolve_inside(item.path, settings.IMPORT_ROOTS, base=item.source.location or None)


# Records written per transaction; progress is reported after each batch.
WRITE_BATCH = 5000
MAX_ERRORS_KEPT = 50


def import_source(
    kind: str,
    path: str | Path,
    name: str,
    *,
    scale: Scale | None = None,
    priority: int | None = None,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> SourceImportReport:
    """Parse a dataset's labels and store its records; a re-import updates scores, adds new
    records and duplicates nothing. Bad lines and paths outside the roots are reported.

    Records are written in batches of WRITE_BATCH, each in its own transaction, with
    `on_progress(done, total)` after each, so that others can follow a big import. An import
    that fails part-way keeps what it wrote; running it again finishes it (nothing doubles).
    """
    from tqdm import tqdm

    result = (
        parse_stored(kind, path, scale=scale)  # `storage:…`: a manifest in the bucket
        if is_storage_path(path)
        else parse_source(kind, path, scale=scale, roots=settings.IMPORT_ROOTS)
    )
    source = _source_for(result, kind, name, priority=priority)
    report = SourceImportReport(source=source, errors=[str(e) for e in result.errors])
    existing = set(SourceItem.objects.filter(source=source).values_list("path", flat=True))
    roots = AllowedRoots(settings.IMPORT_ROOTS)  # one checker: it caches resolved folders
    total = len(result.records)
    batch: list[SourceItem] = []
    records = tqdm(result.records, desc=f"import {name}", unit="rec", disable=not progress)
    for done, record in enumerate(records, start=1):
        try:
            result.resolve(record, roots)
        except PathOutsideRoots as exc:
            report.errors.append(str(exc))
            continue
        batch.append(_item(source, record))
        if record.path in existing:
            report.updated += 1
        else:
            report.created += 1
        if len(batch) >= WRITE_BATCH:
            _write_batch(batch, done, total, on_progress)
    _write_batch(batch, total, total, on_progress)
    return report


def _source_for(result: ParseResult, kind: str, name: str, *, priority: int | None) -> Source:
    """The source named `name`: created from the parsed labels, or the same one imported
    before (same kind and folder; another is refused), its priority updated if given, and the
    terms its dataset publishes filled in where it records none."""
    source = Source.objects.filter(name=name).first()
    if source is not None and (source.kind != kind or source.location != str(result.base)):
        raise SourceFileError(
            f"source '{name}' already exists as {source.kind} from {source.location}; "
            "choose another --name"
        )
    if source is None:
        source, _ = Source.objects.get_or_create(
            name=name,
            defaults={
                "kind": kind,
                "location": str(result.base),
                "score_min": result.scale[0] if result.scale else None,
                "score_max": result.scale[1] if result.scale else None,
                "priority": priority or 0,
            },
        )
    elif priority is not None:
        source.priority = priority
        source.save(update_fields=["priority"])
    parser = PARSERS[kind]  # what the dataset publishes of its terms, where nothing is recorded
    return fill_source_terms(
        source, origin=parser.origin, licence=parser.licence, consent_basis=parser.consent_basis
    )


def _item(source: Source, record: SourceRecord) -> SourceItem:
    """One record as it is stored; its score scale travels along in `extra`."""
    extra = dict(record.extra)
    extra.setdefault("scale", [record.score_min, record.score_max])
    return SourceItem(
        source=source,
        path=record.path,
        raw_score=record.raw_score,
        score=record.normalized,
        extra=extra,
    )


def _write_batch(
    batch: list[SourceItem],
    done: int,
    total: int,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """Store a batch in one transaction (new records created, known ones updated), empty it,
    then report progress: what is reported is committed."""
    with transaction.atomic():
        SourceItem.objects.bulk_create(
            batch,
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["source", "path"],
            update_fields=["raw_score", "score", "extra"],
        )
    batch.clear()
    if on_progress is not None:
        on_progress(done, total)


class SourceInUse(DomainError, status=409, code="conflict"):
    """A delete of a source whose images are in the pool or that a filter job ran on."""


def delete_source(source: Source) -> None:
    """Delete a source that nothing uses yet (a failed or mistaken import) with its records;
    its imports stay listed (without the source). A source whose images are in the pool, or
    that a filter job ran on, is kept: decisions, projects and releases point to it."""
    with transaction.atomic():
        source = Source.objects.select_for_update().get(pk=source.pk)
        if Source.objects.filter(source_in_use(), pk=source.pk).exists():
            raise SourceInUse(
                f"source '{source.name}' is in use (its images are in the pool or a filter job "
                "ran on it); only a source nothing uses can be deleted"
            )
        source.delete()


# --- imports as jobs: the API and the curator's page ------------------------------------------


def start_import(
    kind: str,
    path: str,
    name: str,
    *,
    scale: Scale | None = None,
    priority: int | None = None,
    user: AbstractBaseUser | None = None,
) -> SourceImport:
    """Record an import and queue it for a worker.

    The path is checked against the import roots first, so nothing is said about paths
    elsewhere (not even whether they exist), and a bad request never becomes a job.
    """
    if is_storage_path(path):
        check_stored_path(path, kind=kind)
    else:
        resolve_inside(path, settings.IMPORT_ROOTS)
    if scale is not None:  # what the request alone can tell is refused before anything is queued
        try:
            scale = check_scale(scale)
        except ValueError as exc:
            raise SourceFileError(str(exc)) from None
    job = SourceImport.objects.create(
        kind=kind,
        path=path,
        name=name,
        scale=list(scale) if scale else None,
        priority=priority,
        created_by=jobs.creator(user),
    )
    jobs.enqueue(job)
    return job


def wait_for_import(import_id: int, *, timeout_s: float, poll_s: float = 0.1) -> SourceImport:
    """The import once it is over, or as it is after `timeout_s` (still queued or running)."""
    deadline = time.monotonic() + timeout_s
    job = SourceImport.objects.select_related("source").get(pk=import_id)
    while job.is_live and time.monotonic() < deadline:
        time.sleep(poll_s)
        job = SourceImport.objects.select_related("source").get(pk=import_id)
    return job


def run_import(import_id: int) -> SourceImport:
    """Run a recorded import (idempotent: a redelivered or resumed one re-imports, duplicating
    nothing). A refusal (bad label file, name taken, unreadable path) is recorded on it."""
    job = jobs.claim_or_wait(SourceImport, import_id, poll_seconds=5.0)
    if job is None:
        return SourceImport.objects.select_related("source").get(pk=import_id)
    rows = SourceImport.objects.filter(pk=import_id)

    def report_progress(done: int, total: int) -> None:
        # After every batch (one UPDATE per WRITE_BATCH records): a cancel stops the import
        # before its next batch is written.
        jobs.beat(SourceImport, import_id, progress={"done": done, "total": total})

    try:
        report = import_source(
            job.kind,
            job.path,
            job.name,
            scale=tuple(job.scale) if job.scale else None,
            priority=job.priority,
            on_progress=report_progress,
        )
    except jobs.JobCancelled:
        pass  # cancelled (or taken over): what was written stays, a re-import completes it
    except (DomainError, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        jobs.fail(SourceImport, import_id, message)
    except Exception as exc:
        # The details (a database error quotes its SQL) go to the log, not to the client.
        log.exception("import %s failed", import_id)
        jobs.fail(
            SourceImport,
            import_id,
            f"the import failed on an internal error ({type(exc).__name__}); it was logged",
        )
        raise
    else:
        refused, kept = len(report.errors), report.created + report.updated
        mostly_refused = refused > kept
        rows.filter(status=JobStatus.RUNNING).update(
            # Most lines unusable is no success, whatever was kept: the wrong kind of file, a
            # wrong scale or a damaged file, for the curator to look at (the good records stay).
            status=JobStatus.FAILED if mostly_refused else JobStatus.DONE,
            error=(
                f"{refused:,} of {refused + kept:,} records were refused (more than half): is "
                "this the right kind of file and scale? The good records were kept."
                if mostly_refused
                else ""
            ),
            source=report.source,
            created=report.created,
            updated=report.updated,
            refused=len(report.errors),
            errors=report.errors[:MAX_ERRORS_KEPT],
            finished_at=timezone.now(),
        )
    return SourceImport.objects.select_related("source").get(pk=import_id)
