"""Scoring images: decoding under the pool's validation, result rows and files, and the batch
scoring job (a release's images or the pool) run chunk by chunk by a Celery task.

Files are read, validated, decoded and tiled in loader workers (`modeling.hae.loading`:
processes, or threads inside a daemonic Celery child), batched, and scored in the order given;
`score_sources` is the one way, for the jobs and for `manage.py score`.

The job writes one part per chunk (named by the chunk's first and last image id) and then
merges the parts into scores/scoring-job-<id>.<jsonl|csv>, all in the media storage
(default_storage: MEDIA_ROOT, or the bucket), so a job redelivered to a worker on another
machine finds the parts of the first. A part or the merged file appears whole (a file renamed in
place, or one PUT) and a rewrite replaces it; a rerun (a worker killed mid-job) skips the parts
already written, so the result has each image once.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image as PILImage

from core import jobs
from core.storage import has_local_paths
from curation.imaging.validate import InvalidImage, Reason, inspect_image, open_image, read_bytes
from curation.models import Source
from curation.services.images import check_upload_size
from humanbeauty.errors import DomainError
from humanbeauty.jsonsafe import finite
from humanbeauty.standard import DIMENSION_KEYS, score_to_level
from humanbeauty.stored import save_replacing

from .. import selectors
from ..models import Release, ReleaseStatus, RunStatus, ScoringJob
from . import registry

SCORES_DIR = "scores"
MAX_ERRORS_KEPT = 100
# Images per model batch, and loader workers when settings name none (0: decode and tile in
# the calling thread; N: N worker processes, or threads in a daemonic Celery child).
SCORING_BATCH_SIZE = 8
DEFAULT_SCORING_WORKERS = 2


class ScoringError(DomainError, code="scoring_error"):
    """A scoring request that cannot be carried out as asked."""


class ScoringConflict(DomainError, status=409, code="conflict"):
    """A scoring request for a release that is not ready."""


# --- one image ----------------------------------------------------------------------------------


def decode_image(source: str | Path | BinaryIO) -> PILImage.Image:
    """The RGB image, after the same full-decode validation as every import (InvalidImage
    otherwise: corrupt, not an image, decompression bomb)."""
    data = read_bytes(source)
    inspect_image(io.BytesIO(data), max_pixels=settings.MAX_IMAGE_PIXELS)
    try:
        with open_image(data, max_pixels=settings.MAX_IMAGE_PIXELS) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise InvalidImage(Reason.CORRUPT, f"the image cannot be converted to RGB: {exc}") from None


def decode_stored(name: str) -> PILImage.Image:
    """A stored image (a name in default_storage), decoded as `decode_image` does; an
    unreadable file is an OSError that says so. Runs in the loader's workers."""
    try:
        with default_storage.open(name, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise OSError(f"cannot read the file: {exc}") from None
    return decode_image(io.BytesIO(data))


def decode_file(path: str | Path) -> PILImage.Image:
    """A file the command line names: its size checked like an upload, then `decode_image`."""
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise OSError(f"unreadable: {exc}") from None
    check_upload_size(size)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise OSError(f"unreadable: {exc}") from None
    return decode_image(io.BytesIO(data))


def scoring_workers() -> int:
    """Loader workers for scoring: settings.SCORING_WORKERS, else DEFAULT_SCORING_WORKERS."""
    return int(getattr(settings, "SCORING_WORKERS", DEFAULT_SCORING_WORKERS))


def score_sources(
    model,
    items: Iterable[tuple[dict, object]],
    *,
    decode: Callable[[object], PILImage.Image] = decode_stored,
    batch_size: int = SCORING_BATCH_SIZE,
    workers: int | None = None,
    device_tiling: bool = False,
) -> Iterator[tuple[dict, dict | None, str | None]]:
    """(ident, result row, None) per image scored, (ident, None, why) per one refused
    (InvalidImage or unreadable), in the items' order. `items`: (what identifies the image in
    its row, what `decode` reads: a storage name, or a path with `decode_file`)."""
    from modeling.hae.loading import score_items

    results = score_items(
        model,
        items,
        decode=decode,
        bad_input=(InvalidImage, OSError),
        batch_size=batch_size,
        workers=scoring_workers() if workers is None else workers,
        device_tiling=device_tiling,
    )
    for ident, result, error in results:
        yield ident, (None if result is None else result_row(result, **ident)), error


def payload(version: str, result) -> dict:
    """The API's answer for one image: 12 scores, their levels, the MetaVoter overall."""
    overall = float(result.overall)
    # A diverged model can answer NaN: strict JSON (null, with a warning), never a 500.
    return finite({
        "model": version,
        "scores": {k: float(result.scores[k]) for k in DIMENSION_KEYS},
        "levels": dict(result.levels),
        "overall": overall,
        "overall_level": (
            score_to_level(min(max(overall, 0.0), 1.0)) if math.isfinite(overall) else None
        ),
        "heads": {k: float(v) for k, v in result.heads.items()},
    }, where="score")


# Each head's own overall score beside the MetaVoter's (empty where a model has no such head:
# the Lite model has no LM head).
HEADS = ("lm", "regression", "expert")
SCORE_COLUMNS = (*DIMENSION_KEYS, "overall", *(f"overall_{h}" for h in HEADS))


def result_row(result, **ident) -> dict:
    """A file row: what identifies the image, the twelve Expert scores, the MetaVoter overall
    and every head's overall score (`SCORE_COLUMNS`)."""
    row = dict(ident)
    row.update({k: round(float(result.scores[k]), 6) for k in DIMENSION_KEYS})
    row["overall"] = round(float(result.overall), 6)
    for head in HEADS:
        value = result.heads.get(head)
        row[f"overall_{head}"] = None if value is None else round(float(value), 6)
    return finite(row, where="score")


# --- result files -------------------------------------------------------------------------------

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


def file_format(path: str | Path) -> str:
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ScoringError(f"'{path}': the output must end in .csv or .jsonl")
    return fmt


class ResultsFile:
    """Rows to a CSV or JSONL file, written to a temporary name and moved in place only when
    complete, so a reader never sees half a file."""

    def __init__(self, path: str | Path, columns: Sequence[str]):
        self.path = Path(path)
        self.format = file_format(self.path)
        self.columns = list(columns)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.count = 0

    def __enter__(self) -> ResultsFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = self.tmp.open("w", encoding="utf-8", newline="")
        if self.format == "csv":
            self.csv = csv.DictWriter(self.fh, fieldnames=self.columns, extrasaction="ignore")
            self.csv.writeheader()
        return self

    def write(self, row: dict) -> None:
        if self.format == "csv":
            self.csv.writerow(row)
        else:
            self.fh.write(
                json.dumps({k: row.get(k) for k in self.columns}, allow_nan=False) + "\n"
            )
        self.count += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self.fh.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


# --- batch scoring jobs -------------------------------------------------------------------------

JOB_COLUMNS = ("image_id", "sha256", "split", "path", *SCORE_COLUMNS)


def create_scoring_job(
    *,
    release: Release | None = None,
    source: Source | None = None,
    model: str | None = None,
    fmt: str = "jsonl",
    chunk_size: int | None = None,
    user: AbstractBaseUser | None = None,
) -> ScoringJob:
    """A job over a ready release's images, or the pool (one source, or all images as they are
    now), with a named version or the active one; queued for the workers."""
    version = registry.resolve_version(model)
    if fmt not in ScoringJob.Format.values:
        raise ScoringError(f"format {fmt!r}: use one of {', '.join(ScoringJob.Format.values)}")
    if release is not None and source is not None:
        raise ScoringError("score a release or the pool (optionally one source), not both")
    size = chunk_size or settings.SCORING_CHUNK_SIZE
    if not 1 <= size <= 10_000:
        raise ScoringError(f"chunk_size {size} is not in 1..10000")
    config: dict = {"chunk_size": size}
    if release is not None:
        if release.status != ReleaseStatus.READY:
            raise ScoringConflict(
                f"release {release.name} {release.version} is {release.status}, not ready"
            )
        scope, total = ScoringJob.Scope.RELEASE, selectors.release_item_count(release)
    else:
        scope = ScoringJob.Scope.POOL
        config["max_image_id"] = selectors.max_image_id(source.pk if source else None)
        total = selectors.pool_image_count(source.pk if source else None, config["max_image_id"])
    if total == 0:
        raise ScoringError("there are no images to score")
    job = ScoringJob.objects.create(
        scope=scope, release=release, source=source, model_version=version, format=fmt,
        config=config, progress={"done": 0, "total": total, "failed": 0},
        created_by=jobs.creator(user),
    )

    jobs.enqueue(job)
    return job


def parts_folder(job: ScoringJob) -> str:
    """The storage folder of a job's per-chunk parts."""
    return f"{SCORES_DIR}/scoring-job-{job.pk}.parts"


def output_name(job: ScoringJob) -> str:
    return f"{SCORES_DIR}/scoring-job-{job.pk}.{job.format}"


def part_name(job: ScoringJob, rows: Sequence[selectors.ImageRow]) -> str:
    """A chunk's part, named by its first and last image id: a rerun finds it again."""
    return f"{parts_folder(job)}/{rows[0].image_id:012d}-{rows[-1].image_id:012d}.jsonl"


def store_file(name: str, local: Path) -> None:
    """Put a finished local file at the storage name `name`, replacing what is there, so that
    a reader sees the old file or the new one, never a mix or a second name: on the file
    system a rename in place (`local` must be on the same disk), in a bucket one upload."""
    if has_local_paths(default_storage):
        target = Path(default_storage.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, target)
        return
    with local.open("rb") as fh:  # (a storage that kept both files would double the rows)
        save_replacing(default_storage, name, File(fh, name=posixpath.basename(name)))


def _work_file(name: str) -> Path:
    """A new local file to write `name` into before `store_file`: beside its final place on the
    file system (one disk: the rename is atomic), else in the scratch folder (hidden, so the
    scratch cache deletes it once abandoned by a killed worker)."""
    if has_local_paths(default_storage):
        folder = Path(default_storage.path(name)).parent
    else:
        folder = Path(settings.SCRATCH_DIR) / "scoring"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=f".tmp{Path(name).suffix}")
    os.close(fd)
    os.chmod(tmp, settings.FILE_UPLOAD_PERMISSIONS or 0o644)  # as the storage's own files
    return Path(tmp)


