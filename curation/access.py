"""Who may see an image file.

Curation knows nothing of projects, so apps above it (annotation) register checkers here in
their `ready()`; the image view asks them. Staff and global curators/researchers see all
(`core.access.sees_whole_pool`).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser

from core.access import sees_whole_pool

from .models import Image

ImageAccessCheck = Callable[[AbstractBaseUser, Image], bool]
_checks: list[ImageAccessCheck] = []


def register_image_access(check: ImageAccessCheck) -> None:
    if check not in _checks:
        _checks.append(check)


def may_view_image(user: AbstractBaseUser, image: Image) -> bool:
    if not user.is_authenticated:
        return False
    if sees_whole_pool(user):
        return True
    return any(check(user, image) for check in _checks)
