"""Dataset releases and the model registry."""

from __future__ import annotations

from datetime import timedelta

from django.db import models

from core.fields import user_link
from core.jobs import JobRecord, JobStatus, States
from humanbeauty.jsonsafe import FiniteJSONEncoder


class ReleaseStatus(models.TextChoices):
    """A release's words for the job states: it is building, then ready."""

    QUEUED = "queued"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Release(JobRecord):
    """A versioned, immutable dataset release: its configuration, where it was written, and
    (once built) its manifest summary. Which image went to which split is kept per image in
    ReleaseItem, so a later version can keep the earlier test set in test. Built as a long job
    (core.jobs): progress {"phase", "done", "total"}."""

    STATES = States(running=ReleaseStatus.BUILDING, done=ReleaseStatus.READY)
    RESUME_TASK = "modeling.tasks.build_release_task"
    # Hashing a pool's unhashed images or refreshing a big project's consensus reports no
    # progress until it is done (a dead holder on this host is noticed at once all the same).
    STALE_AFTER = timedelta(minutes=30)

    status = models.CharField(
        max_length=10, choices=ReleaseStatus.choices, default=ReleaseStatus.QUEUED
    )
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=50)
    config = models.JSONField(default=dict, encoder=FiniteJSONEncoder)
    out_dir = models.CharField(max_length=1000)
    counts = models.JSONField(default=dict, encoder=FiniteJSONEncoder)
    # What the build reported beside its counts: split shares off the requested ratios,
    # images withheld by the version promise, a selected project or source that gave nothing.
    warnings = models.JSONField(default=list, blank=True, encoder=FiniteJSONEncoder)
    manifest_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="release_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.status})"


class Split(models.TextChoices):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class ReleaseItem(models.Model):
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey("curation.Image", on_delete=models.PROTECT, related_name="+")
    split = models.CharField(max_length=5, choices=Split.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["release", "image"], name="releaseitem_unique_image")
        ]
        indexes = [models.Index(fields=["release", "split"])]

    def __str__(self) -> str:
        return f"image {self.image_id} in {self.split} of release {self.release_id}"


class ModelVersion(models.Model):
    """A trained HumanAesExpert (or Lite) model: where its checkpoint lies and how it scored.
    Exactly one version may be active; scoring uses it unless a version is named."""

    version = models.CharField(max_length=100, unique=True)
    backbone = models.CharField(max_length=300, help_text="hub id, local path, 'tiny' or 'lite'")
    checkpoint_path = models.CharField(max_length=1000, help_text="the model directory")
    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="models"
    )
    metrics = models.JSONField(default=dict, blank=True, encoder=FiniteJSONEncoder)
    is_active = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    created_by = user_link()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="modelversion_one_active",
            )
        ]

    def __str__(self) -> str:
        return f"model {self.version}{' (active)' if self.is_active else ''}"


# Scoring jobs and training runs go through the same states as every long job of the platform.
RunStatus = JobStatus


class ScoringJob(JobRecord):
    """Batch scoring of a release's images or of the pool (all of it, or one source) with one
    model version; the rows go to a JSONL or CSV file under MEDIA_ROOT/scores/."""

    RESUME_TASK = "modeling.tasks.score_job"
    # A chunk of a big model may take a while between two progress writes.
    STALE_AFTER = timedelta(minutes=30)

    class Scope(models.TextChoices):
        RELEASE = "release"
        POOL = "pool"

    class Format(models.TextChoices):
        JSONL = "jsonl"
        CSV = "csv"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="scoring_jobs"
    )
    source = models.ForeignKey(
        "curation.Source", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, on_delete=models.SET_NULL, related_name="scoring_jobs"
    )
    format = models.CharField(max_length=5, choices=Format.choices, default=Format.JSONL)
    # A snapshot taken at creation: chunk size and, for the pool, the highest image id then.
    config = models.JSONField(default=dict, blank=True, encoder=FiniteJSONEncoder)
    # progress: {"done", "total", "failed"}
    # Relative to MEDIA_ROOT, set when the file is complete.
    output_path = models.CharField(max_length=500, blank=True)
    # [{"image_id", "path", "error"}]
    errors = models.JSONField(default=list, blank=True, encoder=FiniteJSONEncoder)

    def __str__(self) -> str:
        return f"scoring job {self.pk} ({self.scope}, {self.status})"


class TrainingRun(JobRecord):
    """`python -m modeling.train` launched from the researcher's page: its settings, its run
    directory, live progress from the run's metrics.jsonl, and the model it registered."""

    RESUME_TASK = "modeling.tasks.train_model"

    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    data_dir = models.CharField(max_length=1000)
    backbone = models.CharField(max_length=300)
    # max_steps, clip_model, clip_checkpoint, settings (TrainConfig overrides), version, activate
    config = models.JSONField(default=dict, blank=True, encoder=FiniteJSONEncoder)
    run_dir = models.CharField(max_length=1000, blank=True)
    # progress: {"stage", "step", "total", "loss"}
    log_tail = models.TextField(blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.backbone}, {self.status})"
