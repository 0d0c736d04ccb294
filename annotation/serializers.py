from __future__ import annotations

import markdown
import nh3
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from humanbeauty.standard import DIMENSION_KEYS, describe

from .models import (
    Assignment,
    ItemKind,
    Project,
    RaterStatus,
    Rating,
    ReviewDecision,
    Skip,
    SkipReason,
)
from .selectors import TIMELINE_STEPS


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
            "id", "assignment", "project", "image", "rater",
            "scores", "time_spent_ms", "request_id", "late", "created_at",
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


# --- quality_api: shapes of its requests and answers ----------------------------------------------


class DimensionAgreementSerializer(serializers.Serializer):
    krippendorff_alpha = serializers.FloatField(allow_null=True)
    icc2_1 = serializers.FloatField(allow_null=True)
    icc2_k = serializers.FloatField(allow_null=True)
    mean_pairwise_srcc = serializers.FloatField(allow_null=True)
    n_images = serializers.IntegerField()


class RaterEntrySerializer(serializers.Serializer):
    username = serializers.CharField()
    status = serializers.ChoiceField(choices=RaterStatus.choices)
    status_reason = serializers.CharField()
    gold_n = serializers.IntegerField()
    gold_mae = serializers.FloatField(allow_null=True)
    bias = serializers.FloatField(allow_null=True)
    spread = serializers.FloatField(allow_null=True)
    corr_with_others = serializers.FloatField(allow_null=True)
    excluded = serializers.BooleanField(help_text="Left out of the consensus (ratings kept).")
    exclusion_reason = serializers.CharField(help_text="Why: screening's finding or a manager's.")
    exclusion_source = serializers.CharField(help_text="screening, manager, or empty.")
    exclusion_override = serializers.CharField(
        help_text="A manager's standing decision (include, exclude) or empty: screening decides."
    )
    shared_images = serializers.IntegerField(help_text="Images shared with other raters.")
    screening_note = serializers.CharField(help_text="What screening saw at the last refresh.")
    n_ratings = serializers.IntegerField()
    qualification = serializers.JSONField(allow_null=True)


class ConsensusEntrySerializer(serializers.Serializer):
    image = serializers.IntegerField(source="image_id")
    scores = serializers.JSONField()
    final = serializers.JSONField(allow_null=True)
    n_raters = serializers.IntegerField()
    n_ratings = serializers.IntegerField(help_text="Ratings the label was computed from.")
    max_std = serializers.FloatField(allow_null=True)
    inconsistent = serializers.ListField(child=serializers.CharField())
    computed_at = serializers.DateTimeField()
    stale = serializers.BooleanField(help_text="Ratings arrived since (a refresh is queued).")


class ReferenceUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV: `image` + the 12 dimension keys.")
    kind = serializers.ChoiceField(
        choices=[ItemKind.GOLD, ItemKind.TRAINING, ItemKind.TEST], default=ItemKind.GOLD
    )


class RaterExclusionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=["include", "exclude", "auto"],
        help_text="include / exclude: the manager's decision wins over screening; auto: undo.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class RaterStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=RaterStatus.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ReviewDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=ReviewDecision.choices)
    final_scores = serializers.DictField(
        child=serializers.JSONField(allow_null=True), required=False
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000)


# --- curation_api: shapes of its requests and answers ---------------------------------------------


class ProjectFromCurationSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="The new project's name (unique).")
    sample = serializers.IntegerField(
        min_value=1,
        max_value=2**31 - 1,
        required=False,
        allow_null=True,
        help_text="Take a sample of N images stratified by source score (default: all).",
    )
    seed = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=2**32 - 1, help_text="The sample's seed."
    )
    overlap = serializers.IntegerField(
        min_value=1,
        max_value=100,
        required=False,
        allow_null=True,
        help_text="Raters per image (default 3).",
    )


class StratumSerializer(serializers.Serializer):
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    size = serializers.IntegerField()
    taken = serializers.IntegerField()


class CreatedProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    overlap = serializers.IntegerField()


class ProjectFromCurationResultSerializer(serializers.Serializer):
    project = CreatedProjectSerializer()
    job = serializers.IntegerField()
    accepted = serializers.IntegerField(help_text="Accepted images available.")
    images = serializers.IntegerField(help_text="Images put in the project.")
    sample = serializers.IntegerField(allow_null=True)
    seed = serializers.IntegerField()
    strata = StratumSerializer(many=True)


