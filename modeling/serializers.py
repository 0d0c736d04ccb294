"""Serializers of the model registry, scoring and training API (modeling/api.py)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from humanbeauty.standard import DIMENSION_KEYS, LEVELS

from .models import ModelVersion, Release, ScoringJob, TrainingRun
from .release import FORMATS


class ModelVersionSerializer(serializers.ModelSerializer):
    release = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "version", "backbone", "checkpoint_path", "release", "metrics", "is_active", "notes",
            "created_by", "created_at",
        ]

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_release(self, obj: ModelVersion) -> dict | None:
        r = obj.release
        return None if r is None else {"id": r.pk, "name": r.name, "version": r.version}


class ModelRegisterSerializer(serializers.Serializer):
    version = serializers.CharField(max_length=100, help_text="e.g. hae-1b-2025.06")
    checkpoint_path = serializers.CharField(
        max_length=1000,
        help_text="A saved model directory (RUN_DIR/final of `python -m modeling.train`), "
        "inside MODEL_ROOTS.",
    )
    backbone = serializers.CharField(
        max_length=300, required=False, allow_blank=True, help_text="Default: from its config."
    )
    release = serializers.IntegerField(required=False, allow_null=True, help_text="Release id.")
    metrics = serializers.DictField(
        required=False, help_text="Default: the run's eval_test.json summary, if there is one."
    )
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    activate = serializers.BooleanField(required=False, default=False)


class ScoreRequestSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="The image (JPEG, PNG, WebP, GIF, BMP or TIFF).")
    model = serializers.CharField(
        required=False, allow_blank=True, help_text="A registered version; default: the active one."
    )


def _dims(child) -> serializers.DictField:
    return serializers.DictField(child=child, help_text=f"Keys: {', '.join(DIMENSION_KEYS)}.")


class ScoreResultSerializer(serializers.Serializer):
    """The answer of POST /api/score/ (documentation only)."""

    model = serializers.CharField(help_text="The version that scored the image.")
    scores = _dims(serializers.FloatField(min_value=0, max_value=1))
    levels = _dims(serializers.ChoiceField(choices=LEVELS))
    overall = serializers.FloatField(help_text="The MetaVoter's overall score in [0, 1].")
    overall_level = serializers.ChoiceField(choices=LEVELS)
    heads = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Each head's overall score: lm (HumanAesExpert only), regression, expert.",
    )


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class ScoringJobCreateSerializer(serializers.Serializer):
    release = serializers.IntegerField(
        required=False, allow_null=True, help_text="A ready release's id: score its images."
    )
    source = serializers.CharField(
        required=False, allow_blank=True, help_text="Without a release: score the pool images "
        "of this source (name); without either, the whole pool.",
    )
    model = serializers.CharField(required=False, allow_blank=True)
    format = serializers.ChoiceField(choices=ScoringJob.Format.choices, default="jsonl")
    chunk_size = serializers.IntegerField(required=False, min_value=1, max_value=10_000)


class ScoringJobSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.version", read_only=True, default=None)
    source = serializers.CharField(source="source.name", read_only=True, default=None)
    download = serializers.SerializerMethodField()

    class Meta:
        model = ScoringJob
        fields = [
            "id", "scope", "release", "source", "model", "format", "status", "progress",
            "output_path", "download", "errors", "error", "created_at", "started_at", "finished_at",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download(self, obj: ScoringJob) -> str | None:
        if not obj.output_path:
            return None
        return reverse("scoring-job-download", args=[obj.pk])


class TrainingRunCreateSerializer(serializers.Serializer):
    release = serializers.IntegerField(
        required=False, allow_null=True, help_text="A ready release's id (its out_dir is used)."
    )
    data = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Or a release directory in the official layout, inside IMPORT_ROOTS or "
        "MODEL_ROOTS.",
    )
    backbone = serializers.CharField(
        max_length=300,
        default="lite",
        help_text="An InternVL hub id or local directory (inside MODEL_ROOTS), 'tiny' (random "
        "smoke test) or 'lite' (heads on CLIP embeddings).",
    )
    max_steps = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10_000_000
    )
    clip_model = serializers.CharField(required=False, allow_blank=True, default="")
    clip_checkpoint = serializers.CharField(required=False, allow_blank=True, default="")
    settings = serializers.DictField(
        required=False, help_text="TrainConfig overrides (modeling/hae/config.py)."
    )
    version = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Register as; default run-<id>."
    )
    activate = serializers.BooleanField(required=False, default=False)


class TrainingRunSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.version", read_only=True, default=None)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "release", "data_dir", "backbone", "config", "run_dir", "status", "progress",
            "log_tail", "error", "model", "created_at", "started_at", "finished_at",
        ]


class ReleaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Release
        fields = [
            "id", "name", "version", "status", "config", "out_dir", "progress", "counts",
            "warnings", "manifest_sha256", "error", "created_at", "finished_at",
        ]


class ReleaseBuildSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    version = serializers.CharField(max_length=50)
    out = serializers.CharField(
        max_length=1000, required=False,
        help_text="A new folder under RELEASE_ROOT for the release (required with the file-system "
        "storage). With MEDIA_STORAGE=s3 the release is kept under releases/<id>/ in the bucket "
        "and `out` is not used.",
    )
    projects = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    sources = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    seed = serializers.IntegerField(
        required=False, default=0, min_value=-(2**63), max_value=2**63 - 1
    )
    split = serializers.DictField(child=serializers.FloatField(), required=False)
    formats = serializers.ListField(
        child=serializers.ChoiceField(choices=FORMATS), required=False, default=list(FORMATS)
    )
    images = serializers.ChoiceField(choices=["copy", "link", "none"], default="copy")
    max_side = serializers.IntegerField(
        required=False, allow_null=True, min_value=16, max_value=65_535
    )
    min_raters = serializers.IntegerField(required=False, default=1, min_value=1, max_value=1000)
    max_disagreement = serializers.FloatField(required=False, allow_null=True)
    license = serializers.CharField(
        required=False, default="unknown", max_length=64,
        help_text="The dataset card's licence identifier (e.g. cc-by-4.0).",
    )
    licence = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=64,
        help_text="The licence the release declares, one the platform knows (CC-BY-4.0, "
        "CC-BY-NC-4.0, research-only...): the build refuses images whose terms it does not "
        "allow. Empty: none declared, nothing refused, the images' licences are stated. "
        "Checked with the rest of the configuration.",
    )
    shard_size = serializers.IntegerField(
        required=False, default=10_000, min_value=1, max_value=1_000_000,
        help_text="WebDataset samples per tar shard.",
    )
    contact = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=300,
        help_text="Where takedown requests go (an address), stated in the datasheet.",
    )
    na = serializers.CharField(
        required=False, default="fill", max_length=16,
        help_text="The official layout's 12-dim images with a not-applicable dimension: fill "
        "(from the nearest rated parent), drop (left out of that layout) or overall (an "
        "overall-only line). Checked with the rest of the configuration.",
    )
