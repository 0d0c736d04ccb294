from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in for the API: per-device tokens that expire and can be revoked."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI description of the tokens)
