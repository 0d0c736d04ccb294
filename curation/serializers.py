import dataclasses

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import selectors
from .models import CONSENT_CHOICES, Decision, FilterJob, Image, Source, SourceImport
from .services.provenance import terms_of
from .sources import PARSERS
from .sources.terms import PERMISSIONS, UNKNOWN, licence_of


class TermsSerializer(serializers.Serializer):
    licence = serializers.CharField()
    consent_basis = serializers.CharField()
    consent_reference = serializers.CharField()


class ImageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    source = serializers.CharField(source="source.name", default=None, read_only=True)
    terms = serializers.SerializerMethodField(
        help_text="The terms that hold: the image's own (licence, consent_basis, "
        "consent_reference) over its source's; 'unknown' where neither records one."
    )

    class Meta:
        model = Image
        fields = [
            "id", "url", "sha256", "width", "height", "format", "source", "original_path",
            "created_at", "licence", "consent_basis", "consent_reference", "terms",
        ]

    @extend_schema_field(TermsSerializer)
    def get_terms(self, image: Image) -> dict:
        return dataclasses.asdict(terms_of(image, image.source))

    def get_url(self, image: Image) -> str:
        url = reverse("image-file", args=[image.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class ImageUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    source = serializers.CharField(required=False, max_length=200)
    licence = serializers.CharField(
        required=False, allow_blank=True, max_length=64,
        help_text="The image's own licence (an SPDX id such as CC-BY-4.0, or research-only, "
        "all-rights-reserved...), over its source's.",
    )
    consent_basis = serializers.ChoiceField(
        required=False, allow_blank=True, choices=CONSENT_CHOICES,
        help_text="On what basis the person pictured is in the data.",
    )
    consent_reference = serializers.CharField(
        required=False, allow_blank=True, max_length=500,
        help_text="e.g. the signed consent form's reference.",
    )


class SourceTermsSerializer(serializers.Serializer):
    """A curator's change of a source's provenance; a field left out keeps its value."""

    origin = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, help_text="A URL or a citation."
    )
    licence = serializers.CharField(
        required=False, allow_blank=True, max_length=64,
        help_text="An SPDX id (CC-BY-4.0...) or a named dataset licence (research-only...).",
    )
    consent_basis = serializers.ChoiceField(
        required=False, allow_blank=True, choices=CONSENT_CHOICES
    )


# --- sources, filter jobs and decisions ---------------------------------------------------------


def _image_url(image_id: int | None, request) -> str | None:
    if image_id is None:
        return None
    url = reverse("image-file", args=[image_id])
    return request.build_absolute_uri(url) if request else url


class LatestJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class SourceSerializer(serializers.ModelSerializer):
    """A source with its counts (from `selectors.sources_with_counts`)."""

    scale = serializers.SerializerMethodField()
    items = serializers.IntegerField(source="n_items", read_only=True)
    scored = serializers.IntegerField(
        source="n_scored", read_only=True, help_text="Records with a score."
    )
    linked = serializers.IntegerField(
        source="n_linked", read_only=True, help_text="Records whose file a job stored."
    )
    jobs = serializers.IntegerField(source="n_jobs", read_only=True)
    latest_job = serializers.SerializerMethodField()
    in_use = serializers.BooleanField(
        read_only=True,
        help_text="Images in the pool, stored files or filter jobs point to it: it cannot be "
        "deleted.",
    )
    allows = serializers.SerializerMethodField(
        help_text="What its licence allows, from the platform's table of known licences "
        "(an unknown licence allows nothing)."
    )

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allows(self, source: Source) -> list[str]:
        licence = licence_of(source.licence or UNKNOWN)
        return [p for p in PERMISSIONS if licence.allows(p)]

    class Meta:
        model = Source
        fields = [
            "id", "name", "kind", "description", "location", "scale", "priority", "created_at",
            "items", "scored", "linked", "jobs", "latest_job", "in_use", "origin", "licence",
            "consent_basis", "allows",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.FloatField(), allow_null=True))
    def get_scale(self, source: Source) -> list[float] | None:
        if source.score_min is None or source.score_max is None:
            return None
        return [source.score_min, source.score_max]

    @extend_schema_field(LatestJobSerializer(allow_null=True))
    def get_latest_job(self, source: Source) -> dict | None:
        job_id = getattr(source, "latest_job_id", None)
        if job_id is None:
            return None
        return {"id": job_id, "status": source.latest_job_status}


class SourceImportSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[(k, p.title) for k, p in PARSERS.items()])
    path = serializers.CharField(
        max_length=1000,
        help_text="The label file or dataset folder, an absolute path inside IMPORT_ROOTS.",
    )
    name = serializers.CharField(max_length=200)
    scale = serializers.ListField(
        child=serializers.FloatField(),
        min_length=2,
        max_length=2,
        required=False,
        allow_null=True,
        help_text="[min, max] of the raw scores (default: the dataset's own scale).",
    )
    priority = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=-1_000_000,
        max_value=1_000_000,
        help_text="Prefer this source among near-duplicates.",
    )
    background = serializers.BooleanField(
        default=False,
        help_text="Answer 202 at once with the import to follow (GET /api/source-imports/{id}/) "
        "instead of waiting up to IMPORT_WAIT_SECONDS for its outcome: for big datasets.",
    )

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("a source needs a name")
        return value.strip()


class SourceImportResultSerializer(serializers.Serializer):
    source = SourceSerializer()
    created = serializers.IntegerField(help_text="New records.")
    updated = serializers.IntegerField(help_text="Records already there (scores updated).")
    refused = serializers.IntegerField(help_text="Lines or paths that could not be used.")
    errors = serializers.ListField(
        child=serializers.CharField(), help_text="The first refusals, each with its reason."
    )
    status = serializers.CharField(
        help_text="done, or failed when more than half of the records were refused."
    )
    error = serializers.CharField(help_text="Why the import failed (empty when done).")


class SourceImportJobSerializer(serializers.ModelSerializer):
    """An import recorded by the API or the page: status, live progress, outcome."""

    source = serializers.PrimaryKeyRelatedField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = SourceImport
        fields = [
            "id", "kind", "path", "name", "scale", "priority", "status", "progress", "source",
            "created", "updated", "refused", "errors", "error", "created_by", "created_at",
            "started_at", "finished_at",
        ]
        read_only_fields = fields


class StageProgressSerializer(serializers.Serializer):
    name = serializers.CharField()
    enabled = serializers.BooleanField()
    done = serializers.IntegerField(help_text="Items through this stage (updated per chunk).")


class ChunkProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField(allow_null=True)
    done = serializers.IntegerField()


class JobProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Records to decide.")
    decided = serializers.IntegerField(help_text="Records decided so far (live).")
    chunks = ChunkProgressSerializer()
    stages = StageProgressSerializer(many=True)


class JobCountsSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    error = serializers.IntegerField()


class JobSummarySerializer(serializers.Serializer):
    """As `job_report --format json` prints it (final decisions: overrides count)."""

    job = serializers.IntegerField()
    status = serializers.CharField()
    counts = JobCountsSerializer()
    reasons = serializers.DictField(child=serializers.IntegerField())
    cluster_changes = serializers.IntegerField(
        help_text="Displaced representatives that changed this job's decisions."
    )


class ClusterChangeSerializer(serializers.Serializer):
    """A cluster's representative displaced by a later image (`selectors.cluster_changes`)."""

    id = serializers.IntegerField()
    cluster = serializers.IntegerField(allow_null=True)
    old_representative = serializers.IntegerField(help_text="Image kept until then.")
    new_representative = serializers.IntegerField(help_text="Image kept since.")
    caused_by = serializers.IntegerField(help_text="The image whose arrival made the change.")
    at = serializers.DateTimeField()
    decisions = serializers.ListField(
        child=serializers.IntegerField(), help_text="Job decisions it changed."
    )


class SheetGroupSerializer(serializers.Serializer):
    group = serializers.CharField()
    count = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["accepted", "reason", "error"])


