"""Image files, served only to users who may see them (session or token auth)."""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request

from .access import may_view_image
from .models import Image

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


@extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
@api_view(["GET"])
def image_file(request: Request, pk: int) -> FileResponse:
    image = get_object_or_404(Image, pk=pk)
    if not may_view_image(request.user, image):
        # 404, not 403: whether an image exists is itself not for everyone to know.
        raise Http404("no such image")
    response = FileResponse(
        image.file.open("rb"),
        content_type=CONTENT_TYPES.get(image.format, "application/octet-stream"),
    )
    # Private caching lets the rater page preload the next image and show it instantly.
    response["Cache-Control"] = "private, max-age=3600"
    response["ETag"] = f'"{image.sha256}"'
    return response
