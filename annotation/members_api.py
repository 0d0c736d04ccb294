"""Thin DRF views for a project's members and its one-time invitation links.

Members are managed by the project's admins (platform admins count as admins everywhere);
annotators and reviewers are refused, and someone outside the project gets the 404 a missing
project gives. Giving a platform-wide role is a platform admin's (the service says so).
Invitation links (/api/invitations/{token}/) are open to anyone holding the token.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import AbstractBaseUser
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.web import validated
from humanbeauty.roles import Role

from . import selectors
from .models import Invitation, Project
from .serializers import (
    InvitationAcceptSerializer,
    InvitationInputSerializer,
    InvitationPublicSerializer,
    InvitationSerializer,
    MemberInputSerializer,
    MemberRoleSerializer,
    MemberSerializer,
)
from .services import members as member_services

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


GONE = OpenApiResponse(description="The link was never issued, was revoked, expired or was used.")
TAKEN = OpenApiResponse(description="Already a member, or (a new account) the username is taken.")


def admin_project(request: Request, pk: int) -> Project:
    """The project, for its admins; others in it get a 403 that says who may, anyone else
    the 404 a missing project gives."""
    project = get_object_or_404(Project, pk=pk)
    role = selectors.role_in(request.user, project)
    if role == Role.ADMIN:
        return project
    if role is None:
        raise NotFound(f"project {pk} does not exist")
    raise PermissionDenied("members are managed by the project's admins")


def _user_named(username: str) -> AbstractBaseUser:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"no user named '{username}'")
    return user


def _row(project: Project, username: str) -> dict:
    row = selectors.member_rows(project).get(user__username=username)
    return MemberSerializer(row).data


class MemberListView(APIView):
    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = admin_project(request, pk)
        return Response(MemberSerializer(selectors.member_rows(project), many=True).data)

    @extend_schema(request=MemberInputSerializer, responses={201: MemberSerializer, 409: TAKEN})
    def post(self, request: Request, pk: int) -> Response:
        """Add someone who has an account (audited)."""
        project = admin_project(request, pk)
        body = validated(MemberInputSerializer, request.data)
        username = body["username"]
        member_services.add_existing_member(
            project, username, body["role"], actor=request.user
        )
        return Response(_row(project, username), status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    @extend_schema(request=MemberRoleSerializer, responses=MemberSerializer)
    def patch(self, request: Request, pk: int, username: str) -> Response:
        """Change a member's role (audited)."""
        project = admin_project(request, pk)
        body = validated(MemberRoleSerializer, request.data)
        user = _user_named(username)
        member_services.change_role(project, user, body["role"], actor=request.user)
        return Response(_row(project, username))

    @extend_schema(
        responses={
            200: inline_serializer("MemberRemoved", {"leases_released": serializers.IntegerField()})
        }
    )
    def delete(self, request: Request, pk: int, username: str) -> Response:
        """Remove a member; their live leases end at once, their ratings stay (audited)."""
        project = admin_project(request, pk)
        user = _user_named(username)
        released = member_services.remove_member(project, user, actor=request.user)
        return Response({"leases_released": released})


class ProjectInvitationsView(APIView):
    @extend_schema(responses=InvitationSerializer(many=True))
    def get(self, request: Request, pk: int) -> Response:
        """The links not used yet that still work (their tokens are not kept)."""
        project = admin_project(request, pk)
        pending = selectors.pending_invitations(project)
        return Response(InvitationSerializer(pending, many=True).data)

    @extend_schema(request=InvitationInputSerializer, responses={201: InvitationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Make a one-time link (audited); the answer is the only place it is shown."""
        project = admin_project(request, pk)
        body = validated(InvitationInputSerializer, request.data)
        invitation, token = member_services.create_invitation(
            project, body["role"], actor=request.user,
            days=body["days"],
        )
        data = InvitationSerializer(invitation).data
        data["url"] = request.build_absolute_uri(reverse("invitation", args=[token]))
        return Response(data, status=status.HTTP_201_CREATED)


class ProjectInvitationView(APIView):
    @extend_schema(responses={204: None, 409: OpenApiResponse(description="Used already.")})
    def delete(self, request: Request, pk: int, invitation_id: int) -> Response:
        """Revoke an unused link (audited)."""
        project = admin_project(request, pk)
        invitation = get_object_or_404(Invitation, pk=invitation_id, project=project)
        member_services.revoke_invitation(invitation, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationView(APIView):
    """What a link offers, to whoever holds it (no login needed)."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: InvitationPublicSerializer, 410: GONE})
    def get(self, request: Request, token: str) -> Response:
        return Response(InvitationPublicSerializer(member_services.invitation_for(token)).data)


class InvitationAcceptView(APIView):
    """Use a link: logged in, join with your account; otherwise choose a username and a
    password (Django's password rules), and you are logged in as the new account."""

    permission_classes = [AllowAny]

    @extend_schema(
        request=InvitationAcceptSerializer,
        responses={
            201: inline_serializer(
                "InvitationAccepted",
                {
                    "project": serializers.IntegerField(),
                    "username": serializers.CharField(),
                    "role": serializers.CharField(),
                    "new_account": serializers.BooleanField(),
                    "next": serializers.CharField(),
                },
            ),
            409: TAKEN,
            410: GONE,
        },
    )
    def post(self, request: Request, token: str) -> Response:
        if not request.user.is_authenticated:
            # The answer logs a new account in: the page's CSRF token guards that, as it
            # guards the login form (a session user's request is checked by DRF already).
            SessionAuthentication().enforce_csrf(request)
        body = validated(InvitationAcceptSerializer, request.data)
        accepted = member_services.accept_invitation(
            token,
            user=request.user if request.user.is_authenticated else None,
            username=body.get("username", ""),
            password=body.get("password", ""),
        )
        member = accepted.membership
        if accepted.new_account and not request.auth:
            login(request._request, member.user, backend=MODEL_BACKEND)
        return Response(
            {
                "project": member.project_id,
                "username": member.user.username,
                "role": member.role,
                "new_account": accepted.new_account,
                "next": reverse("rate-home"),
            },
            status=status.HTTP_201_CREATED,
        )
