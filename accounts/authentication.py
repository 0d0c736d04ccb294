"""`Authorization: Token <key>` against ApiToken: expired or revoked tokens are refused."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from .models import ApiToken
from .services import hash_key

# last_used_at is written at most this often per token, so the hot path stays read-only.
TOUCH_EVERY = timedelta(minutes=5)


class ExpiringTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str):
        token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=hash_key(key))
            .only("id", "expires_at", "revoked_at", "last_used_at", "user")
            .first()
        )
        now = timezone.now()
        if token is None or token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("invalid or revoked token")
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("the token has expired; log in again")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("the account is disabled")
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token
