"""API tokens: one per device (a login), stored as a hash, with an expiry, revocable."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    # sha256 of the key: a database leak gives no usable token. The key is shown once.
    key_hash = models.CharField(max_length=64, unique=True)
    # The key's first characters, so a user can tell their tokens apart in a list.
    prefix = models.CharField(max_length=8)
    device = models.CharField(max_length=100, blank=True, help_text="What the login named.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"token {self.prefix}… of {self.user_id} ({self.device or 'no device'})"
