"""Rating projects, their members, leases on images and the ratings themselves."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from curation.models import Image
from humanbeauty.jsonsafe import FiniteJSONEncoder
from humanbeauty.roles import Role
from humanbeauty.standard import BY_KEY, DIMENSIONS, LEVELS


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to raters.")
    overlap = models.PositiveSmallIntegerField(default=3, help_text="Raters per image.")
    lease_minutes = models.PositiveIntegerField(
        default=30, help_text="How long a rater holds an image before it goes to someone else."
    )
    is_active = models.BooleanField(default=True)

    # --- quality control (see annotation/services/quality.py) ---
    gold_rate = models.FloatField(
        default=0.0, help_text="Share of production tasks that are hidden gold items (0-0.5)."
    )
    gold_max_mae = models.FloatField(
        default=0.15, help_text="Raters whose mean absolute error on gold exceeds this are flagged."
    )
    gold_min_n = models.PositiveSmallIntegerField(
        default=5, help_text="Gold items a rater must have answered before gold can flag them."
    )
    pause_on_gold_failure = models.BooleanField(
        default=False, help_text="Pause (not only flag) raters who fail on gold."
    )
    qual_max_mae = models.FloatField(
        default=0.15, help_text="Qualification pass rule: per-dimension MAE at most this."
    )
    qual_min_srcc = models.FloatField(
        default=0.5, help_text="Qualification pass rule: per-dimension Spearman at least this."
    )
    max_overlap = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Adaptive overlap: raters per image at most (empty: off)."
    )
    disagreement_threshold = models.FloatField(
        default=0.2, help_text="Std of an image's scores above which it counts as disputed."
    )
    screening = models.CharField(
        max_length=12,
        choices=[("none", "none"), ("correlation", "correlation"), ("bt500", "ITU-R BT.500")],
        default="correlation",
    )
    screening_min_corr = models.FloatField(
        default=0.2, help_text="Correlation screening: exclude raters below this."
    )
    screening_min_shared = models.PositiveIntegerField(
        default=20,
        help_text="Screening looks at a rater only once they share this many images with others.",
    )
    bias_correction = models.BooleanField(
        default=False, help_text="Subtract each rater's bias before averaging."
    )
    consistency_tolerance = models.FloatField(
        default=0.2, help_text="Largest allowed gap between a parent score and its children's mean."
    )
    # Managers' own texts over the standard's guides (humanbeauty.dimension_guides):
    # {key: {"definition": str, "levels": {level: str}}}, only what differs from the defaults.
    dimension_guides = models.JSONField(
        default=dict, blank=True, encoder=FiniteJSONEncoder, help_text="Overrides of the guides."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_gte_1")
        ]

    def __str__(self) -> str:
        return self.name


class RaterStatus(models.TextChoices):
    CANDIDATE = "candidate"
    CERTIFIED = "certified"
    FLAGGED = "flagged"
    PAUSED = "paused"
    REVOKED = "revoked"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=[(r.value, r.value) for r in Role])
    created_at = models.DateTimeField(auto_now_add=True)
    # Certification and quality (meaningful for raters).
    status = models.CharField(
        max_length=10, choices=RaterStatus.choices, default=RaterStatus.CANDIDATE
    )
    status_reason = models.TextField(blank=True)
    # How the current certification came about: "auto" (project without a qualification
    # track), "test" (passed the track) or "manager" (by hand).
    certified_via = models.CharField(max_length=10, blank=True)
    qualification_result = models.JSONField(null=True, blank=True, encoder=FiniteJSONEncoder)
    gold_n = models.PositiveIntegerField(default=0)
    gold_abs_error_sum = models.FloatField(default=0.0)
    # Cached by the statistics refresh (annotation/services/quality.py).
    bias = models.FloatField(null=True, blank=True)
    spread = models.FloatField(null=True, blank=True)
    corr_with_others = models.FloatField(null=True, blank=True)
    dimension_bias = models.JSONField(
        default=dict, blank=True, encoder=FiniteJSONEncoder, help_text="Bias per dimension."
    )
    excluded = models.BooleanField(
        default=False, help_text="Left out of the consensus (ratings kept)."
    )
    # Why: screening's finding or the manager's reason; who: "screening" or "manager".
    exclusion_reason = models.TextField(blank=True)
    exclusion_source = models.CharField(max_length=10, blank=True)
    # A manager's decision wins over screening until undone: "include", "exclude" or "".
    exclusion_override = models.CharField(
        max_length=8,
        blank=True,
        choices=[("include", "include"), ("exclude", "exclude")],
    )
    shared_images = models.PositiveIntegerField(
        default=0, help_text="Production images this rater shares with at least one other."
    )
    screening_note = models.TextField(blank=True, help_text="What screening saw last time.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.project}"

    @property
    def gold_mae(self) -> float | None:
        return self.gold_abs_error_sum / self.gold_n if self.gold_n else None


class ItemKind(models.TextChoices):
    PRODUCTION = "production"
    GOLD = "gold"  # hidden among production tasks, known reference scores
    TRAINING = "training"  # qualification, with feedback after each submit
    TEST = "test"  # qualification, no feedback


class ProjectImage(models.Model):
    """An image in a project's queue with its slot counters.

    Reference items (gold, training, test) are answered by every rater once and never touch
    the counters: their target stays 0.

    `remaining` = target - completed - leased is what the next-task query orders and filters
    on; a partial index over it keeps that query's cost independent of the project's size.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="project_items")
    target = models.PositiveSmallIntegerField(help_text="Ratings wanted for this image.")
    completed = models.PositiveSmallIntegerField(default=0)
    leased = models.PositiveSmallIntegerField(default=0)
    remaining = models.GeneratedField(
        expression=F("target") - F("completed") - F("leased"),
        output_field=models.IntegerField(),
        db_persist=True,
    )
    kind = models.CharField(max_length=10, choices=ItemKind.choices, default=ItemKind.PRODUCTION)
    excluded = models.BooleanField(default=False, help_text="Excluded by a reviewer.")
    # Set when a rating arrives; the statistics refresh recomputes only stale images.
    consensus_stale = models.BooleanField(default=False)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "image"], name="projectimage_unique_image"),
            # The overlap promise itself, enforced by the database as a last line of defence.
            models.CheckConstraint(
                condition=Q(completed__lte=F("target") - F("leased")),
                name="projectimage_not_overfilled",
            ),
        ]
        indexes = [
            # The next-task queue and its fresh part (annotation/services/queue.py).
            models.Index(
                fields=["project", "remaining", "id"],
                condition=Q(remaining__gt=0, kind="production", excluded=False),
                name="projectimage_open_queue",
            ),
            models.Index(
                fields=["project", "id"],
                condition=Q(completed=0, leased=0, kind="production", excluded=False),
                name="projectimage_fresh",
            ),
            models.Index(
                fields=["project", "id"],
                condition=Q(consensus_stale=True),
                name="projectimage_stale",
            ),
            models.Index(fields=["project", "kind", "id"], name="projectimage_kind"),
        ]

    def __str__(self) -> str:
        return f"image {self.image_id} in project {self.project_id}"


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active"
    COMPLETED = "completed"
    SKIPPED = "skipped"
    EXPIRED = "expired"


