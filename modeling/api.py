"""Thin DRF views over the model registry, scoring and training (researchers and admins).

The work is in `modeling.services` (registry, scoring, training); refusals are their
DomainErrors, answered as `{"detail", "code"}` with their status: 404 unknown version, 409 no
active model, 400 a directory that does not load, 503 a registered model that no longer does.
"""

from __future__ import annotations

import posixpath

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import RolePermissionMixin
from core.web import LongJobViewSet, validated
from curation.imaging.validate import InvalidImage
from curation.models import Source
from curation.services.images import check_upload_size
from humanbeauty.errors import DomainError
from humanbeauty.roles import Role

from . import selectors
from .models import Release
from .serializers import (
    ErrorSerializer,
    ModelRegisterSerializer,
    ModelVersionSerializer,
    ScoreRequestSerializer,
    ScoreResultSerializer,
    ScoringJobCreateSerializer,
    ScoringJobSerializer,
    TrainingRunCreateSerializer,
    TrainingRunSerializer,
)
from .services import registry, scoring, training

ROLES = (Role.RESEARCHER, Role.ADMIN)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


def _release(pk: int | None) -> Release | None:
    if pk is None:
        return None
    release = Release.objects.filter(pk=pk).first()
    if release is None:
        raise DomainError(f"no release with id {pk}")
    return release


class ResearcherMixin(RolePermissionMixin):
    """Researchers and admins, for reads and writes alike."""

    read_roles = write_roles = ROLES


@extend_schema_view(
    list=extend_schema(summary="The model registry, the active version first."),
    retrieve=extend_schema(summary="One registered version.", responses={
        200: ModelVersionSerializer, 404: _error("No such version.")}),
)
class ModelVersionViewSet(
    ResearcherMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = ModelVersionSerializer
    lookup_field = "version"
    lookup_value_regex = r"[^/]+"

    def get_queryset(self):
        return selectors.model_versions()

    def get_object(self):
        return registry.resolve_version(self.kwargs["version"])

    @extend_schema(
        summary="Register a model directory as a version.",
        request=ModelRegisterSerializer,
        responses={
            201: ModelVersionSerializer,
            400: _error("Not a loadable model directory (the loader's message), or a path "
                        "outside MODEL_ROOTS."),
            409: _error("The version is already registered."),
        },
        description="The directory is loaded before it is registered: a missing or "
        "incompatible checkpoint is refused with the reason, never replaced by random weights.",
    )
    def create(self, request: Request) -> Response:
        d = validated(ModelRegisterSerializer, request.data)
        model = registry.register_version(
            d["version"],
            d["checkpoint_path"],
            backbone=d.get("backbone", ""),
            release=_release(d.get("release")),
            metrics=d.get("metrics"),
            notes=d.get("notes", ""),
            activate=d.get("activate", False),
            user=request.user,
            roots=settings.MODEL_ROOTS,
        )
        return Response(ModelVersionSerializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Make this version the active one (the others become inactive).",
        request=None,
        responses={200: ModelVersionSerializer, 404: _error("No such version.")},
    )
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, version: str) -> Response:
        return Response(ModelVersionSerializer(registry.activate_version(version)).data)


class ScoreView(ResearcherMixin, APIView):
    """Score one uploaded image with the active model or a named version."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Score one image: 12 scores, their levels and the MetaVoter overall.",
        request={"multipart/form-data": ScoreRequestSerializer},
        responses={
            200: ScoreResultSerializer,
            400: _error("Not a sound image (corrupt, not an image, decompression bomb)."),
            404: _error("No such model version."),
            409: _error("No model is active (and none was named)."),
            413: _error("The file is larger than MAX_UPLOAD_BYTES."),
            503: _error("The model is registered but its files no longer load."),
        },
        description="The image gets the same full-decode validation as every import.",
    )
    def post(self, request: Request) -> Response:
        body = validated(ScoreRequestSerializer, request.data)
        upload = body["image"]
        try:
            check_upload_size(upload.size)
        except InvalidImage as exc:
            return Response(
                {"detail": str(exc), "code": exc.reason},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            image = scoring.decode_image(upload)
        except InvalidImage as exc:
            return Response(
                {"detail": str(exc), "code": exc.reason}, status=status.HTTP_400_BAD_REQUEST
            )
        version, results = registry.score_images(body.get("model") or None, [image])
        return Response(scoring.payload(version.version, results[0]))


@extend_schema_view(
    list=extend_schema(summary="Batch scoring jobs, newest first."),
    retrieve=extend_schema(summary="A scoring job: status, progress {done, total, failed}."),
)
class ScoringJobViewSet(ResearcherMixin, LongJobViewSet):
    serializer_class = ScoringJobSerializer

    def get_queryset(self):
        return selectors.scoring_jobs()

    @extend_schema(
        summary="Score a release's images or the pool (a Celery task).",
        request=ScoringJobCreateSerializer,
        responses={
            201: ScoringJobSerializer,
            400: _error("Nothing to score, unknown release or source."),
            404: _error("No such model version."),
            409: _error("No model is active, or the release is not ready."),
        },
    )
    def create(self, request: Request) -> Response:
        d = validated(ScoringJobCreateSerializer, request.data)
        source = None
        if d.get("source"):
            source = Source.objects.filter(name=d["source"]).first()
            if source is None:
                raise DomainError(f"no source named '{d['source']}'")
        job = scoring.create_scoring_job(
            release=_release(d.get("release")),
            source=source,
            model=d.get("model") or None,
            fmt=d["format"],
            chunk_size=d.get("chunk_size"),
            user=request.user,
        )
        job.refresh_from_db()  # in-process (eager) runs have finished it already
        return Response(ScoringJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The results file (JSONL or CSV) of a finished job.",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: int | None = None) -> FileResponse:
        job = self.get_object()
        if not job.output_path:
            raise Http404("the job has no results file yet")
        # Streamed from the media storage (MEDIA_ROOT, or the bucket the worker wrote it to).
        if not default_storage.exists(job.output_path):
            raise Http404("the results file is gone")
        content_type = "text/csv" if job.format == "csv" else "application/x-ndjson"
        return FileResponse(
            default_storage.open(job.output_path, "rb"),
            as_attachment=True,
            filename=posixpath.basename(job.output_path),
            content_type=content_type,
        )


@extend_schema_view(
    list=extend_schema(summary="Training runs, newest first."),
    retrieve=extend_schema(summary="A training run: status, progress, log tail, its model."),
)
class TrainingRunViewSet(ResearcherMixin, LongJobViewSet):
    serializer_class = TrainingRunSerializer

    def get_queryset(self):
        return selectors.training_runs()

    @extend_schema(
        summary="Train on a release (`python -m modeling.train` in a Celery task).",
        request=TrainingRunCreateSerializer,
        responses={
            201: TrainingRunSerializer,
            400: _error("Bad data directory, backbone, CLIP or settings."),
            409: _error("The version name is taken."),
        },
    )
    def create(self, request: Request) -> Response:
        d = validated(TrainingRunCreateSerializer, request.data)
        run = training.create_training_run(
            release=_release(d.get("release")),
            data=d.get("data", ""),
            backbone=d["backbone"],
            max_steps=d.get("max_steps"),
            clip_model=d.get("clip_model", ""),
            clip_checkpoint=d.get("clip_checkpoint", ""),
            overrides=d.get("settings"),
            version=d.get("version", ""),
            activate=d.get("activate", False),
            user=request.user,
        )
        run.refresh_from_db()
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)
