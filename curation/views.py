"""Image files, served only to users who may see them (session or token auth), and the
curator pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request

from core.access import has_global_role
from core.web import object_urls, url_template
from humanbeauty.roles import Role

from .access import may_view_image
from .models import FilterJob, Image, Source
from .services.contact_sheets import SHEET_LIMIT
from .services.jobs import STAGES, default_config
from .sources import PARSERS, sample

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


@extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
@api_view(["GET"])
def image_file(request: Request, pk: int) -> FileResponse:
    image = get_object_or_404(Image, pk=pk)
    if not may_view_image(request.user, image):
        # 404, not 403: whether an image exists is itself not for everyone to know.
        raise Http404("no such image")
    response = FileResponse(
        image.file.open("rb"),
        content_type=CONTENT_TYPES.get(image.format, "application/octet-stream"),
    )
    # Private caching lets the rater page preload the next image and show it instantly.
    response["Cache-Control"] = "private, max-age=3600"
    response["ETag"] = f'"{image.sha256}"'
    return response


# --- curator pages: sources, a source's jobs, a job's progress and results --------------------
#
# Rendered shells with a JSON config; `static/js/curation*.js` fill them from the REST API
# (curation/jobs_api.py), as the annotation pages do. Curators and admins act, researchers look.


def _curation_roles(request: HttpRequest) -> bool:
    """May the user see the curator pages (403 if not), and may they change things?"""
    if not has_global_role(request.user, Role.CURATOR, Role.RESEARCHER, Role.ADMIN):
        raise PermissionDenied("the curation pages are for curators, researchers and admins")
    return has_global_role(request.user, Role.CURATOR, Role.ADMIN)


# Apps above curation add links to its pages (annotation: "make a rating project from this
# job or source"); curation cannot name their URLs without reaching up the chain.
PageLinks = Callable[[int], dict[str, str]]
_page_links: dict[str, list[PageLinks]] = {"source": [], "job": []}


def register_page_links(page: str, links: PageLinks) -> None:
    """Add `links(pk) -> {key: url}` to the config of a curation page ("source" or "job")."""
    if links not in _page_links[page]:
        _page_links[page].append(links)


def page_links(page: str, pk: int) -> dict[str, str]:
    return {key: url for links in _page_links[page] for key, url in links(pk).items()}


def _common_urls() -> dict[str, str]:
    return {
        "home": reverse("curation-home"),
        "source_page": url_template("curation-source"),
        "job_page": url_template("curation-job"),
        "login": reverse("login"),
    }


def sample_import() -> dict[str, object] | None:
    """The import form's values for the demo's sample dataset, or None when it is not there."""
    if not settings.IMPORT_ROOTS:
        return None
    path = Path(settings.IMPORT_ROOTS[0]) / sample.MANIFEST
    if not path.is_file():
        return None
    return {"kind": "manifest", "path": str(path), "name": sample.NAME, "scale": list(sample.SCALE)}


@login_required
@ensure_csrf_cookie
def curation_home(request: HttpRequest) -> HttpResponse:
    can_write = _curation_roles(request)
    config = {
        "can_write": can_write,
        "kinds": [
            {
                "kind": p.kind,
                "title": p.title,
                "layout": p.layout,
                "scale": list(p.default_scale) if p.default_scale else None,
            }
            for p in PARSERS.values()
        ],
        "import_roots": [str(r) for r in settings.IMPORT_ROOTS],
        "sample": sample_import(),
        "urls": {
            **_common_urls(),
            "sources": reverse("source-list"),
            "source": url_template("source-detail"),
            "source_import": url_template("source-import-detail"),
            "source_import_cancel": url_template("source-import-cancel"),
        },
    }
    return render(
        request,
        "curation/sources.html",
        {"can_write": can_write, "kinds": config["kinds"], "config": config},
    )


@login_required
@ensure_csrf_cookie
def curation_source(request: HttpRequest, pk: int) -> HttpResponse:
    can_write = _curation_roles(request)
    source = get_object_or_404(Source, pk=pk)
    defaults = default_config()
    clip_checkpoint = defaults["clip"]["checkpoint"]
    config = {
        "can_write": can_write,
        "source": {"id": source.pk, "name": source.name},
        "defaults": {
            "chunk_size": defaults["chunk_size"],
            "min_short_side": defaults["min_short_side"],
            "near_dup_k": defaults["near_dup_k"],
            "faces": defaults["faces"]["enabled"],
            "clip_available": bool(clip_checkpoint) and Path(clip_checkpoint).is_file(),
        },
        "urls": {
            **_common_urls(),
            **object_urls(source.pk, source="source-detail"),
            "jobs": reverse("job-list") + f"?source={source.pk}",
            "start": reverse("job-list"),
            **page_links("source", source.pk),
        },
    }
    return render(
        request,
        "curation/source.html",
        {
            "can_write": can_write,
            "source": source,
            "defaults": config["defaults"],
            "config": config,
            "crumbs": [{"label": source.name}],
        },
    )


@login_required
@ensure_csrf_cookie
def curation_job(request: HttpRequest, pk: int) -> HttpResponse:
    can_write = _curation_roles(request)
    job = get_object_or_404(FilterJob.objects.select_related("source"), pk=pk)
    config = {
        "can_write": can_write,
        "job": {"id": job.pk, "source": job.source_id, "source_name": job.source.name},
        "stages": list(STAGES),
        "sheet_limit": SHEET_LIMIT,
        "urls": {
            **_common_urls(),
            **object_urls(
                job.pk,
                job="job-detail",
                cancel="job-cancel",
                report="job-report",
                decisions="job-decisions",
                sheet="job-contact-sheet",
            ),
            "override": url_template("decision-override"),
            "source_page": reverse("curation-source", args=[job.source_id]),
            **page_links("job", job.pk),
        },
    }
    return render(
        request,
        "curation/job.html",
        {
            "can_write": can_write,
            "job": job,
            "config": config,
            "crumbs": [
                {"label": job.source.name, "url": config["urls"]["source_page"]},
                {"label": f"Job {job.pk}"},
            ],
        },
    )
