"""Filter jobs: validate, hash, near-duplicates, faces and CLIP for every item of a source.

A job keeps a snapshot of its configuration. Its items are split into chunks that Celery
workers process: the CPU stages on the `cpu` queue (`curation.tasks.process_chunk`) and, with
CLIP on, the GPU stage on the `gpu` queue (`curation.tasks.clip_chunk`, fed through StagedItem
rows), so a GPU worker takes only GPU work; each item is decided in its own short
transaction under a unique (job, item) constraint, so a chunk redone after a worker died skips
what was decided and decides the rest exactly once. One bad image becomes an `error` decision
and the chunk goes on. Progress is kept per stage on the job row.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core import jobs as core_jobs
from humanbeauty.errors import DomainError
from humanbeauty.paths import resolve_inside

from ..imaging.near_dup import DEFAULT_K
from ..imaging.validate import InvalidImage, Reason, ValidationRules
from ..models import (
    FILTER_STAGES,
    Decision,
    DecisionKind,
    FilterJob,
    Image,
    ReportedChunk,
    Source,
    SourceItem,
    StagedItem,
)
from ..sources.terms import TermsError, check_permissions, rejection_reasons
from . import dedup
from .images import register_image
from .provenance import terms_of

log = logging.getLogger(__name__)

STAGES = FILTER_STAGES
# A chunk's worker renews the job's heartbeat (and looks for a cancel) at most this often.
HEARTBEAT_EVERY_S = 2.0
# Reasons after which nothing else can be measured: the file is not a usable picture.
FATAL = frozenset({Reason.CORRUPT.value, Reason.DECOMPRESSION_BOMB.value, "unreadable"})


class JobError(DomainError, code="job_error"):
    """A filter job that cannot start as asked (its settings, its source) or an empty override."""


def default_config() -> dict[str, Any]:
    rules = ValidationRules()
    return {
        "chunk_size": 50,
        "min_short_side": rules.min_short_side,
        "max_aspect_ratio": rules.max_aspect_ratio,
        "max_pixels": settings.MAX_IMAGE_PIXELS,
        "near_dup_k": DEFAULT_K,
        "faces": {"enabled": True, "min_faces": 1, "profile": True},
        "clip": {
            "enabled": True,
            "model": settings.CLIP_MODEL,
            "checkpoint": settings.CLIP_CHECKPOINT or None,
            "person_threshold": 0.5,
            "inappropriate_threshold": 0.5,
        },
        # Reject images whose terms lack any of these permissions (curation.sources.terms).
        "terms": {"require": []},
    }


# Every number a job takes, with the range that makes sense: a setting outside it is refused
# with its name, never stored to fail (or silently do nothing) in a worker.
_BOUNDS: tuple[tuple[str, type, float, Any], ...] = (
    ("chunk_size", int, 1, 10_000),
    ("min_short_side", int, 1, 100_000),
    ("max_aspect_ratio", float, 1.0, 100.0),
    ("max_pixels", int, 1, lambda: settings.MAX_IMAGE_PIXELS),
    ("near_dup_k", int, 0, 64),
    ("faces.min_faces", int, 0, 1_000),
    ("clip.person_threshold", float, 0.0, 1.0),
    ("clip.inappropriate_threshold", float, 0.0, 1.0),
)


def _check_number(config: dict[str, Any], path: str, kind: type, low: float, high: float) -> None:
    *parents, key = path.split(".")
    holder = config
    for parent in parents:
        holder = holder[parent]
    value = holder[key]
    number_types = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, number_types):
        raise JobError(f"{path} must be {'an integer' if kind is int else 'a number'}")
    if not low <= value <= high:
        raise JobError(f"{path} must be within {low:g}..{high:g}, not {value!r}")


def merged_config(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults updated by `overrides` (nested dicts merged); unknown keys are refused."""
    config = default_config()
    for key, value in (overrides or {}).items():
        if key not in config:
            raise JobError(f"unknown job setting {key!r}; known: {', '.join(config)}")
        if isinstance(config[key], dict):
            if not isinstance(value, Mapping):
                raise JobError(f"setting {key!r} must be an object")
            unknown = set(value) - set(config[key])
            if unknown:
                raise JobError(f"unknown {key} setting(s): {', '.join(sorted(unknown))}")
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    for path, kind, low, high in _BOUNDS:
        _check_number(config, path, kind, low, high() if callable(high) else high)
    if not isinstance(config["faces"]["enabled"], bool) or not isinstance(
        config["clip"]["enabled"], bool
    ):
        raise JobError("faces.enabled and clip.enabled are true or false")
    try:
        config["terms"]["require"] = check_permissions(config["terms"]["require"])
    except TermsError as exc:
        raise JobError(exc.message) from None
    if config["near_dup_k"] != DEFAULT_K:
        # Clusters are a property of the pool, shared by every job and every door into it.
        raise JobError(
            f"near_dup_k must be {DEFAULT_K}: near-duplicate clusters belong to the pool "
            "(every image is clustered once, at the pool's k), not to a job"
        )
    return config


