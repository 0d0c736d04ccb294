from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer

from .models import ApiToken


class LoginSerializer(AuthTokenSerializer):
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
