"""Browser pages: project list, the rating page, and the managers' dashboard and review pages.

The rating page is rendered from the standard module (dimensions, groups, levels) and the
model's skip reasons, then driven by `static/js/rate.js` through the public REST API only.
Nothing there reads another rater's scores.

The dashboard (`static/js/dashboard.js`, plots drawn by `static/js/plot.js`) and the review
page (`static/js/review.js`) are for the project's reviewers and admins (the dashboard also
for global researchers and admins): the same rule as the quality API (`manager_project`).
They too get their data from the REST API only.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from rest_framework.exceptions import NotFound as ApiNotFound
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied

from core.access import has_global_role
from core.web import url_template
from humanbeauty.roles import GLOBAL_ROLES, RATING_ROLES, Role
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
from .members_api import admin_project
from .models import Project, RaterStatus, ReviewItem, ReviewStatus, SkipReason
from .quality_api import MANAGER_ROLES, manager_project
from .services import members as member_services


def _may_see_dashboard(user, role: str | None) -> bool:
    return role in MANAGER_ROLES or has_global_role(user, Role.RESEARCHER, Role.ADMIN)


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
        can_review = role in MANAGER_ROLES
        projects.append(
            {
                "project": project,
                "role": role,
                "can_rate": role in RATING_ROLES and project.is_active,
                "can_dashboard": _may_see_dashboard(request.user, role),
                "can_review": can_review,
                "open_reviews": (
                    ReviewItem.objects.filter(project=project, status=ReviewStatus.OPEN).count()
                    if can_review
                    else None
                ),
                "progress": progress,
                "percent": round(100 * progress["ratings_done"] / required) if required else 0,
            }
        )
    return render(request, "annotation/home.html", {"projects": projects})


def attach_guides(groups: list[dict[str, object]], project: Project) -> None:
    """Each dimension's definition, a line per level and its pinned examples, as the project
    shows them (the page then needs no request of its own for them)."""
    guides = selectors.project_guides(project)
    for group in groups:
        for d in group["dimensions"]:
            guide = guides[d["key"]]
            d["definition"] = guide["definition"]
            d["guide_levels"] = [
                {
                    **level,
                    "description": guide["levels"][level["name"]],
                    "examples": [
                        {
                            "id": e.pk,
                            "url": reverse("project-guide-example-image", args=[project.pk, e.pk]),
                        }
                        for e in guide["examples"][level["name"]]
                    ],
                }
                for level in level_table()
            ]


@login_required
@ensure_csrf_cookie
def rate(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    role = selectors.role_in(request.user, project)
    if role not in RATING_ROLES:
        raise PermissionDenied("you do not rate in this project")
    groups = dimension_groups()
    attach_guides(groups, project)
    flag_reasons = [
        {"value": value, "label": label}
        for value, label in SkipReason.choices
        if value != SkipReason.SKIP
    ]
    config = {
        "project": {"id": project.pk, "name": project.name},
        # Answers not yet submitted are kept in the browser under the user and the lease.
        "user": request.user.pk,
        "urls": {
            "project": reverse("project-detail", args=[project.pk]),
            "next": reverse("project-next", args=[project.pk]),
            "rating": url_template("assignment-rating"),
            "skip": url_template("assignment-skip"),
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


def _manager_page(request: HttpRequest, pk: int, *, write: bool) -> Project:
    """The project, if the quality API would let this user read (or decide on) it."""
    try:
        return manager_project(request, pk, write=write)
    except ApiPermissionDenied as exc:
        raise PermissionDenied(str(exc.detail)) from None


def _page_dimensions() -> list[dict[str, object]]:
    """The dimensions in page order (as the rate page lists them), with their group label."""
    return [
        {**d, "group_label": g["label"]} for g in dimension_groups() for d in g["dimensions"]
    ]


def _manager_page_render(
    request: HttpRequest, project: Project, page: str, config: dict
) -> HttpResponse:
    """A manager's page on `annotation/_manager_page.html`: its template, style sheet and
    script are named after `page`, its script's config goes in #{page}-config."""
    context = {
        "project": project,
        "nav": _manager_nav(project, request.user, page),
        "page": page,
        "page_config": config,
        "config_id": f"{page}-config",
    }
    return render(request, f"annotation/{page}.html", context)


def _manager_nav(project: Project, user, page: str) -> list[dict[str, object]]:
    """Links between a project's pages that this user may open."""
    role = selectors.role_in(user, project)
    pages = [
        ("dashboard", "Dashboard", _may_see_dashboard(user, role)),
        ("review", "Review", role in MANAGER_ROLES),
        ("rate", "Rate", role in RATING_ROLES and project.is_active),
        ("members", "Members", role == Role.ADMIN),  # the members page is the admins'
        ("guides", "Guides", role in MANAGER_ROLES),
    ]
    return [
        {"key": key, "label": label, "url": reverse(key, args=[project.pk]),
         "current": key == page}
        for key, label, allowed in pages
        if allowed
    ]


