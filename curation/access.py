"""Who may see an image file.

Curation knows nothing of projects, so apps above it (annotation) register checkers here in
their `ready()`; the image view asks them. Staff and global curators/researchers see all.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser

from humanbeauty.roles import Role

from .models import Image

ImageAccessCheck = Callable[[AbstractBaseUser, Image], bool]
_checks: list[ImageAccessCheck] = []


def register_image_access(check: ImageAccessCheck) -> None:
    if check not in _checks:
        _checks.append(check)


def has_global_role(user: AbstractBaseUser, *roles: Role) -> bool:
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


def may_view_image(user: AbstractBaseUser, image: Image) -> bool:
    if not user.is_authenticated:
        return False
    if sees_whole_pool(user):
        return True
    return any(check(user, image) for check in _checks)
