"""The image pool: every stored file once (by sha256), with where it came from."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

from core.fields import user_link
from core.jobs import JobRecord, JobStatus
from humanbeauty.jsonsafe import FiniteJSONEncoder

from .sources.terms import CONSENT_BASES

__all__ = ["JobStatus"]  # the job states, beside the jobs that use them

CONSENT_CHOICES = [(basis, basis.replace("_", " ")) for basis in CONSENT_BASES]


class Source(models.Model):
    """Where images came from: a public dataset, a manifest, a folder import, an upload batch."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=50, default="folder")
    description = models.TextField(blank=True)
    # The dataset root or label file the source was imported from.
    location = models.CharField(max_length=1000, blank=True)
    # The raw score scale, min-max normalised to [0, 1] (null: the source has no scores).
    score_min = models.FloatField(null=True, blank=True)
    score_max = models.FloatField(null=True, blank=True)
    # Breaks ties between near-duplicates of equal resolution: the higher priority is kept.
    priority = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Provenance and terms (`curation.sources.terms`): blank is not recorded ("unknown").
    origin = models.CharField(
        max_length=1000, blank=True, help_text="Where the images come from: a URL or a citation."
    )
    licence = models.CharField(
        max_length=64, blank=True, help_text="An SPDX id or a named dataset licence."
    )
    consent_basis = models.CharField(
        max_length=32, blank=True, choices=CONSENT_CHOICES,
        help_text="On what basis the people pictured are in the data.",
    )

    def __str__(self) -> str:
        return self.name


def image_upload_to(instance: Image, filename: str) -> str:
    # Content-addressed layout: two-level fan-out keeps directories small at millions of files.
    sha = instance.sha256
    ext = (instance.format or "img").lower().replace("jpeg", "jpg")
    return f"images/{sha[:2]}/{sha[2:4]}/{sha}.{ext}"


class Image(models.Model):
    file = models.FileField(upload_to=image_upload_to, max_length=300)
    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=16)
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.PROTECT, related_name="images"
    )
    # The path the image had when it was imported (relative to the import directory).
    original_path = models.CharField(max_length=1000, blank=True)
    # The image's own terms, over its source's (`curation.sources.terms.resolve`); blank: the
    # source's. `consent_reference` names e.g. a signed consent form.
    licence = models.CharField(max_length=64, blank=True)
    consent_basis = models.CharField(max_length=32, blank=True, choices=CONSENT_CHOICES)
    consent_reference = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Perceptual hashes (unsigned 64-bit values stored as signed bigint) and the four 16-bit
    # bands of the pHash, each indexed: near-duplicate candidates are found by band equality
    # (multi-index hashing, see curation/imaging/near_dup.py), never by scanning every hash.
    phash = models.BigIntegerField(null=True, blank=True)
    dhash = models.BigIntegerField(null=True, blank=True)
    phash_b0 = models.IntegerField(null=True, blank=True, db_index=True)
    phash_b1 = models.IntegerField(null=True, blank=True, db_index=True)
    phash_b2 = models.IntegerField(null=True, blank=True, db_index=True)
    phash_b3 = models.IntegerField(null=True, blank=True, db_index=True)
    # The image's near-duplicate cluster; null while it has no near-duplicate in the pool.
    cluster = models.ForeignKey(
        "DuplicateCluster",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
    )
    # When the image was clustered against the pool (its hashes stored, its near-duplicates
    # looked up and joined). Null: not yet, so a null `cluster` means nothing yet. Set by
    # `services.dedup.assign_cluster` only; `selectors.unverified_image_ids` reads it.
    clustered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["source", "id"])]

    def __str__(self) -> str:
        return f"image {self.pk} ({self.original_path or self.sha256[:12]})"


class DuplicateCluster(models.Model):
    """Near-duplicate images of the pool; one representative is kept, the others are rejected
    as near duplicates. The representative is a function of the members alone (most pixels,
    then the highest priority among the sources holding its bytes, then the lowest sha256:
    `near_dup.choose_representative`, `services.dedup.members_of`), so it does not depend on
    the order in which images arrived."""

    representative = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"cluster {self.pk} (keeps image {self.representative_id})"


