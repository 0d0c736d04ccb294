"""Issuing and revoking API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from .models import ApiToken


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_token(user: AbstractBaseUser, *, device: str = "") -> tuple[ApiToken, str]:
    """A new token for one device; returns (the row, the key), the key to be shown once."""
    key = secrets.token_hex(20)
    token = ApiToken.objects.create(
        user=user,
        key_hash=hash_key(key),
        prefix=key[:8],
        device=device[:100],
        expires_at=timezone.now() + timedelta(days=settings.API_TOKEN_DAYS),
    )
    return token, key


def revoke(token: ApiToken, *, now: datetime | None = None) -> ApiToken:
    """Revoke a token from now on (idempotent: a revoked one keeps its first revocation)."""
    if token.revoked_at is None:
        token.revoked_at = now or timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def revoke_all(user: AbstractBaseUser) -> int:
    """Revoke every live token of `user` (a lost laptop, a password change)."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
