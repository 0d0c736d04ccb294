"""The researcher's releases page: every release, its status, counts and datasheet."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.access import role_required
from humanbeauty.roles import Role

from .models import Release


@role_required(Role.RESEARCHER, Role.ADMIN, why="releases are for researchers and admins")
def releases_page(request: HttpRequest) -> HttpResponse:
    releases = Release.objects.order_by("name", "-created_at")
    return render(request, "modeling/releases.html", {"releases": releases})
