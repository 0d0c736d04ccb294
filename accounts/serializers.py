from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer

from .models import ApiToken


def _username_chars() -> int:
    User = get_user_model()
    return User._meta.get_field(User.USERNAME_FIELD).max_length


class LoginSerializer(AuthTokenSerializer):
    # No account has a longer name: refused as a field, before the password check, so it never
    # reaches the login guard's varchar(255) column.
    username = serializers.CharField(label="Username", write_only=True,
                                     max_length=_username_chars())
    device = serializers.CharField(
        required=False, allow_blank=True, max_length=100,
        help_text="A name for this login's token (e.g. 'lab laptop'), shown in the token list.",
    )


class ApiTokenSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField(help_text="The token this request came with.")

    class Meta:
        model = ApiToken
        fields = ["id", "prefix", "device", "created_at", "expires_at", "last_used_at",
                  "revoked_at", "current"]

    def get_current(self, token: ApiToken) -> bool:
        auth = self.context["request"].auth
        return isinstance(auth, ApiToken) and auth.pk == token.pk
