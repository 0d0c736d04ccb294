"""Thin DRF views for the dimension guides: every member reads them, managers edit them.

Members (annotators included) read the texts and open the pinned examples; the project's
reviewers and admins change texts and pin or unpin examples. Someone outside the project gets
the 404 a missing project gives. Nothing here shows a reference score or anyone's rating.
"""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.web import validated
from curation.views import CONTENT_TYPES
from humanbeauty.standard import BY_KEY, LEVELS

from . import selectors
from .models import Project
from .quality_api import MANAGER_ROLES, manager_project
from .serializers import (
    GuideCandidateSerializer,
    GuideExampleInputSerializer,
    GuideExampleSerializer,
    GuidesSerializer,
    GuidesUpdateSerializer,
)
from .services import guides as guide_services


def member_project(request: Request, pk: int) -> tuple[Project, bool]:
    """The project for anyone who belongs to it (or may read it as a platform researcher or
    admin), and whether they may edit its guides."""
    project = get_object_or_404(Project, pk=pk)
    role = selectors.role_in(request.user, project)
    if role is None:
        manager_project(request, pk)  # a platform reader passes; anyone else gets the 404
    return project, role in MANAGER_ROLES


def example_url(project: Project, example_id: int) -> str:
    return reverse("project-guide-example-image", args=[project.pk, example_id])


def guides_answer(project: Project, *, can_edit: bool) -> dict[str, object]:
    guides = selectors.project_guides(project)
    dimensions = []
    for key, guide in guides.items():
        levels = [
            {
                "level": level,
                "number": i + 1,
                "description": guide["levels"][level],
                "examples": [
                    {"id": e.pk, "image": e.item.image_id, "url": example_url(project, e.pk)}
                    for e in guide["examples"][level]
                ],
            }
            for i, level in enumerate(LEVELS)
        ]
        dimensions.append(
            {
                "key": key,
                "name": BY_KEY[key].name,
                "definition": guide["definition"],
                "custom": guide["custom"],
                "levels": levels,
            }
        )
    return GuidesSerializer({"dimensions": dimensions, "can_edit": can_edit}).data


class GuidesView(APIView):
    """GET /api/projects/{id}/guides/: each dimension's definition, levels and examples;
    PATCH changes the texts it names, PUT replaces all of the project's own texts."""

    @extend_schema(responses=GuidesSerializer)
    def get(self, request: Request, pk: int) -> Response:
        project, can_edit = member_project(request, pk)
        return Response(guides_answer(project, can_edit=can_edit))

    @extend_schema(request=GuidesUpdateSerializer, responses=GuidesSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, replace=False)

    @extend_schema(request=GuidesUpdateSerializer, responses=GuidesSerializer)
    def put(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, replace=True)

    def _update(self, request: Request, pk: int, *, replace: bool) -> Response:
        project = manager_project(request, pk, write=True)
        body = validated(GuidesUpdateSerializer, request.data)
        project = guide_services.update_guides(
            project, body["dimensions"], actor=request.user, replace=replace
        )
        return Response(guides_answer(project, can_edit=True))


class GuideExamplesView(APIView):
    """GET: the gold and training images a manager may pin; POST pins one to a level."""

    @extend_schema(responses=GuideCandidateSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = manager_project(request, pk, write=True)
        items = selectors.example_items(project)
        data = [
            {"image": i.image_id, "kind": i.kind, "url": reverse("image-file", args=[i.image_id])}
            for i in items
        ]
        return Response(GuideCandidateSerializer(data, many=True).data)

    @extend_schema(request=GuideExampleInputSerializer, responses={201: GuideExampleSerializer})
    def post(self, request: Request, pk: int) -> Response:
        project = manager_project(request, pk, write=True)
        body = validated(GuideExampleInputSerializer, request.data)
        example = guide_services.pin_example(project, **body, actor=request.user)
        data = {"id": example.pk, "image": example.item.image_id,
                "url": example_url(project, example.pk)}
        return Response(GuideExampleSerializer(data).data, status=status.HTTP_201_CREATED)


class GuideExampleView(APIView):
    """DELETE unpins an example (managers)."""

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, example: int) -> Response:
        project = manager_project(request, pk, write=True)
        guide_services.unpin_example(project, example, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GuideExampleImageView(APIView):
    """The example's image file, for every member (raters see no other gold or training
    image outside their own leases)."""

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int, example: int) -> FileResponse:
        project, _ = member_project(request, pk)
        image = selectors.example_image(project, example)
        try:
            handle = image.file.open("rb")
        except FileNotFoundError:
            raise Http404("the example's image file is missing") from None
        response = FileResponse(
            handle, content_type=CONTENT_TYPES.get(image.format, "application/octet-stream")
        )
        response["Cache-Control"] = "private, max-age=3600"
        return response
