"""The image pool: every stored file once (by sha256), with where it came from."""

from __future__ import annotations

from django.db import models


class Source(models.Model):
    """Where images came from: a public dataset, a folder import, an upload batch."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=50, default="folder")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["source", "id"])]

    def __str__(self) -> str:
        return f"image {self.pk} ({self.original_path or self.sha256[:12]})"
