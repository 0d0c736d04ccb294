"""Writes for a project's members: adding, inviting, changing roles, removing.

Curator, researcher and admin are also platform-wide powers (Django groups, `GLOBAL_ROLES`):
giving one of them to someone is a platform decision, so only a platform admin may, whoever
manages the project. The command line (`manage.py add_member`) is the platform's own hand.
Every decision taken here is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.access import has_global_role
from humanbeauty.roles import GLOBAL_ROLES, Role

from ..models import Invitation, Membership, Project, RaterStatus
from .audit import audit
from .errors import Conflict, InvitationInvalid, ManagerNotAllowed, NoSuchUser, WorkflowError
from .qualification import has_qualification_track
from .workflow import release_leases

INVITATION_DAYS = 7
MAX_INVITATION_DAYS = 30


def add_member(
    project: Project, username: str, role: Role | str, *, password: str | None = None
) -> tuple[Membership, bool]:
    """Give `username` a role in `project`, creating the user if needed (the command line).

    Curator, researcher and admin are also platform-wide powers, kept as Django groups.
    """
    role = Role(role)
    User = get_user_model()
    with transaction.atomic():
        user, user_created = User.objects.get_or_create(username=username)
        if password:
            user.set_password(password)
            user.save(update_fields=["password"])
        elif user_created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        return _join(project, user, role)


def _join(project: Project, user: AbstractBaseUser, role: Role) -> tuple[Membership, bool]:
    """Make `user` a member with `role` (or set the role of one already in)."""
    membership, created = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role.value}
    )
    if created and not has_qualification_track(project):
        # Without a qualification track, joining is certification enough.
        membership.status = RaterStatus.CERTIFIED
        membership.certified_via = "auto"
        membership.save(update_fields=["status", "certified_via"])
    if role in GLOBAL_ROLES:
        group, _ = Group.objects.get_or_create(name=role.value)
        user.groups.add(group)
    return membership, created


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise WorkflowError(
            f"unknown role {value!r}; expected one of {', '.join(r.value for r in Role)}"
        ) from None


def _check_may_grant(role: Role, actor: AbstractBaseUser) -> None:
    if role in GLOBAL_ROLES and not has_global_role(actor, Role.ADMIN):
        raise ManagerNotAllowed(
            f"only a platform admin may give the role '{role}': it carries platform-wide "
            "powers; project managers may give annotator or reviewer"
        )


def _locked_member(
    project: Project, user: AbstractBaseUser, actor: AbstractBaseUser
) -> Membership:
    """The locked membership a manager changes, once the change is theirs to make: nobody
    changes their own; a member with a platform-wide role is changed only by a platform admin."""
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        raise NoSuchUser(f"{user} is not a member of '{project.name}'")
    if user.pk == actor.pk and not actor.is_superuser:
        raise ManagerNotAllowed("managers do not change their own membership")
    if membership.role in GLOBAL_ROLES and not has_global_role(actor, Role.ADMIN):
        raise ManagerNotAllowed(
            f"{user} is a {membership.role} here, a platform-wide role: only a platform admin "
            "changes their membership"
        )
    return membership


def add_existing_member(
    project: Project, username: str, role: Role | str, *, actor: AbstractBaseUser
) -> Membership:
    """A manager adds someone who already has an account."""
    role = _role(role)
    _check_may_grant(role, actor)
    with transaction.atomic():
        # The user's row is locked so that two adds (or an add and an accepted invitation)
        # of one person cannot both pass the check below.
        user = get_user_model().objects.select_for_update().filter(username=username).first()
        if user is None:
            raise NoSuchUser(f"no user named '{username}': invite them with a link instead")
        _refuse_if_member(project, user, f"{username} is")
        membership, _ = _join(project, user, role)
        audit(project, actor, "member_added", subject=user, role=role.value)
    return membership


def _refuse_if_member(project: Project, user: AbstractBaseUser, who: str) -> None:
    existing = Membership.objects.filter(project=project, user=user).first()
    if existing is not None:
        raise Conflict(f"{who} already a member of '{project.name}' (as {existing.role})")


def change_role(
    project: Project, user: AbstractBaseUser, role: Role | str, *, actor: AbstractBaseUser
) -> Membership:
    """Set a member's role. A platform-wide role given earlier stays with the person (it is
    the platform's, not the project's): only a platform admin takes it away."""
    role = _role(role)
    _check_may_grant(role, actor)
    with transaction.atomic():
        membership = _locked_member(project, user, actor)
        before = membership.role
        if before == role:
            return membership
        _join(project, user, role)
        membership.refresh_from_db()
        audit(project, actor, "member_role_changed", subject=user, before=before, role=role.value)
    return membership


def remove_member(project: Project, user: AbstractBaseUser, *, actor: AbstractBaseUser) -> int:
    """Take `user` out of the project; their live leases end at once (the slots go back to
    the queue). Their ratings stay. Returns how many leases were ended."""
    with transaction.atomic():
        membership = _locked_member(project, user, actor)
        released = release_leases(project, user)
        role = membership.role
        membership.delete()
        audit(project, actor, "member_removed", subject=user, role=role, leases_released=released)
    return released


# --- invitations ----------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invitation(
    project: Project,
    role: Role | str,
    *,
    actor: AbstractBaseUser,
    days: int = INVITATION_DAYS,
    now: datetime | None = None,
) -> tuple[Invitation, str]:
    """A one-time link's invitation and its token (shown once: only its hash is kept)."""
    role = _role(role)
    _check_may_grant(role, actor)
    if not 1 <= days <= MAX_INVITATION_DAYS:
        raise WorkflowError(f"an invitation lasts 1 to {MAX_INVITATION_DAYS} days")
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            token_hash=token_hash(token),
            project=project,
            role=role.value,
            created_by=actor,
            expires_at=now + timedelta(days=days),
        )
        audit(
            project, actor, "invitation_created",
            invitation=invitation.pk, role=role.value, expires_at=invitation.expires_at.isoformat(),
        )
    return invitation, token


