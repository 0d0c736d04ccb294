"""Browser pages for raters: project list and the rating page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path

from humanbeauty.roles import RATING_ROLES
from humanbeauty.standard import DIMENSIONS, GROUPS, LEVELS

from . import selectors
from .models import Project
from .serializers import render_guidelines


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = selectors.projects_for(request.user)
    return render(request, "annotation/home.html", {"projects": projects})


@login_required
def rate(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    role = selectors.role_in(request.user, project)
    if role not in RATING_ROLES:
        raise PermissionDenied("you do not rate in this project")
    groups = [
        {"key": g, "label": label, "dimensions": [d for d in DIMENSIONS if d.group == g]}
        for g, label in GROUPS
    ]
    return render(
        request,
        "annotation/rate.html",
        {
            "project": project,
            "groups": groups,
            "levels": LEVELS,
            "guidelines_html": render_guidelines(project.guidelines),
        },
    )


urlpatterns = [
    path("", home, name="rate-home"),
    path("projects/<int:pk>/rate/", rate, name="rate"),
]