def check_clip(config: Mapping[str, Any]) -> None:
    """A job that asks for CLIP without a usable checkpoint fails at once, clearly."""
    clip = config["clip"]
    if not clip["enabled"]:
        return
    checkpoint = clip.get("checkpoint")
    if not checkpoint:
        raise JobError(
            "the CLIP filter needs a checkpoint: set CLIP_CHECKPOINT (a local open_clip "
            "weights file) or the job's clip.checkpoint, or turn CLIP off (--no-clip)"
        )
    if checkpoint != settings.CLIP_CHECKPOINT:
        # A job's own checkpoint is a path a request names: only inside MODEL_ROOTS (else a
        # probe of the file system, and any file would be loaded as weights).
        checkpoint = str(resolve_inside(checkpoint, settings.MODEL_ROOTS, setting="MODEL_ROOTS"))
        clip["checkpoint"] = checkpoint
    if not Path(checkpoint).is_file():
        raise JobError(f"CLIP checkpoint {checkpoint} does not exist (or turn CLIP off)")


def start_job(
    source: Source,
    *,
    overrides: Mapping[str, Any] | None = None,
    user: AbstractBaseUser | None = None,
) -> FilterJob:
    """Create a job with a snapshot of its configuration and queue it for the workers."""
    config = merged_config(overrides)
    check_clip(config)
    total = SourceItem.objects.filter(source=source).count()
    if total == 0:
        raise JobError(f"source '{source.name}' has no items to filter")
    job = FilterJob.objects.create(
        source=source,
        config=config,
        created_by=core_jobs.creator(user),
        progress={"total": total, "stages": dict.fromkeys(STAGES, 0), "chunks_reported": 0},
    )
    core_jobs.enqueue(job)
    return job


def plan_chunks(job: FilterJob) -> list[list[int]]:
    ids = list(
        SourceItem.objects.filter(source_id=job.source_id)
        .order_by("id")
        .values_list("id", flat=True)
    )
    size = int(job.config.get("chunk_size", 50))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def mark_running(job_id: int, n_chunks: int) -> FilterJob | None:
    """The job, running (None once it is over), with the chunks it has."""
    return core_jobs.start_running(FilterJob, job_id, progress={"chunks": n_chunks})


def chunks_to_run(job_id: int) -> list[tuple[int, list[int]]]:
    """Mark the job running and give the chunks no worker has reported yet: all of them on a
    first run, the rest on a resumed job (a chunk is reported once all its items are
    decided). None left: the job is done. Nothing for a job that is over."""
    chunks = plan_chunks(FilterJob.objects.get(pk=job_id))
    job = mark_running(job_id, len(chunks))
    if job is None:
        return []
    reported = set(ReportedChunk.objects.filter(job_id=job_id).values_list("index", flat=True))
    todo = [(index, ids) for index, ids in enumerate(chunks) if index not in reported]
    if not todo:
        core_jobs.finish(FilterJob, job_id)
    return todo


