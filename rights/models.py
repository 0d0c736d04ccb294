"""Takedown requests, their matches, the blocklist and the audit trail.

A request names pool images (ids, file names, source records) and/or carries photos of the
person's images, of which only the hashes are kept (`SuppliedPhoto`). Matching finds pool
images (`Match`, each with how it was found); an admin confirms or rejects each; a `Removal`
(a long job) takes the confirmed images out of everything and blocks their hashes
(`BlockedImage`). Every step is an `AuditEvent`, a table that refuses updates and deletes
(a trigger on PostgreSQL, migration 0002).
"""

from __future__ import annotations

from django.db import models

from core.fields import user_link
from core.jobs import JobRecord
from humanbeauty.jsonsafe import FiniteJSONEncoder


class RequestStatus(models.TextChoices):
    OPEN = "open"  # filed: what it names, photos still being added
    MATCHED = "matched"  # matches found, waiting for the admin's decisions
    CONFIRMED = "confirmed"  # decided, at least one match confirmed: removal queued or running
    REMOVED = "removed"  # the confirmed images are gone everywhere
    REJECTED = "rejected"  # the request was rejected (or nothing it named was confirmed)


class TakedownRequest(models.Model):
    """A person's request to have their images removed, filed by an admin on their behalf."""

    filed_by = user_link()
    person = models.CharField(max_length=200, help_text="Who asks (the person pictured).")
    contact = models.CharField(max_length=300, help_text="How to answer them.")
    reason = models.TextField(help_text="Why, in the person's words or the admin's summary.")
    status = models.CharField(
        max_length=10, choices=RequestStatus.choices, default=RequestStatus.OPEN
    )
    # What the request names: {"image_ids": [int], "file_names": [str],
    # "source_records": [{"source": str, "path": str}]}
    names = models.JSONField(default=dict, blank=True, encoder=FiniteJSONEncoder)
    decision_note = models.TextField(blank=True, help_text="Why it was rejected, if it was.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"takedown request {self.pk} ({self.status})"


class SuppliedPhoto(models.Model):
    """A photo the person supplied, as hashes only: its bytes are never stored."""

    request = models.ForeignKey(TakedownRequest, on_delete=models.CASCADE, related_name="photos")
    label = models.CharField(max_length=300, blank=True, help_text="The uploaded file's name.")
    sha256 = models.CharField(max_length=64)
    # Unsigned 64-bit perceptual hashes stored as signed bigints, as curation.Image keeps them.
    phash = models.BigIntegerField()
    dhash = models.BigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    added_by = user_link()
    created_at = models.DateTimeField(auto_now_add=True)
    # With a face model configured (TAKEDOWN_FACE_MODEL), the faces found in the photo when it
    # was added, as that model embeds them (rights.faces), kept for matching and re-matching:
    # derived data, deleted with the request. face_model: the model file's sha256 ("" none).
    face_model = models.CharField(max_length=64, blank=True)
    faces = models.PositiveSmallIntegerField(null=True, blank=True)
    face_vectors = models.BinaryField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "sha256"], name="suppliedphoto_once")
        ]

    def __str__(self) -> str:
        return f"photo {self.shown_as} of request {self.request_id}"

    @property
    def shown_as(self) -> str:
        """How messages name the photo: its file name, else the start of its sha256."""
        return self.label or self.sha256[:12]


class MatchHow(models.TextChoices):
    NAMED_ID = "named_id"  # the request named its id
    NAMED_FILE = "named_file"  # the request named its file name
    SOURCE_RECORD = "source_record"  # the request named a source record linked to it
    EXACT = "exact_sha256"  # a supplied photo has the same bytes
    NEAR_DUPLICATE = "near_duplicate"  # pHash within the pool's threshold of a photo or image
    FACE = "same_face"  # the face model (TAKEDOWN_FACE_MODEL) found the same face


