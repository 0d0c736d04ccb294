"""Thin DRF views for releases: list, build, describe and download (researchers and admins)."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.access import global_role_permission
from core.web import LongJobViewSet, validated
from humanbeauty.paths import resolve_inside
from humanbeauty.roles import Role

from .models import Release, ReleaseStatus
from .release import withdrawal
from .release.store import ReleaseFiles, files_of
from .selectors import release_diff
from .serializers import ReleaseBuildSerializer, ReleaseSerializer
from .services.releases import ReleaseError, create_release, release_files

CHUNK = 1 << 20


def tar_stream(root: Path | ReleaseFiles) -> Iterator[bytes]:
    """An uncompressed tar of the release at `root` (its folder, or its files in the storage),
    produced file by file in 1 MiB pieces: a release of any size is streamed without being
    built in memory or on disk. Files withdrawn on a takedown request (its `withdrawn.jsonl`,
    `modeling.release.withdrawal`) are left out: a loose image file whole, a WebDataset
    sample from its shard, which is streamed without it."""
    files = files_of(root)
    whole, samples = withdrawal.omissions(files)
    for stored in files.listing():
        rel = stored.path
        if rel in whole or rel == withdrawal.NOTICE_TEMP:
            continue
        info = tarfile.TarInfo(f"{files.name}/{rel}")
        if rel in samples:
            size, pieces = withdrawal.filtered_shard(files, rel, samples[rel])
        else:
            size, pieces = stored.size, _pieces(files, rel)
        info.size, info.mtime, info.mode = size, int(stored.mtime), 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        yield from pieces
        if size % tarfile.BLOCKSIZE:
            yield b"\0" * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _pieces(files: ReleaseFiles, rel: str) -> Iterator[bytes]:
    with files.open(rel) as fh:
        while piece := fh.read(CHUNK):
            yield piece


def release_dir(out: str) -> Path:
    """Where a release a request asks for may be written: a new folder under RELEASE_ROOT (a
    relative `out` is taken from there), checked by the platform's one path check."""
    root = Path(settings.RELEASE_ROOT).resolve()
    path = resolve_inside(out, [root], base=root, setting="RELEASE_ROOT")
    if path == root:
        raise ReleaseError("name a folder inside RELEASE_ROOT for the release, not the root")
    return path


class ReleaseViewSet(LongJobViewSet):
    queryset = Release.objects.order_by("name", "created_at")
    serializer_class = ReleaseSerializer
    permission_classes = [global_role_permission(Role.RESEARCHER, Role.ADMIN)]
    filterset_fields = ["name", "status"]

    @extend_schema(request=ReleaseBuildSerializer, responses={202: ReleaseSerializer})
    def create(self, request: Request) -> Response:
        """Queue a release build (a Celery task); poll the release for its status."""
        d = validated(ReleaseBuildSerializer, request.data)
        release = create_release(
            d["name"],
            d["version"],
            # With a remote media storage the release is kept under releases/<id>/ of it.
            release_dir(d["out"]) if d.get("out") else None,
            projects=d["projects"],
            sources=d["sources"],
            seed=d["seed"],
            split=d.get("split"),
            formats=d["formats"],
            images=d["images"],
            max_side=d.get("max_side"),
            min_raters=d["min_raters"],
            max_disagreement=d.get("max_disagreement"),
            license=d["license"],
            shard_size=d["shard_size"],
            na=d["na"],
            contact=d["contact"],
            licence=d["licence"],
            user=request.user,
        )
        release.refresh_from_db()
        return Response(ReleaseSerializer(release).data, status=status.HTTP_202_ACCEPTED)

    def _ready(self) -> Release:
        release = self.get_object()
        if release.status != ReleaseStatus.READY:
            raise Http404(f"release {release.name} {release.version} is {release.status}")
        return release

    @extend_schema(
        parameters=[OpenApiParameter("against", int, required=True,
                                     description="the id of the release to compare with")],
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, pk: int | None = None) -> Response:
        """This release against another: images added, removed, withheld by the version
        promise and moved between splits, counted and listed."""
        release = self.get_object()
        raw = request.query_params.get("against", "")
        if not raw.isdigit():
            raise ReleaseError("give ?against=ID, the id of the release to compare with")
        against = self.get_queryset().filter(pk=int(raw)).first()
        if against is None:
            raise Http404(f"no release {raw}")
        return Response(release_diff(release=release, against=against))

    @extend_schema(responses={(200, "application/x-tar"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: int | None = None) -> StreamingHttpResponse:
        """The whole release directory as a tar, streamed (from the storage where it is kept
        there)."""
        release = self._ready()
        files = release_files(release)
        response = StreamingHttpResponse(tar_stream(files), content_type="application/x-tar")
        response["Content-Disposition"] = (
            f'attachment; filename="{release.name}-{release.version}.tar"'
        )
        return response

    @extend_schema(responses={(200, "text/html"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def datasheet(self, request: Request, pk: int | None = None) -> FileResponse:
        release = self._ready()
        files = release_files(release)
        if not files.exists("datasheet.html"):
            raise Http404("this release has no datasheet")
        return FileResponse(files.open("datasheet.html"), content_type="text/html; charset=utf-8")