# --- one item ---------------------------------------------------------------------------------


class _Pipeline:
    """The stages for one job; heavy models (face detector, CLIP) are loaded once per worker."""

    _clip_cache: dict[tuple[str, str], Any] = {}

    def __init__(self, job: FilterJob) -> None:
        self.job = job
        self.config = job.config
        self.rules = ValidationRules(
            min_short_side=int(self.config["min_short_side"]),
            max_aspect_ratio=float(self.config["max_aspect_ratio"]),
            max_pixels=int(self.config["max_pixels"]),
        )
        self.root = Path(job.source.location or ".")
        self.clip_scores: dict[int, Any] = {}

    def path_of(self, item: SourceItem) -> Path:
        from .sources import item_file

        return item_file(item)

    def prefetch_clip(self, items: list[SourceItem]) -> None:
        """Score a chunk's images with CLIP in batches (decoding overlaps the model) up front;
        an image that cannot be scored here is left to `clip_stage`, which reports it."""
        if not self.config["clip"]["enabled"] or not items:
            return
        paths = {}
        for item in items:
            try:
                paths[item.pk] = self.path_of(item)
            except DomainError:
                continue
        try:
            outcomes = self.clip().score_files(list(paths.values()))
        except Exception:  # scored one by one in `decide`, where a failure is that image's error
            log.exception("job %s: batched CLIP scoring failed", self.job.pk)
            return
        self.clip_scores = {
            pk: o.scores for pk, o in zip(paths, outcomes, strict=True) if o.scores is not None
        }

    def clip(self):
        from ..imaging.clip_filter import ClipFilter, ClipFilterConfig, load_clip

        c = self.config["clip"]
        key = (c["model"], c["checkpoint"])
        if key not in self._clip_cache:
            cfg = ClipFilterConfig(
                model=c["model"],
                checkpoint=c["checkpoint"],
                person_threshold=c["person_threshold"],
                inappropriate_threshold=c["inappropriate_threshold"],
            )
            self._clip_cache[key] = ClipFilter(load_clip(cfg), cfg)
        return self._clip_cache[key]

    def decide(
        self, item: SourceItem, counts: dict[str, int]
    ) -> tuple[str, list[str], dict, Image | None]:
        reasons: list[str] = []
        m: dict[str, Any] = {}
        path = self.path_of(item)
        # validate + register (content-addressed: a redo finds the stored image)
        try:
            with path.open("rb") as fh:
                image, _ = register_image(fh, source=item.source, original_path=item.path)
        except InvalidImage as exc:
            counts["validate"] += 1
            return DecisionKind.REJECTED, [exc.reason], {"error": str(exc)}, None
        except OSError as exc:
            counts["validate"] += 1
            return DecisionKind.REJECTED, ["unreadable"], {"error": str(exc)}, None
        m.update(width=image.width, height=image.height, format=image.format)
        reasons += self.rules.reasons_for(image.width, image.height)
        counts["validate"] += 1
        # exact duplicates: the same bytes already came in through another item
        if dedup.claim_image(item, image):
            reasons.append(dedup.EXACT_DUPLICATE)
        if image.cluster_id is not None:
            # The new link may raise the image's source rank: re-choose the representative.
            dedup.assign_cluster(image)
        # register_image hashed the image (draft-decoded) and clustered it against the pool;
        # whether it is a near duplicate is read when the decision is written (record_decision)
        m.update(phash=image.phash, dhash=image.dhash)
        counts["hash"] += 1
        counts["dedup"] += 1
        # terms: the image's own over its source's, against what the job requires
        required = self.config.get("terms", {}).get("require") or []
        if required:
            terms = terms_of(image, item.source)
            m.update(licence=terms.licence, consent_basis=terms.consent_basis)
            reasons += rejection_reasons(terms.licence, required)
        # people
        if self.config["faces"]["enabled"]:
            from ..imaging.faces import detect_faces

            report = detect_faces(path, profile=bool(self.config["faces"].get("profile")))
            m.update(faces=report.count, largest_face_share=round(report.largest_share, 5))
            if report.count < int(self.config["faces"]["min_faces"]):
                reasons.append("no_face")
            counts["faces"] += 1
        decision = DecisionKind.REJECTED if reasons else DecisionKind.ACCEPTED
        return decision, reasons, m, image

    def clip_stage(self, staged: StagedItem, counts: dict[str, int]) -> tuple[list[str], dict]:
        """The GPU stage for an item the CPU stages passed on: its reasons and measurements
        with CLIP's added (scored now unless `prefetch_clip` scored it)."""
        from ..imaging.clip_filter import reasons_for

        clip = self.clip()
        scores = self.clip_scores.get(staged.item_id) or clip.score(
            [self.path_of(staged.item)]
        )[0]
        m = {**staged.measurements, "clip_person": scores.person,
             "clip_inappropriate": scores.inappropriate}
        counts["clip"] += 1
        return [*staged.reasons, *reasons_for(scores, clip.config)], m


