"""Template context for every page: the platform links of the top bar, one list for all
pages, each shown only to the roles whose pages it opens (the pages check the roles again)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse

from core.access import has_global_role
from humanbeauty.roles import Role

# (URL name, label, the platform roles that may open it); config/ may name every app's URLs.
NAV_LINKS: tuple[tuple[str, str, tuple[Role, ...]], ...] = (
    ("curation-home", "Curation", (Role.CURATOR, Role.RESEARCHER, Role.ADMIN)),
    ("releases", "Releases", (Role.RESEARCHER, Role.ADMIN)),
    ("models", "Models", (Role.RESEARCHER, Role.ADMIN)),
    ("takedowns", "Takedowns", (Role.ADMIN,)),
)


def nav(request: HttpRequest) -> dict[str, object]:
    """`nav_links`: [{key, label, url, current}] that this user may open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": []}
    links = []
    for name, label, roles in NAV_LINKS:
        if has_global_role(user, *roles):
            url = reverse(name)
            links.append(
                {"key": name, "label": label, "url": url, "current": request.path.startswith(url)}
            )
    return {"nav_links": links}