def revoke_invitation(invitation: Invitation, *, actor: AbstractBaseUser) -> None:
    """End an unused link now (it reads as expired to whoever opens it)."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.used_at is not None:
            raise Conflict("this invitation was used already")
        now = timezone.now()
        if invitation.expires_at > now:
            invitation.expires_at = now
            invitation.save(update_fields=["expires_at"])
        audit(invitation.project, actor, "invitation_revoked", invitation=invitation.pk)


@dataclass(frozen=True)
class Accepted:
    membership: Membership
    new_account: bool


def _usable(invitation: Invitation | None, now: datetime) -> Invitation:
    if invitation is None:
        raise InvitationInvalid("this invitation link is not valid: ask for a new one")
    if invitation.used_at is not None:
        raise InvitationInvalid("this invitation link was used already: ask for a new one")
    if invitation.expires_at <= now:
        raise InvitationInvalid("this invitation link has expired: ask for a new one")
    return invitation


def invitation_for(token: str, *, now: datetime | None = None) -> Invitation:
    """The invitation a link's token opens, while it may still be used."""
    invitation = (
        Invitation.objects.select_related("project").filter(token_hash=token_hash(token)).first()
    )
    return _usable(invitation, now or timezone.now())


def accept_invitation(
    token: str,
    *,
    user: AbstractBaseUser | None = None,
    username: str = "",
    password: str = "",
    now: datetime | None = None,
) -> Accepted:
    """Use a link: join as `user` (logged in) or as a new account `username` + `password`.

    Single use even under concurrent accepts: the invitation's row is locked, and whoever gets
    the lock second sees it used. A refusal (a taken username, a weak password) leaves the
    link usable."""
    now = now or timezone.now()
    with transaction.atomic():
        invitation = _usable(
            Invitation.objects.select_for_update()
            .select_related("project")
            .filter(token_hash=token_hash(token))
            .first(),
            now,
        )
        project = invitation.project
        new_account = user is None or not user.is_authenticated
        if new_account:
            user = _new_account(username, password)
        else:
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            _refuse_if_member(project, user, "you are")
        membership, _ = _join(project, user, Role(invitation.role))
        invitation.used_at = now
        invitation.used_by = user
        invitation.save(update_fields=["used_at", "used_by"])
        audit(
            project, user, "invitation_accepted", subject=user, invitation=invitation.pk,
            role=invitation.role, new_account=new_account,
            invited_by=invitation.created_by.username if invitation.created_by else None,
        )
    return Accepted(membership, new_account)


def _new_account(username: str, password: str) -> AbstractBaseUser:
    User = get_user_model()
    username = (username or "").strip()
    if not username:
        raise WorkflowError("choose a username")
    candidate = User(username=username)
    problems: list[str] = []
    try:
        candidate.clean_fields(exclude=["password"])
    except ValidationError as exc:
        problems += exc.messages
    try:
        validate_password(password or "", candidate)
    except ValidationError as exc:
        problems += exc.messages
    if problems:
        raise WorkflowError("the account was not created: " + " ".join(problems), errors=problems)
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password)
    except IntegrityError:
        raise Conflict(f"the username '{username}' is taken: choose another") from None