class ClusterChange(models.Model):
    """A cluster's representative was displaced: `caused_by` (an image that joined, or whose
    clustering merged clusters) made `new_representative` the one kept instead of
    `old_representative`. The job decisions of both were updated; `details` lists them."""

    cluster = models.ForeignKey(
        DuplicateCluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    old_representative = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    new_representative = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    caused_by = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # {"decisions": [ids of job decisions changed], "merged_clusters": [cluster ids]}
    details = models.JSONField(default=dict, blank=True, encoder=FiniteJSONEncoder)

    def __str__(self) -> str:
        return (f"cluster {self.cluster_id}: image {self.new_representative_id} displaced "
                f"{self.old_representative_id}")


class SourceItem(models.Model):
    """One record of a source as its label file gives it: a path and, maybe, a score."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="items")
    path = models.CharField(max_length=1000, help_text="As given in the source's label file.")
    raw_score = models.FloatField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True, help_text="raw_score min-max normalised.")
    extra = models.JSONField(default=dict, blank=True, encoder=FiniteJSONEncoder)
    image = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="source_items"
    )
    # When a job first linked the item to its stored image: the first of several items with
    # the same bytes is the original, the others exact duplicates.
    linked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "path"], name="sourceitem_unique_path")
        ]

    def __str__(self) -> str:
        return f"{self.source.name}:{self.path}"


class SourceImport(JobRecord):
    """One import of a dataset's labels (`services.sources.run_import`), always on a worker:
    its settings, live progress and outcome."""

    RESUME_TASK = "curation.tasks.import_source_task"

    kind = models.CharField(max_length=50)
    path = models.CharField(max_length=1000)
    name = models.CharField(max_length=200, help_text="The source's name.")
    scale = models.JSONField(
        null=True,
        blank=True,
        encoder=FiniteJSONEncoder,
        help_text="[min, max], or the dataset's own.",
    )
    priority = models.IntegerField(null=True, blank=True)
    # progress: {"done", "total"} records
    source = models.ForeignKey(
        Source, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports"
    )
    created = models.PositiveIntegerField(default=0, help_text="New records.")
    updated = models.PositiveIntegerField(default=0, help_text="Records already there.")
    refused = models.PositiveIntegerField(default=0, help_text="Lines or paths not usable.")
    errors = models.JSONField(
        default=list, blank=True, encoder=FiniteJSONEncoder, help_text="The first refusals."
    )

    def __str__(self) -> str:
        return f"import {self.pk} of {self.name} ({self.status})"


# The stages of a filter job, in the order each image goes through them.
FILTER_STAGES = ("validate", "hash", "dedup", "faces", "clip")


class FilterJob(JobRecord):
    """A curator's filter run over a source; `config` is a snapshot taken at its start.

    progress: {"total": n, "stages": {stage: done}, "decided": n, "chunks": n,
    "chunks_reported": n} (which chunks: `ReportedChunk` rows)
    """

    RESUME_TASK = "curation.tasks.run_filter_job"
    # Chunks run on many workers and may wait behind other jobs' chunks in the queue: only a
    # long silence of all of them counts as lost, and then the undone chunks are queued again
    # (never failed: a chunk is idempotent, and a long queue is no failure).
    SINGLE_WORKER = False
    STALE_AFTER = timedelta(hours=1)

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="jobs")
    config = models.JSONField(default=dict, encoder=FiniteJSONEncoder)

    def __str__(self) -> str:
        return f"job {self.pk} on {self.source_id} ({self.status})"


class ReportedChunk(models.Model):
    """A chunk of a filter job that its worker reported whole (every item decided); a resumed
    job runs the chunks without one. A row per chunk, so that a report adds one small row: a
    list in the job's progress was rewritten whole at every report (200,000 chunks at 10 M
    items)."""

    job = models.ForeignKey(FilterJob, on_delete=models.CASCADE, related_name="reported_chunks")
    index = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="reportedchunk_once")
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of job {self.job_id}"


class DecisionKind(models.TextChoices):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ERROR = "error"


class Decision(models.Model):
    """What a job decided for one source item, with every reason and the measurements."""

    job = models.ForeignKey(FilterJob, on_delete=models.CASCADE, related_name="decisions")
    item = models.ForeignKey(SourceItem, on_delete=models.CASCADE, related_name="decisions")
    decision = models.CharField(max_length=10, choices=DecisionKind.choices)
    reasons = models.JSONField(default=list, encoder=FiniteJSONEncoder)
    measurements = models.JSONField(default=dict, encoder=FiniteJSONEncoder)
    cluster = models.ForeignKey(
        DuplicateCluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now_add=True)
    # A curator's override wins over the computed decision; the reason is kept.
    override = models.CharField(max_length=10, choices=DecisionKind.choices, blank=True)
    override_reason = models.TextField(blank=True)
    overridden_by = user_link()
    overridden_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Each image is decided once per job, however often a chunk is redone.
            models.UniqueConstraint(fields=["job", "item"], name="decision_once_per_item")
        ]
        indexes = [models.Index(fields=["job", "decision"])]

    def __str__(self) -> str:
        return f"{self.final} for item {self.item_id} in job {self.job_id}"

    @property
    def final(self) -> str:
        return self.override or self.decision


class StagedItem(models.Model):
    """An item that passed a job's CPU stages (validate, hash, terms, faces) and waits for the
    GPU stage (CLIP) on another worker: what the CPU stages found, carried to the GPU worker
    through the database so the two share no disk. Deleted once the item is decided."""

    job = models.ForeignKey(FilterJob, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(SourceItem, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    reasons = models.JSONField(default=list, encoder=FiniteJSONEncoder)
    measurements = models.JSONField(default=dict, encoder=FiniteJSONEncoder)
    staged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "item"], name="staged_once_per_item")
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} of job {self.job_id}, waiting for CLIP"