def delete_folder(folder: str) -> None:
    """Remove a storage folder's files (a job's parts), leftovers of killed writers too."""
    try:
        subdirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for sub in subdirs:
        delete_folder(f"{folder}/{sub}")
    for f in files:
        default_storage.delete(f"{folder}/{f}")
    if has_local_paths(default_storage):
        default_storage.delete(folder)  # the empty directory


def score_chunk(
    model,
    rows: Sequence[selectors.ImageRow],
    *,
    batch_size: int = SCORING_BATCH_SIZE,
    workers: int | None = None,
) -> list[dict]:
    """One record per image: its row, or its error (unreadable file, no longer an image)."""
    items = [
        ({"image_id": r.image_id, "sha256": r.sha256, "split": r.split, "path": r.path}, r.file)
        for r in rows
    ]
    records = [
        row if error is None else {**ident, "error": error}
        for ident, row, error in score_sources(
            model, items, batch_size=batch_size, workers=workers
        )
    ]
    return sorted(records, key=lambda r: r["image_id"])


def write_part(name: str, records: list[dict]) -> None:
    """Store a chunk's records as its part, replacing any earlier one (a chunk scored again
    rewrites its part: its rows are never there twice)."""
    tmp = _work_file(name)
    try:
        text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
        tmp.write_text(text, encoding="utf-8")
        store_file(name, tmp)
    finally:
        tmp.unlink(missing_ok=True)


