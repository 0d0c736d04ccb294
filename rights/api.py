"""Thin DRF views of takedown requests, for platform admins only: file, add photos, match,
decide, remove (a long job), reject, and the report of every place an image was found."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from core.access import global_role_permission
from core.web import LongJobViewSet, validated
from curation.imaging.validate import InvalidImage
from curation.services import check_upload_size
from humanbeauty.roles import Role

from . import selectors, services
from .models import Removal
from .serializers import (
    DecideSerializer,
    MatchRequestSerializer,
    MatchSerializer,
    PhotosSerializer,
    RejectSerializer,
    RemovalSerializer,
    TakedownCreateSerializer,
    TakedownSerializer,
)

AdminOnly = global_role_permission(Role.ADMIN)


class TakedownViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = TakedownSerializer
    permission_classes = [AdminOnly]

    def get_queryset(self):
        return selectors.requests()

    @extend_schema(request=TakedownCreateSerializer, responses={201: TakedownSerializer})
    def create(self, request: Request) -> Response:
        """File a takedown request on a person's behalf (what it names may follow as photos)."""
        body = validated(TakedownCreateSerializer, request.data)
        row = services.file_request(**body, user=request.user)
        return Response(TakedownSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PhotosSerializer, responses={201: TakedownSerializer})
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def photos(self, request: Request, pk: int | None = None) -> Response:
        """Add the person's photos (multipart, field `photos`): only their hashes are kept."""
        row = self.get_object()
        body = validated(PhotosSerializer, {"photos": request.FILES.getlist("photos")})
        files = body["photos"]
        for f in files:
            try:
                check_upload_size(f.size)
            except InvalidImage as exc:
                raise services.TakedownError(f"photo {f.name}: {exc.message}") from None
        services.add_photos(row, [(f, f.name) for f in files], user=request.user)
        return Response(TakedownSerializer(self.get_object()).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=MatchRequestSerializer, responses={200: MatchSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def match(self, request: Request, pk: int | None = None) -> Response:
        """Find the pool images the request means (named, same bytes, near-duplicates)."""
        body = validated(MatchRequestSerializer, request.data)
        found = services.find_matches(self.get_object(), faces=body["faces"],
                                      user=request.user)
        return Response(MatchSerializer(found, many=True).data)

    @extend_schema(request=DecideSerializer, responses={200: MatchSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: int | None = None) -> Response:
        """Confirm or reject matches: {"decisions": [{"match", "decision", "note"}]}."""
        body = validated(DecideSerializer, request.data)
        found = services.decide_matches(self.get_object(), body["decisions"],
                                        user=request.user)
        return Response(MatchSerializer(found, many=True).data)

    @extend_schema(request=None, responses={202: RemovalSerializer})
    @action(detail=True, methods=["post"])
    def remove(self, request: Request, pk: int | None = None) -> Response:
        """Remove the confirmed images from everything (a long job; poll the removal)."""
        removal = services.start_removal(self.get_object(), user=request.user)
        removal.refresh_from_db()
        return Response(RemovalSerializer(removal).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=RejectSerializer, responses={200: TakedownSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: int | None = None) -> Response:
        """Reject the whole request, with the reason."""
        body = validated(RejectSerializer, request.data)
        row = services.reject_request(self.get_object(), why=body["why"],
                                      user=request.user)
        return Response(TakedownSerializer(row).data)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def report(self, request: Request, pk: int | None = None) -> Response:
        """Every place each image was found, what was done, and the audit trail."""
        return Response(selectors.request_report(self.get_object()))

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"], url_path="face-matching")
    def face_matching(self, request: Request) -> Response:
        """Whether matching by face is available (it is not without a recognition model)."""
        return Response(selectors.face_matching())


class RemovalViewSet(LongJobViewSet):
    """Removals of takedown requests: status, progress {done, total} and cancel."""

    serializer_class = RemovalSerializer
    permission_classes = [AdminOnly]

    def get_queryset(self):
        return Removal.objects.order_by("-created_at", "-id")
