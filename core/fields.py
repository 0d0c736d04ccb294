"""Model fields spelled once for every app."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def user_link(**options: object) -> models.ForeignKey:
    """Who did something (created, overrode, decided): a user kept as null when the account
    is deleted, with no reverse accessor on the user. `options` add to or replace these."""
    kwargs: dict = {"null": True, "blank": True, "on_delete": models.SET_NULL, "related_name": "+"}
    return models.ForeignKey(settings.AUTH_USER_MODEL, **(kwargs | options))
