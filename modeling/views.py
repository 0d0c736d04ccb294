"""The researcher's pages. Models: the registry, scoring an uploaded image, batch scoring jobs,
starting a training run and following it (jobs and runs cancellable), a rendered shell with a
JSON config that static/js/models.js fills from the REST API (modeling/api.py). Releases:
every release with its status, counts and datasheet."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation.selectors import projects_for
from core.access import role_required
from core.web import url_template
from humanbeauty.roles import Role
from humanbeauty.standard import DIMENSIONS, LEVEL_THRESHOLDS, LEVELS

from . import selectors
from .release.config import FORMATS, NA_POLICIES, SPLITS


@role_required(Role.RESEARCHER, Role.ADMIN, why="the models page is for researchers and admins")
@ensure_csrf_cookie
def models_page(request: HttpRequest) -> HttpResponse:
    config = {
        "urls": {
            "models": reverse("model-version-list"),
            "activate": url_template("model-version-activate", "version"),
            "score": reverse("api-score"),
            "training_runs": reverse("training-run-list"),
            "training_run": url_template("training-run-detail", "pk"),
            "training_run_cancel": url_template("training-run-cancel", "pk"),
            "scoring_jobs": reverse("scoring-job-list"),
            "scoring_job_cancel": url_template("scoring-job-cancel", "pk"),
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


# The release form's plain inputs: (field, element id, label, optional, input attributes).
RELEASE_INPUTS = [
    {"name": name, "id": id_, "label": label, "optional": optional, "attrs": attrs}
    for name, id_, label, optional, attrs in (
        ("max_side", "rel-max-side", "Max side (px)", False,
         {"type": "number", "min": 16, "max": 65535, "step": 1, "placeholder": "as is"}),
        ("min_raters", "rel-min-raters", "Min raters", False,
         {"type": "number", "min": 1, "max": 1000, "step": 1, "value": 1}),
        ("max_disagreement", "rel-max-dis", "Max disagreement", False,
         {"type": "number", "min": 0, "step": "any", "placeholder": "any"}),
        ("seed", "rel-seed", "Seed", False, {"type": "number", "step": 1, "value": 0}),
        ("license", "rel-license", "Licence", False,
         {"type": "text", "maxlength": 64, "value": "unknown", "autocomplete": "off"}),
        ("shard_size", "rel-shard", "Shard size", False,
         {"type": "number", "min": 1, "max": 1_000_000, "step": 1, "value": 10_000}),
        ("contact", "rel-contact", "Takedown contact", True,
         {"type": "text", "maxlength": 300, "autocomplete": "off",
          "placeholder": "e.g. takedown@example.org"}),
    )
]


@role_required(Role.RESEARCHER, Role.ADMIN, why="releases are for researchers and admins")
@ensure_csrf_cookie
def releases_page(request: HttpRequest) -> HttpResponse:
    """Every release, its status, counts and datasheet, and the form that builds one (the
    CLI's `release build` options, as POST /api/releases/ takes them)."""
    config = {
        "urls": {
            "releases": reverse("release-list"),
            "release": url_template("release-detail"),
            "cancel": url_template("release-cancel"),
            "download": url_template("release-download"),
        },
        "release_root": str(settings.RELEASE_ROOT),
    }
    form = {
        "projects": list(projects_for(request.user).values_list("name", flat=True)),
        "sources": selectors.source_names(),
        "formats": list(FORMATS),
        "splits": list(SPLITS),
        "na_policies": list(NA_POLICIES),
        "inputs": RELEASE_INPUTS,
    }
    return render(
        request,
        "modeling/releases.html",
        {"releases": selectors.releases(), "form": form, "config": config},
    )
