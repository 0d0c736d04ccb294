"""Health endpoints for load balancers and orchestrators: unauthenticated, and revealing
nothing beyond which of the platform's parts answers."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import health


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and answers (no database, no broker: a liveness probe)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """The database, the broker and the media storage all answer (200), or 503 with which of
    them did not."""
    checks = health.readiness()
    ready = all(v == health.OK for v in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status=200 if ready else 503)
