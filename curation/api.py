"""Thin DRF views over the image pool (curators, researchers and admins)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from core.access import RolePermissionMixin
from core.web import validated
from humanbeauty.errors import DomainError
from humanbeauty.roles import Role

from . import services
from .imaging.validate import InvalidImage
from .models import Image, Source
from .serializers import ImageSerializer, ImageUploadSerializer
from .services.provenance import checked_terms, give_images_terms


class TermsConflict(DomainError, status=409, code="conflict"):
    """An upload of an image already stored with other terms of its own."""


class ImageViewSet(
    RolePermissionMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = Image.objects.select_related("source").order_by("id")
    serializer_class = ImageSerializer
    filterset_fields = ["source__name", "format", "sha256"]
    read_roles = (Role.CURATOR, Role.RESEARCHER, Role.ADMIN)
    write_roles = (Role.CURATOR, Role.ADMIN)
    write_actions = frozenset({"create"})

    @extend_schema(
        request={"multipart/form-data": ImageUploadSerializer},
        responses={201: ImageSerializer, 200: ImageSerializer},
    )
    def create(self, request: Request) -> Response:
        """Upload one image; it is fully decoded and stored once by sha256."""
        body = validated(ImageUploadSerializer, request.data)
        upload = body["file"]
        terms = checked_terms(  # a bad licence id is refused before anything is stored
            licence=body.get("licence"),
            consent_basis=body.get("consent_basis"),
            consent_reference=body.get("consent_reference"),
        )
        try:
            services.check_upload_size(upload.size)
        except InvalidImage as exc:
            return Response(
                {"detail": str(exc), "code": exc.reason},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        # A new source is made only once the image is good: a refused upload leaves nothing.
        # (Until then the image counts with priority 0, a new source's own.)
        name = body.get("source")
        source = Source.objects.filter(name=name).first() if name else None
        try:
            image, created = services.register_image(
                upload, source=source, original_path=upload.name or ""
            )
        except InvalidImage as exc:
            return Response(
                {"detail": str(exc), "code": exc.reason}, status=status.HTTP_400_BAD_REQUEST
            )
        if name and source is None:
            source = services.get_or_create_source(name, kind="upload")
            if created:
                Image.objects.filter(pk=image.pk, source__isnull=True).update(source=source)
                image.refresh_from_db(fields=["source"])
        if give_images_terms([image], terms).conflicts:
            raise TermsConflict(
                f"image {image.pk} is stored already with terms of its own (licence "
                f"{image.licence or 'not set'}, consent basis {image.consent_basis or 'not set'}"
                "); they were kept: change them deliberately, not by uploading the file again"
            )
        data = ImageSerializer(image, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    parser_classes = [MultiPartParser]