class Assignment(models.Model):
    """A rater's lease on one image of a project. At most one per rater and image, ever."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    project_image = models.ForeignKey(
        ProjectImage, on_delete=models.CASCADE, related_name="assignments"
    )
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    status = models.CharField(
        max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project_image", "rater"], name="assignment_once_per_rater"
            )
        ]
        indexes = [
            models.Index(fields=["project", "rater", "status"], name="assignment_rater_status"),
            models.Index(
                fields=["project", "expires_at"],
                condition=Q(status="active"),
                name="assignment_live_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"lease {self.pk} of image {self.image_id} to {self.rater_id} ({self.status})"


def _score_field(key: str) -> models.FloatField:
    dim = BY_KEY[key]
    return models.FloatField(null=dim.nullable, blank=dim.nullable, help_text=dim.name)


class Rating(models.Model):
    """One rater's 12 scores for one image in one project (null = not applicable)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ratings")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="ratings")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ratings"
    )
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="rating")
    time_spent_ms = models.PositiveIntegerField()
    request_id = models.UUIDField(unique=True, default=uuid.uuid4)
    late = models.BooleanField(default=False, help_text="Submitted after the lease expired.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "image", "rater"], name="rating_once_per_rater"
            ),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{d.key}__gte": 0.0, f"{d.key}__lte": 1.0})
                    | Q(**{f"{d.key}__isnull": True}),
                    name=f"rating_{d.key}_in_unit_range",
                )
                for d in DIMENSIONS
            ],
        ]
        indexes = [models.Index(fields=["project", "rater", "created_at"])]

    def __str__(self) -> str:
        return f"rating {self.pk} of image {self.image_id} by {self.rater_id}"

    @property
    def scores(self) -> dict[str, float | None]:
        return {d.key: getattr(self, d.key) for d in DIMENSIONS}


for _dim in DIMENSIONS:
    Rating.add_to_class(_dim.key, _score_field(_dim.key))


class SkipReason(models.TextChoices):
    SKIP = "skip", "Skipped"
    NOT_A_PERSON = "not_a_person", "Not a person"
    INAPPROPRIATE = "inappropriate", "Inappropriate"
    BROKEN = "broken", "Broken image"
    DUPLICATE = "duplicate", "Duplicate"
    OTHER = "other", "Other"