def process_chunk(job_id: int, item_ids: list[int], chunk_index: int) -> bool:
    """The CPU stages of a chunk (curation.tasks.process_chunk, queue `cpu`): every item not
    decided or staged yet is validated, registered, hashed and screened for terms and faces.
    Without CLIP each is decided now and the chunk reported; with CLIP an item the CPU stages
    could read is staged for the GPU stage instead (an unreadable one is decided now). True
    when the chunk waits for its GPU stage (`clip_chunk`)."""
    job = FilterJob.objects.select_related("source").get(pk=job_id)
    if job.is_over:
        _drop_staged(job)
        return False
    gpu = bool(job.config["clip"]["enabled"])
    pipeline = _Pipeline(job)
    seen = set(
        Decision.objects.filter(job=job, item_id__in=item_ids).values_list("item_id", flat=True)
    ) | set(
        StagedItem.objects.filter(job=job, item_id__in=item_ids).values_list("item_id", flat=True)
    )
    counts = dict.fromkeys(STAGES, 0)
    items = list(
        SourceItem.objects.filter(pk__in=set(item_ids) - seen)
        .select_related("source")
        .order_by("id")
    )
    beat = core_jobs.Throttled(FilterJob, job_id, every_s=HEARTBEAT_EVERY_S)
    for item in items:
        try:
            beat()  # the heartbeat, and how a chunk learns that its job was cancelled
        except core_jobs.JobCancelled:
            _drop_staged(job)
            return False
        try:
            decision, reasons, measurements, image = pipeline.decide(item, counts)
        except Exception as exc:  # one bad image must not stop the job
            decision, reasons, measurements, image = _error(job_id, item, exc)
        if gpu and image is not None and decision != DecisionKind.ERROR:
            StagedItem.objects.get_or_create(
                job=job, item=item,
                defaults={"image": image, "reasons": reasons, "measurements": measurements},
            )
        else:
            dedup.record_decision(job, item, image, decision, reasons, measurements)
    if gpu:
        _add_counts(job_id, counts)
        return True
    _record_chunk(job_id, chunk_index, counts)
    return False


