"""REST API for curators: sources, filter jobs, their decisions, reports and contact sheets.

Curators and admins write (import, start, cancel, override); researchers read; everyone else
gets 403. The views are thin: imports and jobs are `services.sources` / `services.jobs`, reads
are `selectors`, and refusals are the services' DomainErrors (400/409 with their message).
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpResponseNotModified,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from core import access
from core.web import LongJobViewSet, validated
from humanbeauty.errors import DomainError
from humanbeauty.roles import Role

from . import selectors
from .models import Decision, FilterJob, Source, SourceImport
from .serializers import (
    ClusterChangeSerializer,
    DecisionSerializer,
    JobCreateSerializer,
    JobDetailSerializer,
    JobSerializer,
    JobSummarySerializer,
    OverrideSerializer,
    SourceImportJobSerializer,
    SourceImportResultSerializer,
    SourceImportSerializer,
    SourceSerializer,
    SourceTermsSerializer,
)
from .services.contact_sheets import SHEET_LIMIT, contact_sheet
from .services.jobs import override_decision, start_job
from .services.provenance import set_source_terms
from .services.sources import delete_source, start_import, wait_for_import

READ_ROLES = (Role.CURATOR, Role.RESEARCHER, Role.ADMIN)
WRITE_ROLES = (Role.CURATOR, Role.ADMIN)
MAX_ERRORS_SHOWN = 50
REASON_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class ImportFailed(DomainError, code="import_failed"):
    """An import the worker refused as a whole (bad label file, name taken...)."""


class BadRequest(DomainError):
    """A refusal answered as {"detail", "code"}, like the services' own."""


class JsonLinesRenderer(BaseRenderer):
    """`?format=jsonl`: the report streams its own lines; errors still come as one JSON line."""

    media_type = "application/x-ndjson"
    format = "jsonl"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return (json.dumps(data) + "\n").encode() if data is not None else b""


class RolePermissionMixin(access.RolePermissionMixin):
    """Reads for READ_ROLES; the actions in `write_actions` for WRITE_ROLES only."""

    read_roles, write_roles = READ_ROLES, WRITE_ROLES