@login_required
@ensure_csrf_cookie
def dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    project = _manager_page(request, pk, write=False)
    can_manage = selectors.role_in(request.user, project) in MANAGER_ROLES
    username_stand_in = "USERNAME-STAND-IN"
    config = {
        "project": {
            "id": project.pk,
            "name": project.name,
            "overlap": project.overlap,
            "max_overlap": project.max_overlap,
            "gold_max_mae": project.gold_max_mae,
            "gold_min_n": project.gold_min_n,
            "screening": project.screening,
            "screening_min_corr": project.screening_min_corr,
            "screening_min_shared": project.screening_min_shared,
            "disagreement_threshold": project.disagreement_threshold,
        },
        "can_manage": can_manage,
        "urls": {
            "agreement": reverse("project-agreement", args=[project.pk]),
            "raters": reverse("project-raters", args=[project.pk]),
            "timeline": reverse("project-timeline", args=[project.pk]),
            "histograms": reverse("project-histograms", args=[project.pk]),
            "refresh": reverse("project-refresh", args=[project.pk]),
            "rater_status": reverse(
                "project-rater-status", kwargs={"pk": project.pk, "username": username_stand_in}
            ).replace(username_stand_in, "{username}"),
            "rater_exclusion": reverse(
                "project-rater-exclusion", kwargs={"pk": project.pk, "username": username_stand_in}
            ).replace(username_stand_in, "{username}"),
            "review": reverse("review", args=[project.pk]) if can_manage else None,
            "login": reverse("login"),
        },
        "dimensions": _page_dimensions(),
        "levels": level_table(),
        "statuses": [value for value, _ in RaterStatus.choices],
    }
    return render(
        request,
        "annotation/dashboard.html",
        {
            "project": project,
            "can_manage": can_manage,
            "nav": _manager_nav(project, request.user, "dashboard"),
            "dashboard_config": config,
        },
    )


@login_required
@ensure_csrf_cookie
def review(request: HttpRequest, pk: int) -> HttpResponse:
    project = _manager_page(request, pk, write=True)
    groups = dimension_groups()
    raters = {
        r["username"]: {
            "status": r["status"],
            "excluded": r["excluded"],
            "exclusion_reason": r["exclusion_reason"],
            "bias": r["bias"],
        }
        for r in selectors.rater_table(project)
    }
    config = {
        "project": {
            "id": project.pk,
            "name": project.name,
            "disagreement_threshold": project.disagreement_threshold,
            "consistency_tolerance": project.consistency_tolerance,
        },
        "urls": {
            "queue": reverse("project-reviews", args=[project.pk]) + "?status=open",
            "decision": url_template("review-decision"),
            "dashboard": reverse("dashboard", args=[project.pk]),
            "login": reverse("login"),
        },
        "levels": level_table(),
        "dimensions": _page_dimensions(),
        "groups": [{"key": g["key"], "label": g["label"]} for g in groups],
        "raters": raters,
        "flag_labels": dict(SkipReason.choices),
    }
    return render(
        request,
        "annotation/review.html",
        {
            "project": project,
            "groups": groups,
            "levels": level_table(),
            "nav": _manager_nav(project, request.user, "review"),
            "review_config": config,
        },
    )


# --- members (annotation/members_api.py) -----------------------------------------------------


@login_required
@ensure_csrf_cookie
def members(request: HttpRequest, pk: int) -> HttpResponse:
    """The project's members, for its admins: add, invite, roles, certification, removal."""
    try:
        project = admin_project(request, pk)
    except ApiNotFound:
        raise Http404(f"project {pk} does not exist") from None
    except ApiPermissionDenied as exc:
        raise PermissionDenied(str(exc.detail)) from None
    username_stand_in = "USERNAME-STAND-IN"

    def by_username(name: str) -> str:
        return reverse(name, kwargs={"pk": project.pk, "username": username_stand_in}).replace(
            username_stand_in, "{username}"
        )

    config = {
        "project": {"id": project.pk, "name": project.name},
        "me": request.user.get_username(),
        "urls": {
            "members": reverse("project-members", args=[project.pk]),
            "member": by_username("project-member"),
            "rater_status": by_username("project-rater-status"),
            "invitations": reverse("project-invitations", args=[project.pk]),
            "invitation": reverse(
                "project-invitation", kwargs={"pk": project.pk, "invitation_id": 0}
            ).replace("/0/", "/{id}/"),
            "login": reverse("login"),
        },
        "roles": [{"value": r.value, "platform": r in GLOBAL_ROLES} for r in Role],
        "rating_roles": sorted(r.value for r in RATING_ROLES),
        "may_grant_platform_roles": has_global_role(request.user, Role.ADMIN),
        "statuses": [value for value, _ in RaterStatus.choices],
    }
    return _manager_page_render(request, project, "members", config)


@ensure_csrf_cookie
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Where a one-time link lands: join as yourself, or make an account and join."""
    try:
        invite = member_services.invitation_for(token)
    except member_services.InvitationInvalid as exc:
        return render(
            request, "annotation/invitation.html", {"invalid": exc.message}, status=exc.status
        )
    config = {
        "urls": {
            "accept": reverse("invitation-accept", args=[token]),
            "home": reverse("rate-home"),
        },
        "logged_in": request.user.is_authenticated,
    }
    return render(
        request,
        "annotation/invitation.html",
        {
            "invite": invite,
            "login_next": f"{reverse('login')}?next={request.path}",
            "invitation_config": config,
        },
    )


# --- the dimension guides (annotation/guides_api.py) --------------------------------------------


@login_required
@ensure_csrf_cookie
def guides(request: HttpRequest, pk: int) -> HttpResponse:
    """The managers' page: each dimension's definition and level lines, and example images."""
    project = _manager_page(request, pk, write=True)
    config = {
        "project": {"id": project.pk, "name": project.name},
        "urls": {
            "guides": reverse("project-guides", args=[project.pk]),
            "examples": reverse("project-guide-examples", args=[project.pk]),
            "example": reverse(
                "project-guide-example", kwargs={"pk": project.pk, "example": 0}
            ).replace("/0/", "/{id}/"),
            "rate": reverse("rate", args=[project.pk]),
            "login": reverse("login"),
        },
        "levels": level_table(),
    }
    return _manager_page_render(request, project, "guides", config)