class MatchDecision(models.TextChoices):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class Match(models.Model):
    """A pool image a request may mean, how it was found, and the admin's decision. The image
    row goes at removal (null then); its id, sha256 and file name stay here for the report."""

    request = models.ForeignKey(TakedownRequest, on_delete=models.CASCADE, related_name="matches")
    image = models.ForeignKey(
        "curation.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    image_ref = models.BigIntegerField(help_text="The pool image's id when it was matched.")
    sha256 = models.CharField(max_length=64)
    phash = models.BigIntegerField(null=True, blank=True)
    original_path = models.CharField(max_length=1000, blank=True)
    stored_name = models.CharField(max_length=300, help_text="Its file in the store.")
    how = models.CharField(max_length=20, choices=MatchHow.choices)
    # Hamming distance of the pHashes for a near-duplicate; what it was near (photo or image).
    distance = models.PositiveSmallIntegerField(null=True, blank=True)
    # Cosine similarity of the face embeddings, for a match found by face.
    similarity = models.FloatField(null=True, blank=True)
    evidence = models.CharField(max_length=300, blank=True)
    decision = models.CharField(
        max_length=10, choices=MatchDecision.choices, default=MatchDecision.PENDING
    )
    decided_by = user_link()
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    # Every place the image was found at removal and what was done there:
    # [{"place", "what", "done"}]
    places = models.JSONField(default=list, blank=True, encoder=FiniteJSONEncoder)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "image_ref"], name="match_once_per_image")
        ]

    def __str__(self) -> str:
        return f"image {self.image_ref} for request {self.request_id} ({self.decision})"


class FaceEmbedding(models.Model):
    """A pool image's faces as one face model embeds them (rights.faces): derived data, filled
    on demand by matching and `manage.py index_faces`, one row per image and model (faces = 0:
    none found; error: the file could not be read). Goes with the image."""

    image = models.ForeignKey("curation.Image", on_delete=models.CASCADE, related_name="+")
    model_sha256 = models.CharField(max_length=64)
    faces = models.PositiveSmallIntegerField(default=0)
    # faces x 128 little-endian float32, L2-normalised; boxes: [[x, y, width, height]].
    vectors = models.BinaryField(default=bytes)
    boxes = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "model_sha256"], name="faceembedding_once")
        ]
        indexes = [models.Index(fields=["model_sha256", "faces"])]

    def __str__(self) -> str:
        return f"{self.faces} face(s) of image {self.image_id} ({self.model_sha256[:12]})"


class Removal(JobRecord):
    """Taking a request's confirmed images out of everything, as a long job (core.jobs).

    progress: {"done", "total"} images."""

    RESUME_TASK = "rights.tasks.remove_confirmed_task"

    request = models.ForeignKey(
        TakedownRequest, on_delete=models.PROTECT, related_name="removals"
    )

    def __str__(self) -> str:
        return f"removal {self.pk} for request {self.request_id} ({self.status})"


class BlockedImage(models.Model):
    """A removed image's hashes: every door into the pool refuses these bytes and anything
    within the pool's near-duplicate threshold of the pHash."""

    sha256 = models.CharField(max_length=64, unique=True)
    phash = models.BigIntegerField(null=True, blank=True)
    request = models.ForeignKey(TakedownRequest, on_delete=models.PROTECT, related_name="blocked")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"blocked {self.sha256[:12]} (request {self.request_id})"


class WithdrawnRatings(models.Model):
    """What is kept of removed images' ratings with `TAKEDOWN_RATINGS = "aggregate"`: per
    project and request, how many ratings by how many raters and the mean of each dimension;
    no image, no rater."""

    request = models.ForeignKey(
        TakedownRequest, on_delete=models.PROTECT, related_name="rating_aggregates"
    )
    project = models.ForeignKey(
        "annotation.Project", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    project_name = models.CharField(max_length=200)
    n_images = models.PositiveIntegerField()
    n_ratings = models.PositiveIntegerField()
    n_raters = models.PositiveIntegerField()
    # {dimension key: {"mean": float | None, "n": int}}
    means = models.JSONField(default=dict, encoder=FiniteJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.n_ratings} withdrawn ratings of {self.project_name}"


class AuditEvent(models.Model):
    """One step of a request: who, when, what, why. Append-only."""

    request = models.ForeignKey(
        TakedownRequest, null=True, on_delete=models.PROTECT, related_name="audit"
    )
    actor = user_link()
    action = models.CharField(max_length=40)
    why = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=FiniteJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["request", "created_at"])]

    def __str__(self) -> str:
        return f"{self.action} on request {self.request_id} at {self.created_at:%Y-%m-%d %H:%M}"