# --- dashboard_api: shapes of its requests and answers --------------------------------------------


class TimelinePointSerializer(serializers.Serializer):
    t = serializers.DateTimeField(help_text="Start of the bucket (project time zone).")
    n = serializers.IntegerField(help_text="Production ratings in the bucket.")
    cumulative = serializers.IntegerField(help_text="Production ratings up to its end.")


class TimelineRaterSerializer(serializers.Serializer):
    username = serializers.CharField()
    n = serializers.IntegerField(help_text="Production ratings.")
    n_reference = serializers.IntegerField(help_text="Gold and qualification answers.")
    n_today = serializers.IntegerField(help_text="Production ratings since midnight.")
    median_seconds = serializers.FloatField(help_text="Median time spent per rating.")
    series = serializers.ListField(
        child=serializers.IntegerField(), help_text="Production ratings per bucket (as points)."
    )


class TimelineSerializer(serializers.Serializer):
    bucket = serializers.ChoiceField(choices=list(TIMELINE_STEPS))
    timezone = serializers.CharField()
    points = TimelinePointSerializer(many=True)
    raters = TimelineRaterSerializer(many=True)
    progress = serializers.DictField(child=serializers.IntegerField())


class HistogramSerializer(serializers.Serializer):
    counts = serializers.ListField(child=serializers.IntegerField())
    n = serializers.IntegerField(help_text="Images with a score on this dimension.")
    not_applicable = serializers.IntegerField(help_text="Images labelled 'not applicable'.")
    mean = serializers.FloatField(allow_null=True)
    std = serializers.FloatField(allow_null=True)


# --- guides_api: the dimension guides and their example images ------------------------------------


class GuideImageSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    url = serializers.CharField(help_text="The image file.")


class GuideExampleSerializer(GuideImageSerializer):
    id = serializers.IntegerField()


class GuideLevelSerializer(serializers.Serializer):
    level = serializers.CharField()
    number = serializers.IntegerField(help_text="1 = worst; the rater page's key.")
    description = serializers.CharField()
    examples = GuideExampleSerializer(many=True)


class DimensionGuideSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    definition = serializers.CharField()
    custom = serializers.ListField(
        child=serializers.CharField(), help_text="The project's own texts: definition, levels."
    )
    levels = GuideLevelSerializer(many=True)


class GuidesSerializer(serializers.Serializer):
    dimensions = DimensionGuideSerializer(many=True)
    can_edit = serializers.BooleanField()


class GuidesUpdateSerializer(serializers.Serializer):
    dimensions = serializers.DictField(
        child=serializers.JSONField(),
        help_text='{key: {"definition": text, "levels": {level: text}}}; "" restores a default.',
    )


class GuideExampleInputSerializer(serializers.Serializer):
    dimension = serializers.CharField()
    level = serializers.CharField()
    image = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="A gold or training image of the project."
    )


class GuideCandidateSerializer(GuideImageSerializer):
    kind = serializers.ChoiceField(choices=[ItemKind.GOLD.value, ItemKind.TRAINING.value])


# --- members and invitations (annotation/members_api.py) -----------------------------------


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()
    status = serializers.CharField(help_text="Certification: " + ", ".join(RaterStatus.values))
    status_reason = serializers.CharField()
    certified_via = serializers.CharField()
    excluded = serializers.BooleanField(help_text="Left out of the consensus.")
    exclusion_reason = serializers.CharField()
    live_leases = serializers.IntegerField(required=False)
    joined_at = serializers.DateTimeField(source="created_at")


class MemberInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.CharField(max_length=20)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.CharField(max_length=20)


class InvitationInputSerializer(serializers.Serializer):
    role = serializers.CharField(max_length=20)
    days = serializers.IntegerField(
        required=False, default=7, min_value=1, max_value=30, help_text="How long the link works."
    )


class InvitationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    url = serializers.CharField(
        required=False, help_text="The one-time link: in the answer that creates it, only."
    )


class InvitationPublicSerializer(serializers.Serializer):
    project = serializers.CharField(source="project.name")
    role = serializers.CharField()
    expires_at = serializers.DateTimeField()


class InvitationAcceptSerializer(serializers.Serializer):
    username = serializers.CharField(
        required=False, allow_blank=True, max_length=150,
        help_text="For a new account; logged in, you join with your own account.",
    )
    password = serializers.CharField(
        required=False, allow_blank=True, max_length=4096, style={"input_type": "password"}
    )