class Skip(models.Model):
    """A rater passed on an image; any reason but `skip` also flags the image for review."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="skips")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="skips")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="skip")
    reason = models.CharField(max_length=20, choices=SkipReason.choices)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.reason} of image {self.image_id} by {self.rater_id}"

    @property
    def is_flag(self) -> bool:
        return self.reason != SkipReason.SKIP


class Reference(models.Model):
    """Known scores of a gold, training or test item (null = not applicable)."""

    item = models.OneToOneField(ProjectImage, on_delete=models.CASCADE, related_name="reference")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"reference for item {self.item_id}"

    @property
    def scores(self) -> dict[str, float | None]:
        return {d.key: getattr(self, d.key) for d in DIMENSIONS}


for _dim in DIMENSIONS:
    Reference.add_to_class(_dim.key, models.FloatField(null=True, blank=True, help_text=_dim.name))


class GuideExample(models.Model):
    """A gold or training image a manager pinned as an example of one level of one dimension."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guide_examples")
    dimension = models.CharField(max_length=40, choices=[(d.key, d.name) for d in DIMENSIONS])
    level = models.CharField(max_length=12, choices=[(lv, lv) for lv in LEVELS])
    item = models.ForeignKey(ProjectImage, on_delete=models.CASCADE, related_name="+")
    pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "dimension", "level", "item"], name="guideexample_unique"
            )
        ]
        indexes = [models.Index(fields=["project", "dimension", "level"])]

    def __str__(self) -> str:
        return f"example of {self.dimension} {self.level}: item {self.item_id}"


class ConsensusLabel(models.Model):
    """Per image: the mean opinion score of each dimension over the included raters.

    `scores` maps each key to {"mos", "std", "n"}, or to null where most raters said "not
    applicable"; `final` holds a reviewer's decision, which wins over the computed scores.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="consensus")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    scores = models.JSONField(encoder=FiniteJSONEncoder)
    n_raters = models.PositiveSmallIntegerField()
    # Ratings of the image (included or not) the label was computed from: a label whose
    # count is below the image's ratings is stale (annotation.selectors.review_entries).
    n_ratings = models.PositiveIntegerField(default=0)
    max_std = models.FloatField(null=True)
    inconsistent = models.JSONField(
        default=list, encoder=FiniteJSONEncoder, help_text="Parents that disagree with children."
    )
    final = models.JSONField(null=True, blank=True, encoder=FiniteJSONEncoder)
    updated_at = models.DateTimeField(auto_now=True, help_text="When the label was computed.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "image"], name="consensus_unique_image")
        ]

    def __str__(self) -> str:
        return f"consensus of image {self.image_id} in project {self.project_id}"


class ProjectStats(models.Model):
    """Cached agreement figures of a project (recomputed by the statistics refresh)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="stats")
    agreement = models.JSONField(default=dict, encoder=FiniteJSONEncoder)
    n_ratings = models.PositiveIntegerField(
        default=0, help_text="Production ratings the rater figures and agreement were computed on."
    )
    computed_at = models.DateTimeField(auto_now=True)
    figures_computed_at = models.DateTimeField(
        null=True, blank=True, help_text="Rater figures, screening and agreement."
    )
    consensus_computed_at = models.DateTimeField(
        null=True, blank=True, help_text="The last consensus refresh (of the stale images)."
    )
    screening = models.JSONField(
        default=dict, encoder=FiniteJSONEncoder, help_text="Candidates, cap and warning."
    )
    # Debounce: set when a refresh is queued, cleared when it starts (services.quality).
    refresh_due_at = models.DateTimeField(null=True, blank=True)
    refresh_runs = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"stats of project {self.project_id}"


class ReviewStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"


class ReviewDecision(models.TextChoices):
    ACCEPT = "accept", "Accept the consensus"
    SET_FINAL = "set_final", "Set final scores"
    MORE_RATINGS = "more_ratings", "Send for more ratings"
    EXCLUDE = "exclude", "Exclude the image"


class ReviewItem(models.Model):
    """An image a reviewer should look at, with every reason it was queued for."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reviews")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    reasons = models.JSONField(default=list, encoder=FiniteJSONEncoder)
    status = models.CharField(
        max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.OPEN
    )
    decision = models.CharField(max_length=15, choices=ReviewDecision.choices, blank=True)
    note = models.TextField(blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "image"], name="review_unique_image")
        ]
        indexes = [models.Index(fields=["project", "status", "id"])]

    def __str__(self) -> str:
        return f"review of image {self.image_id} ({self.status})"


class AuditEvent(models.Model):
    """Who did what to whom: certifications, revocations, review decisions."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="audit")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=40)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    image = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    details = models.JSONField(default=dict, encoder=FiniteJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["project", "created_at"])]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} at {self.created_at:%Y-%m-%d %H:%M}"


class Invitation(models.Model):
    """A one-time link that makes whoever opens it a member of a project, with a role.

    Only the token's SHA-256 is kept: the link is shown once, to the manager who made it.
    """

    token_hash = models.CharField(max_length=64, unique=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=20, choices=[(r.value, r.value) for r in Role])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(used_by__isnull=True) | Q(used_at__isnull=False),
                name="invitation_used_by_only_when_used",
            )
        ]

    def __str__(self) -> str:
        return f"invitation to {self.project} as {self.role}"