class SourceViewSet(
    RolePermissionMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Sources (public datasets and manifests) with their counts; curators import new ones and
    delete one nothing uses yet (a failed or mistaken import)."""

    serializer_class = SourceSerializer
    filterset_fields = ["kind", "name"]
    write_actions = frozenset({"create", "destroy", "partial_update"})

    @extend_schema(request=SourceTermsSerializer, responses={200: SourceSerializer})
    def partial_update(self, request: Request, pk: int | None = None) -> Response:
        """Set or change the source's provenance (origin, licence, consent_basis); a field
        left out keeps its value, an empty one clears it."""
        body = validated(SourceTermsSerializer, request.data)
        set_source_terms(self.get_object(), **body)
        return Response(SourceSerializer(self.get_queryset().get(pk=pk)).data)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="In use: kept.")})
    def destroy(self, request: Request, pk: int | None = None) -> Response:
        delete_source(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_queryset(self):
        return selectors.sources_with_counts()

    @extend_schema(
        request=SourceImportSerializer,
        responses={
            201: SourceImportResultSerializer,
            200: OpenApiResponse(
                SourceImportResultSerializer, description="Re-import of an existing source."
            ),
            202: OpenApiResponse(
                SourceImportJobSerializer,
                description="The import, queued or running on a worker: with `background`, "
                "or when it did not finish within IMPORT_WAIT_SECONDS. Follow it under "
                "/api/source-imports/{id}/.",
            ),
            400: OpenApiResponse(description="Path outside IMPORT_ROOTS, bad label file..."),
        },
        description="Parse a dataset's labels (`import_source KIND PATH --name NAME`) and store "
        "its records. The import always runs on a worker; without `background` the request "
        "waits up to IMPORT_WAIT_SECONDS for it and answers its outcome. Files are read only "
        "inside IMPORT_ROOTS; records outside them are refused one by one and listed in "
        "`errors`. Every import is recorded under /api/source-imports/.",
    )
    def create(self, request: Request) -> Response:
        data = validated(SourceImportSerializer, request.data)
        existed = Source.objects.filter(name=data["name"]).exists()
        job = start_import(
            data["kind"],
            data["path"],
            data["name"],
            scale=tuple(data["scale"]) if data.get("scale") else None,
            priority=data.get("priority"),
            user=request.user,
        )  # a path outside the import roots is refused here: the handler says why
        wait_s = 0 if data["background"] else settings.IMPORT_WAIT_SECONDS
        job = wait_for_import(job.pk, timeout_s=wait_s)
        if job.is_live or data["background"]:
            return Response(SourceImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
        if job.source_id is None:  # refused as a whole (bad label file, name taken...)
            raise ImportFailed(job.error or f"import {job.pk} was {job.status}")
        source = self.get_queryset().get(pk=job.source_id)
        body = {
            "source": SourceSerializer(source).data,
            "created": job.created,
            "updated": job.updated,
            "refused": job.refused,
            "errors": job.errors[:MAX_ERRORS_SHOWN],
            "status": job.status,
            "error": job.error,
        }
        return Response(body, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class SourceImportViewSet(RolePermissionMixin, LongJobViewSet):
    """Source imports, newest first: status, live progress {done, total} and outcome."""

    serializer_class = SourceImportJobSerializer
    filterset_fields = ["status", "source"]
    write_actions = frozenset({"cancel"})

    def get_queryset(self):
        return SourceImport.objects.select_related("created_by").order_by("-pk")


class JobViewSet(RolePermissionMixin, LongJobViewSet):
    """Filter jobs: start one on a source, follow its progress, cancel it, read its results."""

    serializer_class = JobSerializer
    filterset_fields = ["source", "status"]
    write_actions = frozenset({"create", "cancel"})

    def get_queryset(self):
        if self.action == "list":
            return selectors.jobs_with_counts().order_by("-pk")
        # The detail counts for itself (one GROUP BY, cheap enough to poll every second).
        return FilterJob.objects.select_related("source", "created_by").order_by("-pk")

    def get_serializer_class(self):
        if self.action in ("retrieve", "create", "cancel"):
            return JobDetailSerializer
        return JobSerializer

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except (NotFound, Http404):
            # An unknown `?format=` (the report's own parameter): the action answers 400.
            renderer = JSONRenderer()
            return renderer, renderer.media_type

    def _detail(self, job: FilterJob, code: int = status.HTTP_200_OK) -> Response:
        job = self.get_queryset().get(pk=job.pk)
        return Response(JobDetailSerializer(job, context={"request": self.request}).data, code)

    @extend_schema(
        request=JobCreateSerializer,
        responses={201: JobDetailSerializer, 400: OpenApiResponse(description="Bad settings.")},
        description="Start a filter job on a source with settings over the defaults (a "
        "snapshot is kept). A job asking for CLIP without a checkpoint is refused at once.",
    )
    def create(self, request: Request) -> Response:
        body = validated(JobCreateSerializer, request.data)
        job = start_job(
            body["source"],
            overrides=body["config"],
            user=request.user,
        )
        return self._detail(job, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=["json", "jsonl"],
                description="json: the summary; jsonl: one line per image (streamed).",
            )
        ],
        responses={
            (200, "application/json"): JobSummarySerializer,
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR,
                description='One JSON object a line: {"path", "decision", "reasons", "cluster"}',
            ),
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, JsonLinesRenderer])
    def report(self, request: Request, pk: int | None = None):
        """The job's report, as `python manage.py job_report JOB_ID --format json|jsonl`."""
        job = self.get_object()
        fmt = request.query_params.get("format", "json")
        if fmt == "json":
            summary = selectors.job_summary(job)
            summary.pop("progress", None)
            return Response(summary)
        if fmt != "jsonl":
            raise BadRequest("format must be json or jsonl")
        lines = (json.dumps(line) + "\n" for line in selectors.job_lines(job))
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.jsonl"'
        return response

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "decision", str, enum=list(selectors.FINAL_KINDS), description="Final decision."
            ),
            OpenApiParameter("reason", str, description="Decisions listing this reason."),
        ],
        responses=DecisionSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def decisions(self, request: Request, pk: int | None = None) -> Response:
        """The job's decisions in item order with image, measurements and any override."""
        job = self.get_object()
        decision = request.query_params.get("decision") or None
        reason = request.query_params.get("reason") or None
        if decision and decision not in selectors.FINAL_KINDS:
            raise BadRequest(f"decision must be one of {', '.join(selectors.FINAL_KINDS)}")
        if reason and not REASON_NAME.match(reason):
            raise BadRequest(f"not a reason name: {reason!r}")
        qs = selectors.decisions_for(job, decision=decision, reason=reason)
        page = self.paginate_queryset(qs)
        data = DecisionSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(responses=ClusterChangeSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="cluster-changes", filter_backends=[])
    def cluster_changes(self, request: Request, pk: int | None = None) -> Response:
        """Representatives displaced by later images that changed this job's decisions
        (newest first, at most 500): the displaced image lost its acceptance, the new one
        lost its near_duplicate reason."""
        job = self.get_object()
        rows = selectors.cluster_changes(job=job, limit=500)
        return Response(ClusterChangeSerializer(rows, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "group",
                str,
                description="accepted, rejected, error, or a reason name (default accepted).",
            ),
            OpenApiParameter(
                "page", int, description=f"1-based; {SHEET_LIMIT} thumbnails a sheet."
            ),
        ],
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            304: OpenApiResponse(description="Not modified (If-None-Match)."),
        },
    )
    @action(detail=True, methods=["get"], url_path="contact-sheet")
    def contact_sheet(self, request: Request, pk: int | None = None):
        """A PNG contact sheet of one group's images: thumbnails with path and reasons."""
        job = self.get_object()
        group = request.query_params.get("group", "accepted")
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            raise BadRequest("page must be a whole number") from None
        sheet = contact_sheet(job, group, page=page)
        etag = f'"{sheet.etag}"'
        if etag in request.headers.get("If-None-Match", ""):
            return HttpResponseNotModified(headers={"ETag": etag})
        response = FileResponse(sheet.path.open("rb"), content_type="image/png")
        response["ETag"] = etag
        # The same URL shows new decisions as they come: revalidate (cheap, by ETag) each time.
        response["Cache-Control"] = "private, no-cache"
        response["X-Sheet-Count"] = str(sheet.count)
        response["X-Sheet-Pages"] = str(sheet.pages)
        return response


class DecisionViewSet(RolePermissionMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """One decision; curators override it with a reason (the computed decision is kept)."""

    serializer_class = DecisionSerializer
    write_actions = frozenset({"override"})

    def get_queryset(self):
        return Decision.objects.select_related("item", "item__image", "overridden_by")

    @extend_schema(request=OverrideSerializer, responses={200: DecisionSerializer})
    @action(detail=True, methods=["post"])
    def override(self, request: Request, pk: int | None = None) -> Response:
        """Accept or reject an image against the job's decision; the reason is required."""
        decision = self.get_object()
        body = validated(OverrideSerializer, request.data)
        override_decision(
            decision, body["decision"], body["reason"], request.user
        )
        decision = get_object_or_404(self.get_queryset(), pk=decision.pk)
        return Response(DecisionSerializer(decision, context={"request": request}).data)