def clip_chunk(job_id: int, item_ids: list[int], chunk_index: int) -> int:
    """The GPU stage of a chunk (curation.tasks.clip_chunk, queue `gpu`): CLIP for every item
    of the chunk the CPU stages staged, then its decision; the chunk is reported once none is
    left. Idempotent like the CPU stages: a redelivery decides only what is still staged.
    Returns how many items were decided now."""
    job = FilterJob.objects.select_related("source").get(pk=job_id)
    if job.is_over:
        _drop_staged(job)
        return 0
    pipeline = _Pipeline(job)
    staged = list(
        StagedItem.objects.filter(job=job, item_id__in=item_ids)
        .select_related("item__source", "image")
        .order_by("item_id")
    )
    pipeline.prefetch_clip([s.item for s in staged])
    counts = dict.fromkeys(STAGES, 0)
    decided = 0
    beat = core_jobs.Throttled(FilterJob, job_id, every_s=HEARTBEAT_EVERY_S)
    for s in staged:
        try:
            beat()
        except core_jobs.JobCancelled:
            _drop_staged(job)
            return decided
        try:
            reasons, measurements = pipeline.clip_stage(s, counts)
            decision = DecisionKind.REJECTED if reasons else DecisionKind.ACCEPTED
            image = s.image
        except Exception as exc:
            decision, reasons, measurements, image = _error(job_id, s.item, exc)
        if dedup.record_decision(job, s.item, image, decision, reasons, measurements):
            decided += 1
        s.delete()  # decided (now, or by an earlier delivery)
    _record_chunk(job_id, chunk_index, counts)
    return decided


def _drop_staged(job: FilterJob) -> None:
    """A job that is over (cancelled, failed) will not run its GPU stage: what waited for it
    goes (whichever of its tasks comes last clears it)."""
    StagedItem.objects.filter(job=job).delete()


def _error(job_id: int, item: SourceItem, exc: Exception) -> tuple[str, list[str], dict, None]:
    log.exception("job %s: item %s failed", job_id, item.pk)
    return DecisionKind.ERROR, ["error"], {
        "error": f"{type(exc).__name__}: {exc}",
        "trace": traceback.format_exc(limit=3),
    }, None


def _add_counts(job_id: int, counts: Mapping[str, int]) -> None:
    """Add a chunk's stage counts to its job's progress (its GPU stage is still to come)."""
    _report(job_id, counts, None)


def _record_chunk(job_id: int, chunk_index: int, counts: Mapping[str, int]) -> None:
    """Add a chunk's stage counts and, once every chunk reported, close the job."""
    _report(job_id, counts, chunk_index)


def _report(job_id: int, counts: Mapping[str, int], chunk_index: int | None) -> None:
    with transaction.atomic():
        job = FilterJob.objects.select_for_update().get(pk=job_id)
        progress = dict(job.progress)
        stages = dict(progress.get("stages", {}))
        for stage, n in counts.items():
            stages[stage] = stages.get(stage, 0) + n
        progress["stages"] = stages
        progress["decided"] = Decision.objects.filter(job=job).count()
        fields = ["progress", "heartbeat_at"]
        if chunk_index is not None:
            # Under the job's row lock, so a chunk delivered twice counts once.
            _, first = ReportedChunk.objects.get_or_create(job=job, index=chunk_index)
            reported = progress.get("chunks_reported", 0) + int(first)
            progress["chunks_reported"] = reported
            if job.status == job.STATES.running and reported >= progress.get("chunks", 0):
                job.status = job.STATES.done
                job.finished_at = timezone.now()
                fields += ["status", "finished_at"]
        job.progress = progress
        job.heartbeat_at = timezone.now()
        job.save(update_fields=fields)


def override_decision(
    decision: Decision, new: DecisionKind | str, reason: str, user: AbstractBaseUser
) -> Decision:
    """A curator's override; the computed decision and its reasons stay as they were."""
    new = DecisionKind(new)
    if not reason.strip():
        raise JobError("an override needs a reason")
    decision.override = new
    decision.override_reason = reason.strip()
    decision.overridden_by = user
    decision.overridden_at = timezone.now()
    decision.save(update_fields=["override", "override_reason", "overridden_by", "overridden_at"])
    return decision


def image_of(decision: Decision) -> Image | None:
    return decision.item.image
