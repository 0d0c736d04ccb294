from __future__ import annotations

import markdown
import nh3
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from humanbeauty.standard import DIMENSION_KEYS, describe

from .models import Assignment, ItemKind, Project, Rating, Skip, SkipReason


def render_guidelines(text: str) -> str:
    """Markdown to HTML, sanitised: guidelines are written by managers but shown to everyone."""
    return nh3.clean(markdown.markdown(text or "", extensions=["extra", "sane_lists"]))


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "name", "overlap", "lease_minutes", "is_active", "role"]

    def get_role(self, project: Project) -> str | None:
        return self.context.get("roles", {}).get(project.pk)


class ProgressSerializer(serializers.Serializer):
    images = serializers.IntegerField()
    images_complete = serializers.IntegerField()
    images_in_progress = serializers.IntegerField()
    images_untouched = serializers.IntegerField()
    ratings_required = serializers.IntegerField()
    ratings_done = serializers.IntegerField()
    ratings_left = serializers.IntegerField()
    live_leases = serializers.IntegerField()
    my_ratings = serializers.IntegerField()
    my_ratings_today = serializers.IntegerField()
    my_skips = serializers.IntegerField()


class ProjectDetailSerializer(ProjectSerializer):
    guidelines_html = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta(ProjectSerializer.Meta):
        fields = [*ProjectSerializer.Meta.fields, "guidelines", "guidelines_html", "progress"]

    def get_guidelines_html(self, project: Project) -> str:
        return render_guidelines(project.guidelines)

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, project: Project) -> dict:
        return self.context["progress"]


class DimensionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    key = serializers.CharField()
    name = serializers.CharField()
    group = serializers.CharField()
    children = serializers.ListField(child=serializers.CharField())
    nullable = serializers.BooleanField()


class TaskImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class TaskSerializer(serializers.Serializer):
    """What `next/` returns: a lease, its image and the dimensions to rate."""

    assignment = serializers.IntegerField(source="id")
    image = serializers.SerializerMethodField()
    dimensions = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField()

    @extend_schema_field(TaskImageSerializer)
    def get_image(self, assignment: Assignment) -> dict:
        from django.urls import reverse

        img = assignment.image
        url = reverse("image-file", args=[img.pk])
        request = self.context.get("request")
        return {
            "id": img.pk,
            "url": request.build_absolute_uri(url) if request else url,
            "width": img.width,
            "height": img.height,
        }

    @extend_schema_field(DimensionSerializer(many=True))
    def get_dimensions(self, assignment: Assignment) -> list[dict]:
        return describe()

    def to_representation(self, assignment: Assignment) -> dict:
        data = super().to_representation(assignment)
        # Qualification items say so; gold items must look exactly like production ones.
        kind = assignment.project_image.kind
        if kind in (ItemKind.TRAINING, ItemKind.TEST):
            data["stage"] = kind
        return data


class ScoresField(serializers.DictField):
    """{dimension key: number in [0, 1] or null}; the standard module does the real check."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.FloatField(allow_null=True), **kwargs)


class RatingInputSerializer(serializers.Serializer):
    scores = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text=f"All 12 keys: {', '.join(DIMENSION_KEYS)}; null = not applicable.",
    )
    request_id = serializers.UUIDField(help_text="Client-made UUID; a retry with it is a no-op.")
    time_spent_ms = serializers.IntegerField(
        required=False, min_value=0, max_value=86_400_000, help_text="At most a day."
    )


class RatingSerializer(serializers.ModelSerializer):
    scores = serializers.SerializerMethodField()
    rater = serializers.CharField(source="rater.username", read_only=True)

    class Meta:
        model = Rating
        fields = [
            "id",
            "assignment",
            "project",
            "image",
            "rater",
            "scores",
            "time_spent_ms",
            "request_id",
            "late",
            "created_at",
        ]

    @extend_schema_field(ScoresField())
    def get_scores(self, rating: Rating) -> dict[str, float | None]:
        return rating.scores


class SkipInputSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=SkipReason.choices)
    text = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class SkipSerializer(serializers.ModelSerializer):
    flagged = serializers.BooleanField(source="is_flag", read_only=True)

    class Meta:
        model = Skip
        fields = ["id", "assignment", "image", "reason", "text", "flagged", "created_at"]
