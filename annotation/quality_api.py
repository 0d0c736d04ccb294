"""Thin DRF views for quality control: references, raters, agreement, consensus, review.

Managers are a project's reviewers and admins; researchers (and platform admins) may read
the statistics. Annotators reach none of this: it shows other raters' work.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from core.access import has_global_role
from core.web import validated
from humanbeauty.roles import OVERSIGHT_ROLES, Role

from . import selectors
from .models import ItemKind, Project, ReviewItem
from .serializers import (
    ConsensusEntrySerializer,
    DimensionAgreementSerializer,
    RaterEntrySerializer,
    RaterExclusionSerializer,
    RaterStatusSerializer,
    ReferenceUploadSerializer,
    ReviewDecisionSerializer,
)
from .services import WorkflowError
from .services import quality as quality_services
from .services import review as review_services
from .tasks import refresh_project_statistics

MANAGER_ROLES = {r.value for r in OVERSIGHT_ROLES}


def manager_project(
    request: Request, pk: int, *, write: bool = False, missing: str = ""
) -> Project:
    """The project, for its managers (and, to read, platform researchers and admins). Someone
    who cannot see the project at all gets the answer a missing one gives (`missing`)."""
    project = get_object_or_404(Project, pk=pk)
    role = selectors.role_in(request.user, project)
    if role in MANAGER_ROLES:
        return project
    sees_all = has_global_role(request.user, Role.RESEARCHER, Role.ADMIN)
    if not write and sees_all:
        return project
    if role is None and not sees_all:
        raise NotFound(missing or f"project {pk} does not exist")
    raise PermissionDenied("this is for the project's reviewers and admins")


class ProjectQualityMixin:
    """Quality-control actions on /api/projects/{id}/..."""

    @extend_schema(
        responses=inline_serializer(
            "Agreement", {"dimensions": serializers.DictField(child=DimensionAgreementSerializer())}
        )
    )
    @action(detail=True, methods=["get"])
    def agreement(self, request: Request, pk: int | None = None) -> Response:
        """Agreement per dimension over the production ratings (cached; see refresh/)."""
        project = manager_project(request, pk)
        quality_services.ensure_statistics(project)
        stats = selectors.project_stats(project)
        return Response(
            {
                "dimensions": stats.agreement,
                "n_ratings": stats.n_ratings,
                "computed_at": stats.figures_computed_at or stats.computed_at,
                "consensus_computed_at": stats.consensus_computed_at,
                "n_ratings_now": selectors.production_rating_count(project),
                "stale_images": selectors.stale_image_count(project),
                "screening": stats.screening,
            }
        )

    @extend_schema(responses=RaterEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def raters(self, request: Request, pk: int | None = None) -> Response:
        project = manager_project(request, pk)
        return Response(RaterEntrySerializer(selectors.rater_table(project), many=True).data)

    @extend_schema(request=RaterStatusSerializer, responses=RaterEntrySerializer)
    @action(detail=True, methods=["post"], url_path=r"raters/(?P<username>[^/]+)/status")
    def rater_status(self, request: Request, pk: int | None = None, username: str = "") -> Response:
        """Certify, revoke, pause or resume a rater by hand (audited)."""
        return self._rater_decision(
            request, pk, username, RaterStatusSerializer, "status",
            quality_services.set_rater_status,
        )

    @extend_schema(request=RaterExclusionSerializer, responses=RaterEntrySerializer)
    @action(detail=True, methods=["post"], url_path=r"raters/(?P<username>[^/]+)/exclusion")
    def rater_exclusion(
        self, request: Request, pk: int | None = None, username: str = ""
    ) -> Response:
        """Include or exclude a rater from the consensus by hand, or undo (audited)."""
        return self._rater_decision(
            request, pk, username, RaterExclusionSerializer, "decision",
            quality_services.set_rater_exclusion,
        )

    def _rater_decision(self, request, pk, username, serializer_class, field, apply) -> Response:
        """A manager's decision about one rater; the answer is the rater's row afterwards."""
        project = manager_project(request, pk, write=True)
        body = validated(serializer_class, request.data)
        user = get_object_or_404(get_user_model(), username=username)
        apply(
            project,
            user,
            body[field],
            actor=request.user,
            reason=body.get("reason", ""),
        )
        entry = next(e for e in selectors.rater_table(project) if e["username"] == username)
        return Response(RaterEntrySerializer(entry).data)

    @extend_schema(responses=ConsensusEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def consensus(self, request: Request, pk: int | None = None) -> Response:
        """Consensus labels, refreshed first where ratings arrived since (stale images only)."""
        project = manager_project(request, pk)
        quality_services.ensure_fresh(project, figures=False)
        page = self.paginate_queryset(selectors.consensus_labels(project))
        entries = selectors.consensus_entries(page)
        return self.get_paginated_response(ConsensusEntrySerializer(entries, many=True).data)

    @extend_schema(
        request={"multipart/form-data": ReferenceUploadSerializer},
        responses={
            200: inline_serializer(
                "ReferenceResult",
                {"set": serializers.IntegerField(), "errors": serializers.ListField()},
            )
        },
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def references(self, request: Request, pk: int | None = None) -> Response:
        """Upload gold, training or test items (the CSV of `manage.py set_gold`)."""
        project = manager_project(request, pk, write=True)
        body = validated(ReferenceUploadSerializer, request.data)
        try:
            text = body["file"].read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise WorkflowError("the file is not UTF-8 text") from None
        rows, errors = quality_services.parse_reference_csv(
            text, selectors.reference_candidates(request.user, project)
        )
        count, errors = quality_services.set_references(
            project, rows, ItemKind(body["kind"]), actor=request.user,
            refused=errors,
        )
        return Response(
            {"set": count, "errors": errors}, status=status.HTTP_200_OK if not errors else 207
        )

    @extend_schema(request=None, responses={202: OpenApiResponse(description="Queued.")})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: int | None = None) -> Response:
        """Recompute rater figures, consensus and agreement (a Celery task)."""
        project = manager_project(request, pk, write=True)
        result = refresh_project_statistics.delay(project.pk, figures=True)
        return Response({"task": result.id}, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"])
    def reviews(self, request: Request, pk: int | None = None) -> Response:
        """The review queue (status=open by default), each with the raters' scores side by side."""
        project = manager_project(request, pk, write=True)
        # The entries list every rating: their consensus is brought up to date first (the
        # stale images only); one that still lags (a rating just now) is marked stale.
        quality_services.ensure_fresh(project, figures=False)
        wanted = request.query_params.get("status", "open")
        page = self.paginate_queryset(selectors.review_queue(project, wanted))
        return self.get_paginated_response(selectors.review_entries(page))


class ReviewViewSet(viewsets.GenericViewSet):
    queryset = ReviewItem.objects.none()

    @extend_schema(request=ReviewDecisionSerializer, responses={200: dict})
    @action(detail=True, methods=["post"])
    def decision(self, request: Request, pk: int | None = None) -> Response:
        missing = f"review {pk} does not exist"  # for those outside its project too
        review = ReviewItem.objects.filter(pk=pk).first()
        if review is None:
            raise NotFound(missing)
        manager_project(request, review.project_id, write=True, missing=missing)
        body = validated(ReviewDecisionSerializer, request.data)
        review = review_services.decide(
            review,
            request.user,
            body["decision"],
            final_scores=body.get("final_scores"),
            note=body.get("note", ""),
        )
        return Response(selectors.review_entries([review])[0])
