"""Thin DRF views for the rating workflow; the rules live in services and selectors."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.web import validated
from humanbeauty.standard import describe

from . import selectors, services
from .dashboard_api import ProjectDashboardMixin
from .models import Assignment, Membership, Project
from .quality_api import ProjectQualityMixin
from .serializers import (
    DimensionSerializer,
    ProjectDetailSerializer,
    ProjectSerializer,
    RatingInputSerializer,
    RatingSerializer,
    SkipInputSerializer,
    SkipSerializer,
    TaskSerializer,
)


def _project_for(request: Request, pk: int) -> tuple[Project, str]:
    project = get_object_or_404(Project, pk=pk)
    role = selectors.role_in(request.user, project)
    if role is None:
        # The very answer a missing project gives: non-members learn nothing about it.
        raise NotFound(f"project {pk} does not exist")
    return project, role


class ProjectViewSet(ProjectQualityMixin, ProjectDashboardMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ProjectSerializer
    lookup_value_regex = r"\d+"  # anything else is a 404 from the router, not a bad cast

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation, no user
            return Project.objects.none()
        return selectors.projects_for(self.request.user)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["roles"] = dict(
            Membership.objects.filter(user=self.request.user).values_list("project_id", "role")
        )
        return context

    @extend_schema(responses=ProjectDetailSerializer)
    def retrieve(self, request: Request, pk: int | None = None) -> Response:
        project, role = _project_for(request, pk)
        context = self.get_serializer_context()
        context["roles"][project.pk] = role
        context["progress"] = selectors.project_progress(project, request.user)
        return Response(ProjectDetailSerializer(project, context=context).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "exclude", str, description="Comma-separated assignment ids the client already "
                "holds (to preload the following image)."
            )
        ],
        responses={
            200: TaskSerializer,
            204: OpenApiResponse(description="Nothing is left for this rater."),
        },
    )
    @action(detail=True, methods=["get"])
    def next(self, request: Request, pk: int | None = None) -> Response:
        # The hot path: the service checks membership and role while locking the rater's row.
        try:
            exclude = [int(x) for x in request.query_params.get("exclude", "").split(",") if x]
        except ValueError:
            return Response(
                {"detail": "exclude must be comma-separated assignment ids", "code": "invalid"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        assignment = services.next_task(int(pk), request.user, exclude=exclude)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(TaskSerializer(assignment, context={"request": request}).data)

    @extend_schema(responses=RatingSerializer(many=True))
    @action(detail=True, methods=["get"])
    def ratings(self, request: Request, pk: int | None = None) -> Response:
        """Ratings in the project: all of them for reviewers and admins, else your own."""
        project, _ = _project_for(request, pk)
        qs = selectors.ratings_visible_to(request.user, project).select_related("rater")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(RatingSerializer(page, many=True).data)


class AssignmentViewSet(viewsets.GenericViewSet):
    """Finish a lease: rate it or skip it. Only the lease's owner may."""

    queryset = Assignment.objects.none()
    lookup_value_regex = r"\d+"

    @extend_schema(
        request=RatingInputSerializer,
        responses={201: RatingSerializer},
        description="Idempotent on request_id: a retry returns the first rating (same id).",
    )
    @action(detail=True, methods=["post"])
    def rating(self, request: Request, pk: int | None = None) -> Response:
        body = validated(RatingInputSerializer, request.data)
        result = services.submit_rating(
            int(pk),
            request.user,
            body["scores"],
            body["request_id"],
            time_spent_ms=body.get("time_spent_ms"),
        )
        data = RatingSerializer(result.rating).data
        if result.feedback is not None:
            # Qualification training: the reference scores, to learn from.
            data["feedback"] = result.feedback
        response = Response(data, status=status.HTTP_201_CREATED)
        if not result.created:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(request=SkipInputSerializer, responses={201: SkipSerializer})
    @action(detail=True, methods=["post"])
    def skip(self, request: Request, pk: int | None = None) -> Response:
        body = validated(SkipInputSerializer, request.data)
        skip, created = services.skip_assignment(
            int(pk),
            request.user,
            body["reason"],
            text=body.get("text", ""),
        )
        return Response(
            SkipSerializer(skip).data, status=status.HTTP_201_CREATED if created else 200
        )


class DimensionsView(APIView):
    """The 12-dimensional standard: keys, names, groups, hierarchy, nullability."""

    @extend_schema(responses=DimensionSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(describe())


class MeView(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "username": user.get_username(),
                "is_superuser": user.is_superuser,
                "global_roles": sorted(user.groups.values_list("name", flat=True)),
                "projects": {
                    str(p): r
                    for p, r in Membership.objects.filter(user=user).values_list(
                        "project_id", "role"
                    )
                },
            }
        )
