"""API: a rating project from a filter job's (or a source's) accepted images.

Lives in annotation because it writes annotation data; curation's API knows nothing of it.
Curators and admins only.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import global_role_permission
from core.web import validated
from curation.models import FilterJob, Source
from humanbeauty.roles import Role

from .serializers import (
    ProjectFromCurationResultSerializer,
    ProjectFromCurationSerializer,
)
from .services.from_curation import FromCurationResult, project_from_job, project_from_source


def result_data(result: FromCurationResult) -> dict:
    p = result.project
    return {
        "project": {"id": p.pk, "name": p.name, "overlap": p.overlap},
        "job": result.job.pk,
        "accepted": result.accepted,
        "images": result.added,
        "sample": result.sample,
        "seed": result.seed,
        "strata": [s.as_dict() for s in result.strata],
    }


class _FromCurationView(APIView):
    permission_classes = [global_role_permission(Role.CURATOR, Role.ADMIN)]

    def _options(self, request: Request) -> dict:
        d = validated(ProjectFromCurationSerializer, request.data)
        return {
            "name": d["name"],
            "sample": d.get("sample"),
            "seed": d.get("seed", 0),
            "overlap": d.get("overlap"),
            "user": request.user,
        }


class JobProjectView(_FromCurationView):
    @extend_schema(
        request=ProjectFromCurationSerializer,
        responses={
            201: ProjectFromCurationResultSerializer,
            409: OpenApiResponse(description="The job still runs, or the name is taken."),
        },
        description="Create a rating project from the job's accepted images (final decision: "
        "a curator's override, else the job's): all, or a sample of N stratified by the "
        "source's score (quantile bins, proportional allocation, seeded).",
    )
    def post(self, request: Request, pk: int) -> Response:
        job = get_object_or_404(FilterJob.objects.select_related("source"), pk=pk)
        opts = self._options(request)
        result = project_from_job(job, opts.pop("name"), **opts)
        return Response(result_data(result), status=status.HTTP_201_CREATED)


class SourceProjectView(_FromCurationView):
    @extend_schema(
        request=ProjectFromCurationSerializer,
        responses={201: ProjectFromCurationResultSerializer},
        description="As /api/jobs/{id}/project/, with the source's latest finished job.",
    )
    def post(self, request: Request, pk: int) -> Response:
        source = get_object_or_404(Source, pk=pk)
        opts = self._options(request)
        result = project_from_source(source, opts.pop("name"), **opts)
        return Response(result_data(result), status=status.HTTP_201_CREATED)
