"""The admins' takedown page: a rendered shell with a JSON config that static/js/rights.js
fills from the REST API (rights/api.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from core.access import role_required
from core.web import url_template
from humanbeauty.roles import Role

from . import selectors


@role_required(Role.ADMIN, why="takedown requests are handled by platform admins")
@ensure_csrf_cookie
def takedowns_page(request: HttpRequest) -> HttpResponse:
    config = {
        "urls": {
            "requests": reverse("takedown-list"),
            "request": url_template("takedown-detail"),
            "photos": url_template("takedown-photos"),
            "match": url_template("takedown-match"),
            "decide": url_template("takedown-decide"),
            "remove": url_template("takedown-remove"),
            "reject": url_template("takedown-reject"),
            "report": url_template("takedown-report"),
            "removal": url_template("takedown-removal-detail"),
        },
        "face_matching": selectors.face_matching(),
        "threshold": selectors.pool_threshold(),
    }
    return render(request, "rights/takedowns.html", {"config": config})