def read_part(name: str) -> list[dict]:
    with default_storage.open(name, "rb") as fh:
        text = fh.read().decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


def _merge(job: ScoringJob, parts: list[str]) -> list[dict]:
    """Write the parts' rows into the job's results file (stored whole at the end); the first
    MAX_ERRORS_KEPT refused images are returned."""
    errors: list[dict] = []
    name = output_name(job)
    tmp = _work_file(name)
    try:
        with ResultsFile(tmp, JOB_COLUMNS) as results:
            for part in parts:  # parts of another plan (the images changed since) are left out
                for record in read_part(part):
                    if "error" in record:
                        if len(errors) < MAX_ERRORS_KEPT:
                            errors.append(record)
                    else:
                        results.write(record)
        store_file(name, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return errors


def run_scoring_job(job_id: int) -> ScoringJob:
    """Score the job's images chunk by chunk, reporting progress; idempotent and resumable."""
    # A failed job may be delivered again (and resumes from its parts); done and cancelled not.
    job = jobs.claim_or_wait(ScoringJob, job_id, finished=(RunStatus.DONE, RunStatus.CANCELLED))
    if job is None:
        return ScoringJob.objects.get(pk=job_id)
    if job.error:
        ScoringJob.objects.filter(pk=job.pk).update(error="")
    try:
        if job.model_version is None:
            raise ScoringError("the job's model version was deleted; start a new job")
        model = registry.model_for(job.model_version)
        parts: list[str] = []
        done = failed = 0
        for rows in selectors.scoring_chunks(job, job.config.get("chunk_size", 256)):
            part = part_name(job, rows)
            if default_storage.exists(part):  # written by an earlier run of this job
                records = read_part(part)
            else:
                records = score_chunk(model, rows)
                write_part(part, records)
            parts.append(part)
            done += len(rows)
            failed += sum(1 for r in records if "error" in r)
            progress = {**job.progress, "done": done, "failed": failed}
            progress["total"] = max(progress.get("total", 0), done)
            jobs.beat(ScoringJob, job.pk, progress=progress)
            job.progress = progress
        errors = _merge(job, parts)
        try:
            jobs.beat(
                ScoringJob,
                job.pk,
                progress={**job.progress, "done": done, "total": done, "failed": failed},
                status=RunStatus.DONE,
                output_path=output_name(job),
                errors=errors,
                finished_at=timezone.now(),
            )
        except jobs.JobCancelled:
            default_storage.delete(output_name(job))  # cancelled while the file was written
            raise
        delete_folder(parts_folder(job))
        return ScoringJob.objects.get(pk=job_id)
    except jobs.JobCancelled:
        delete_folder(parts_folder(job))  # a cancelled job does not resume
    except DomainError as exc:
        _fail(job, exc.message)
    except Exception as exc:
        _fail(job, f"{type(exc).__name__}: {exc}")
        raise
    return ScoringJob.objects.get(pk=job_id)


def _fail(job: ScoringJob, message: str) -> None:
    ScoringJob.objects.filter(pk=job.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED, error=message[:5000], finished_at=timezone.now()
    )
