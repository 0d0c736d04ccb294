"""Rating projects, their members, leases on images and the ratings themselves."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from curation.models import Image
from humanbeauty.roles import Role
from humanbeauty.standard import BY_KEY, DIMENSIONS


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to raters.")
    overlap = models.PositiveSmallIntegerField(default=3, help_text="Raters per image.")
    lease_minutes = models.PositiveIntegerField(
        default=30, help_text="How long a rater holds an image before it goes to someone else."
    )
    is_active = models.BooleanField(default=True)
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


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=[(r.value, r.value) for r in Role])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.project}"


class ProjectImage(models.Model):
    """An image in a project's queue with its slot counters.

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
            models.Index(
                fields=["project", "remaining", "id"],
                condition=Q(remaining__gt=0),
                name="projectimage_open_queue",
            )
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
