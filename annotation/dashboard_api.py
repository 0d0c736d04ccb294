"""Read-only JSON for the manager dashboard: ratings over time, consensus histograms.

Same audience as the quality endpoints (`manager_project`): a project's reviewers and admins,
and global researchers and admins. Annotators get 403: these figures are about other raters.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from . import selectors
from .quality_api import manager_project
from .serializers import (
    HistogramSerializer,
    TimelineSerializer,
)

BUCKETS = ("auto", "hour", "day", "week")
MAX_BINS = 50


class ProjectDashboardMixin:
    """Dashboard reads on /api/projects/{id}/... (timeline/, histograms/)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "bucket",
                str,
                enum=BUCKETS,
                description="Bucket width; `auto` (default) picks hours for up to two days of "
                "ratings, else days (weeks for very long projects). A width too fine for the "
                "span is widened.",
            )
        ],
        responses=TimelineSerializer,
    )
    @action(detail=True, methods=["get"])
    def timeline(self, request: Request, pk: int | None = None) -> Response:
        """Production ratings per bucket (empty buckets included), cumulative, and per rater."""
        project = manager_project(request, pk)
        bucket = request.query_params.get("bucket", "auto")
        if bucket not in BUCKETS:
            raise serializers.ValidationError({"bucket": f"one of {', '.join(BUCKETS)}"})
        return Response(selectors.rating_timeline(project, bucket))

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "bins", int, description=f"Equal-width bins on [0, 1] (2-{MAX_BINS}, default 10)."
            )
        ],
        responses=inline_serializer(
            "ConsensusHistograms",
            {
                "bins": serializers.IntegerField(),
                "edges": serializers.ListField(child=serializers.FloatField()),
                "n_images": serializers.IntegerField(),
                "dimensions": serializers.DictField(child=HistogramSerializer()),
            },
        ),
    )
    @action(detail=True, methods=["get"])
    def histograms(self, request: Request, pk: int | None = None) -> Response:
        """Histogram of the consensus score (a reviewer's final score where set) per dimension."""
        project = manager_project(request, pk)
        raw = request.query_params.get("bins", "10")
        try:
            bins = int(raw)
        except ValueError:
            bins = 0
        if not 2 <= bins <= MAX_BINS:
            raise serializers.ValidationError({"bins": f"an integer from 2 to {MAX_BINS}"})
        return Response(selectors.consensus_histograms(project, bins))
