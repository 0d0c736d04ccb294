"""Browser pages for raters: project list and the rating page.

The rating page is rendered from the standard module (dimensions, groups, levels) and the
model's skip reasons, then driven by `static/js/rate.js` through the public REST API only.
Nothing here (or in the page) reads another rater's scores.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from humanbeauty.roles import RATING_ROLES
from humanbeauty.standard import (
    BY_KEY,
    DIMENSIONS,
    GROUPS,
    LEVEL_MIDPOINTS,
    LEVEL_THRESHOLDS,
    LEVELS,
    describe,
)

from . import selectors
from .models import Project, SkipReason

# Stand-in id used to hand URL patterns to the page (the JS puts the real id in its place).
_ID = 999_999_999


def _url_pattern(name: str) -> str:
    return reverse(name, args=[_ID]).replace(str(_ID), "{id}")


def level_table() -> list[dict[str, object]]:
    """The five levels with their key (1-5), midpoint score and score range."""
    bounds = (0.0, *LEVEL_THRESHOLDS, 1.0)
    return [
        {
            "number": i + 1,
            "name": name,
            "score": LEVEL_MIDPOINTS[i],
            "low": bounds[i],
            "high": bounds[i + 1],
        }
        for i, name in enumerate(LEVELS)
    ]


def dimension_groups() -> list[dict[str, object]]:
    """The standard's dimensions in page order: grouped, leaves first, then their aggregate."""
    dims = describe()
    for d in dims:
        d["children_names"] = [BY_KEY[c].name for c in d["children"]]
    groups = []
    for key, label in GROUPS:
        members = [d for d in dims if d["group"] == key]
        members.sort(key=lambda d: (bool(d["children"]), d["index"]))
        # A nullable aggregate (the face) offers a one-click "all not applicable".
        na_parent = next((d for d in members if d["children"] and d["nullable"]), None)
        groups.append({"key": key, "label": label, "dimensions": members, "na_parent": na_parent})
    return groups


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = []
    for project in selectors.projects_for(request.user):
        role = selectors.role_in(request.user, project)
        progress = selectors.project_progress(project, request.user)
        required = progress["ratings_required"] or 0
        projects.append(
            {
                "project": project,
                "role": role,
                "can_rate": role in RATING_ROLES and project.is_active,
                "progress": progress,
                "percent": round(100 * progress["ratings_done"] / required) if required else 0,
            }
        )
    return render(request, "annotation/home.html", {"projects": projects})


@login_required
@ensure_csrf_cookie
def rate(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    role = selectors.role_in(request.user, project)
    if role not in RATING_ROLES:
        raise PermissionDenied("you do not rate in this project")
    groups = dimension_groups()
    flag_reasons = [
        {"value": value, "label": label}
        for value, label in SkipReason.choices
        if value != SkipReason.SKIP
    ]
    config = {
        "project": {"id": project.pk, "name": project.name},
        "urls": {
            "project": reverse("project-detail", args=[project.pk]),
            "next": reverse("project-next", args=[project.pk]),
            "rating": _url_pattern("assignment-rating"),
            "skip": _url_pattern("assignment-skip"),
            "home": reverse("rate-home"),
            "login": reverse("login"),
        },
        "levels": level_table(),
        "groups": [
            {"key": g["key"], "label": g["label"], "dimensions": g["dimensions"]} for g in groups
        ],
        "skip_reason": SkipReason.SKIP.value,
        "flag_reasons": flag_reasons,
        "reasons_needing_text": [SkipReason.OTHER.value],
    }
    return render(
        request,
        "annotation/rate.html",
        {
            "project": project,
            "role": role,
            "groups": groups,
            "n_dimensions": len(DIMENSIONS),
            "levels": level_table(),
            "flag_reasons": flag_reasons,
            "rate_config": config,
        },
    )


urlpatterns = [
    path("", home, name="rate-home"),
    path("projects/<int:pk>/rate/", rate, name="rate"),
]
