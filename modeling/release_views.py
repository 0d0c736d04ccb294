"""The researcher's releases page: every release, its status, counts and datasheet."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from curation.access import has_global_role
from humanbeauty.roles import Role

from .models import Release


@login_required
def releases_page(request: HttpRequest) -> HttpResponse:
    if not has_global_role(request.user, Role.RESEARCHER, Role.ADMIN):
        raise PermissionDenied("releases are for researchers and admins")
    releases = Release.objects.order_by("name", "-created_at")
    return render(request, "modeling/releases.html", {"releases": releases})
