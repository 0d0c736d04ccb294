"""DRF permission classes for platform-wide roles (kept as Django groups)."""

from rest_framework.permissions import BasePermission

from curation.access import has_global_role
from humanbeauty.roles import Role


def global_role_permission(*roles: Role) -> type[BasePermission]:
    class HasGlobalRole(BasePermission):
        message = f"this needs one of the roles: {', '.join(r.value for r in roles)}"

        def has_permission(self, request, view) -> bool:
            return has_global_role(request.user, *roles)

    HasGlobalRole.__name__ = "Has" + "Or".join(r.value.title() for r in roles)
    return HasGlobalRole
