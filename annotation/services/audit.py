"""The audit trail: one event per decision people (or the gold rule) take in a project."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from curation.models import Image

from ..models import AuditEvent, Project


def audit(
    project: Project,
    actor: AbstractBaseUser | None,
    action: str,
    *,
    subject: AbstractBaseUser | None = None,
    image: Image | int | None = None,
    **details: object,
) -> AuditEvent:
    image_id = image.pk if isinstance(image, Image) else image
    return AuditEvent.objects.create(
        project=project, actor=actor, action=action, subject=subject, image_id=image_id,
        details=details,
    )