class JobSerializer(serializers.ModelSerializer):
    """A job in a list, with live counts (from `selectors.jobs_with_counts`)."""

    source = serializers.PrimaryKeyRelatedField(read_only=True)
    source_name = serializers.CharField(source="source.name", read_only=True)
    status = serializers.CharField(
        read_only=True, help_text="queued, running, done, failed or cancelled"
    )
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    total = serializers.SerializerMethodField()
    decided = serializers.IntegerField(source="n_decided", read_only=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = FilterJob
        fields = [
            "id", "source", "source_name", "status", "error", "created_by", "created_at",
            "started_at", "finished_at", "total", "decided", "counts", "config",
        ]

    def get_total(self, job: FilterJob) -> int:
        return int((job.progress or {}).get("total", 0))

    @extend_schema_field(JobCountsSerializer)
    def get_counts(self, job: FilterJob) -> dict:
        return {k: getattr(job, f"n_{k}", 0) for k in ("accepted", "rejected", "error")}


class JobDetailSerializer(JobSerializer):
    """A job with its progress per stage, live counts and, once it ended, its summary."""

    decided = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    overridden = serializers.SerializerMethodField()
    last_change = serializers.SerializerMethodField()
    summary = serializers.SerializerMethodField()
    groups = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [
            *JobSerializer.Meta.fields,
            "progress",
            "overridden",
            "last_change",
            "summary",
            "groups",
        ]

    def _live(self, job: FilterJob) -> dict:
        if not hasattr(job, "_live_counts"):
            job._live_counts = selectors.decision_counts(job)
        return job._live_counts

    def _summary(self, job: FilterJob) -> dict | None:
        if job.is_live:
            return None  # the per-reason count walks every decision: only once it is over
        if not hasattr(job, "_hb_summary"):
            summary = selectors.job_summary(job)
            summary.pop("progress", None)
            job._hb_summary = summary
        return job._hb_summary

    def get_total(self, job: FilterJob) -> int:
        return int((job.progress or {}).get("total", 0))

    @extend_schema_field(JobCountsSerializer)
    def get_counts(self, job: FilterJob) -> dict:
        live = self._live(job)
        return {k: live[k] for k in ("accepted", "rejected", "error")}

    @extend_schema_field(JobProgressSerializer)
    def get_progress(self, job: FilterJob) -> dict:
        return selectors.job_progress(job, decided=self._live(job)["decided"])

    def get_decided(self, job: FilterJob) -> int:
        return self._live(job)["decided"]

    def get_overridden(self, job: FilterJob) -> int:
        return self._live(job)["overridden"]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_change(self, job: FilterJob) -> str | None:
        at = selectors.last_change(job)["at"]
        return at.isoformat() if at else None

    @extend_schema_field(JobSummarySerializer(allow_null=True))
    def get_summary(self, job: FilterJob) -> dict | None:
        return self._summary(job)

    @extend_schema_field(SheetGroupSerializer(many=True))
    def get_groups(self, job: FilterJob) -> list[dict]:
        summary = self._summary(job)
        return selectors.sheet_groups(summary) if summary else []


class JobCreateSerializer(serializers.Serializer):
    source = serializers.PrimaryKeyRelatedField(queryset=Source.objects.all())
    config = serializers.DictField(
        required=False,
        default=dict,
        help_text='Settings over the defaults, e.g. {"chunk_size": 50, "min_short_side": '
        '256, "clip": {"enabled": false}}; unknown keys are refused. near_dup_k is the '
        "pool's k and cannot change: clusters belong to the pool.",
    )


class DecisionItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    path = serializers.CharField(help_text="As given in the source's label file.")
    raw_score = serializers.FloatField(allow_null=True)
    score = serializers.FloatField(allow_null=True, help_text="Normalised to [0, 1].")


class DecisionImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    cluster = serializers.IntegerField(allow_null=True)


class DecisionSerializer(serializers.ModelSerializer):
    item = serializers.SerializerMethodField()
    image = serializers.SerializerMethodField()
    decision = serializers.CharField(
        read_only=True, help_text="The job's decision: accepted, rejected or error."
    )
    override = serializers.CharField(
        read_only=True, help_text="A curator's override (accepted or rejected), or empty."
    )
    final = serializers.CharField(read_only=True, help_text="The override if any, else decision.")
    overridden_by = serializers.CharField(
        source="overridden_by.username", default=None, read_only=True
    )

    class Meta:
        model = Decision
        fields = [
            "id", "job", "item", "image", "decision", "reasons", "measurements", "final",
            "override", "override_reason", "overridden_by", "overridden_at", "decided_at",
        ]

    @extend_schema_field(DecisionItemSerializer)
    def get_item(self, d: Decision) -> dict:
        item = d.item
        return {"id": item.pk, "path": item.path, "raw_score": item.raw_score, "score": item.score}

    @extend_schema_field(DecisionImageSerializer(allow_null=True))
    def get_image(self, d: Decision) -> dict | None:
        image = d.item.image
        if image is None:
            return None
        return {
            "id": image.pk,
            "url": _image_url(image.pk, self.context.get("request")),
            "width": image.width,
            "height": image.height,
            "cluster": image.cluster_id,
        }


class OverrideSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["accepted", "rejected"])
    reason = serializers.CharField(
        max_length=2000, trim_whitespace=True, help_text="Why; kept with the override."
    )
