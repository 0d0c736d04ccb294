"""Who may do what, platform-wide: roles (kept as Django groups) checked one way, for the API
(DRF permission classes) and for pages (a decorator). Per-project roles are annotation's
(`annotation.selectors`), built on these; who may see an image file is curation's
(`curation.access`), which apps above it extend."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

from humanbeauty.roles import Role

__all__ = [
    "Role",
    "RolePermissionMixin",
    "global_role_permission",
    "has_global_role",
    "role_required",
    "sees_whole_pool",
]


def has_global_role(user: AbstractBaseUser, *roles: Role) -> bool:
    """A superuser holds every role; anyone else the groups they are in."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=[r.value for r in roles]).exists()


def sees_whole_pool(user: AbstractBaseUser) -> bool:
    """Staff and global curators, researchers and admins see (and may use) every image."""
    return user.is_authenticated and (
        user.is_staff or has_global_role(user, Role.CURATOR, Role.RESEARCHER, Role.ADMIN)
    )


def _needs(roles: Iterable[Role]) -> str:
    return f"this needs one of the roles: {', '.join(r.value for r in roles)}"


def global_role_permission(*roles: Role) -> type[BasePermission]:
    """A DRF permission class: authenticated with one of `roles`."""

    class HasGlobalRole(BasePermission):
        message = _needs(roles)

        def has_permission(self, request, view) -> bool:
            return has_global_role(request.user, *roles)

    HasGlobalRole.__name__ = "Has" + "Or".join(r.value.title() for r in roles)
    return HasGlobalRole


class RolePermissionMixin:
    """For a viewset: reads need one of `read_roles`; the actions named in `write_actions`
    need one of `write_roles`."""

    read_roles: tuple[Role, ...] = ()
    write_roles: tuple[Role, ...] = ()
    write_actions: frozenset[str] = frozenset()

    def get_permissions(self) -> list[BasePermission]:
        writes = getattr(self, "action", None) in self.write_actions
        return [global_role_permission(*(self.write_roles if writes else self.read_roles))()]


def role_required(*roles: Role, why: str = "") -> Callable:
    """For a page: log in first, then one of `roles` or a 403 that says who the page is for."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_global_role(request.user, *roles):
                raise PermissionDenied(why or _needs(roles))
            return view(request, *args, **kwargs)

        return checked

    return decorate
