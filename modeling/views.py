"""The researcher's models page: the registry, scoring an uploaded image, batch scoring jobs,
starting a training run and following it (jobs and runs cancellable). A rendered shell with a
JSON config; static/js/models.js fills it from the REST API (modeling/api.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from curation.access import has_global_role
from humanbeauty.roles import Role
from humanbeauty.standard import DIMENSIONS, LEVEL_THRESHOLDS, LEVELS

from . import serving_selectors as selectors


def _pattern(name: str, kwarg: str) -> str:
    stand_in = "999999999"
    return reverse(name, kwargs={kwarg: stand_in}).replace(stand_in, "{id}")


@login_required
@ensure_csrf_cookie
def models_page(request: HttpRequest) -> HttpResponse:
    if not has_global_role(request.user, Role.RESEARCHER, Role.ADMIN):
        raise PermissionDenied("the models page is for researchers and admins")
    config = {
        "urls": {
            "models": reverse("model-version-list"),
            "activate": _pattern("model-version-activate", "version"),
            "score": reverse("api-score"),
            "training_runs": reverse("training-run-list"),
            "training_run": _pattern("training-run-detail", "pk"),
            "training_run_cancel": _pattern("training-run-cancel", "pk"),
            "scoring_jobs": reverse("scoring-job-list"),
            "scoring_job_cancel": _pattern("scoring-job-cancel", "pk"),
            "login": reverse("login"),
        },
        "dimensions": [
            {"key": d.key, "name": d.name, "group": d.group, "parent": not d.is_leaf}
            for d in DIMENSIONS
        ],
        "levels": list(LEVELS),
        "thresholds": list(LEVEL_THRESHOLDS),
        "releases": [
            {"id": r.pk, "label": f"{r.name} {r.version}"} for r in selectors.ready_releases()
        ],
        "sources": selectors.source_names(),
    }
    return render(request, "modeling/models.html", {"config": config})
