"""Sign-in for the API: `POST /api/auth/token/` gives a per-device token; a user lists their
tokens and revokes one (or the one in use: log out)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from . import services
from .models import ApiToken
from .serializers import ApiTokenSerializer, LoginSerializer


class LockedOut(APIException):
    status_code = 429
    default_code = "locked_out"
    default_detail = "too many failed logins for this account or address; try again later"


class TokenView(GenericAPIView):
    """POST username + password (+ an optional device name), get `{"token": ...}` for
    `Authorization: Token <token>`. Each login is its own token, which expires after
    API_TOKEN_DAYS and can be revoked alone."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    serializer_class = LoginSerializer
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        responses={200: inline_serializer("TokenResponse", {"token": serializers.CharField()})}
    )
    def post(self, request: Request) -> Response:
        login = self.get_serializer(data=request.data)
        if not login.is_valid():
            # django-axes refused to check the password (config/login_guard.py): say so.
            if getattr(request, "axes_locked_out", False):
                raise LockedOut()
            raise ValidationError(login.errors)
        user = login.validated_data["user"]
        _, key = services.issue_token(user, device=login.validated_data.get("device", ""))
        # A token login is a login: the signal resets the failure count and sets last_login,
        # as a login through the page does.
        user_logged_in.send(sender=type(user), request=request, user=user)
        return Response({"token": key})


class TokenListView(APIView):
    @extend_schema(responses=ApiTokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        """Your tokens, newest first (revoked and expired ones included, marked)."""
        tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at", "-id")
        return Response(ApiTokenSerializer(tokens, many=True, context={"request": request}).data)


class TokenRevokeView(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        """Revoke one of your tokens (someone else's is a 404, like a missing one)."""
        services.revoke(get_object_or_404(ApiToken, pk=pk, user=request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutView(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        """Revoke the token this request came with (a session is not a token: nothing to do)."""
        if isinstance(request.auth, ApiToken):
            services.revoke(request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)
