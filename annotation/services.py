"""Writes for the rating workflow: projects, members, leases, ratings and skips.

Concurrency design (PostgreSQL): every change to an image's slot counters happens while its
`ProjectImage` row is locked, always in the order ProjectImage -> Assignment, so counters and
lease states cannot drift and transactions cannot deadlock. The next-task query locks one open
row with `FOR NO KEY UPDATE SKIP LOCKED`, so raters never wait on each other, and a rater's own
requests are serialised by locking their `Membership` row. On SQLite the IMMEDIATE transaction
mode serialises writers instead (see settings).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from curation.models import Image
from humanbeauty.errors import DomainError
from humanbeauty.roles import GLOBAL_ROLES, RATING_ROLES, Role
from humanbeauty.standard import DIMENSION_KEYS, StandardError, validate_scores

from .models import (
    Assignment,
    AssignmentStatus,
    Membership,
    Project,
    ProjectImage,
    Rating,
    Skip,
    SkipReason,
)

# A rater holds at most this many live leases: the image on screen and the one preloaded.
MAX_LIVE_LEASES = 2
MAX_TIME_SPENT_MS = 24 * 3600 * 1000


class WorkflowError(DomainError):
    """A request the rating workflow refuses."""


class InvalidRating(WorkflowError):
    code = "invalid_rating"


class NotYourLease(WorkflowError):
    status = 403
    code = "not_your_lease"


class NotAMember(WorkflowError):
    status = 403
    code = "not_a_member"


class LeaseNotFound(WorkflowError):
    status = 404
    code = "not_found"


class Conflict(WorkflowError):
    status = 409
    code = "conflict"


# --- projects and members -----------------------------------------------------------------


def get_or_create_project(
    name: str, *, overlap: int | None = None, guidelines: str | None = None
) -> tuple[Project, bool]:
    defaults: dict[str, object] = {}
    if overlap is not None:
        if overlap < 1:
            raise WorkflowError("overlap must be at least 1")
        defaults["overlap"] = overlap
    if guidelines is not None:
        defaults["guidelines"] = guidelines
    return Project.objects.get_or_create(name=name, defaults=defaults)


def add_member(
    project: Project, username: str, role: Role | str, *, password: str | None = None
) -> tuple[Membership, bool]:
    """Give `username` a role in `project`, creating the user if needed.

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
        membership, created = Membership.objects.update_or_create(
            project=project, user=user, defaults={"role": role.value}
        )
        if role in GLOBAL_ROLES:
            group, _ = Group.objects.get_or_create(name=role.value)
            user.groups.add(group)
    return membership, created


def add_images(project: Project, images: Iterable[Image]) -> int:
    """Queue images in a project (each once); returns how many were new to it."""
    ids = {img.pk for img in images}
    present = set(
        ProjectImage.objects.filter(project=project, image_id__in=ids).values_list(
            "image_id", flat=True
        )
    )
    new = [
        ProjectImage(project=project, image_id=i, target=project.overlap)
        for i in sorted(ids - present)
    ]
    ProjectImage.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
    return len(new)


# --- leases -------------------------------------------------------------------------------


def reclaim_expired(project: Project, *, now: datetime | None = None, limit: int = 500) -> int:
    """Turn a project's expired leases into freed slots; returns how many were freed."""
    now = now or timezone.now()
    stale = list(
        Assignment.objects.filter(
            project=project, status=AssignmentStatus.ACTIVE, expires_at__lte=now
        ).values_list("id", "project_image_id")[:limit]
    )
    if not stale:
        return 0
    with transaction.atomic():
        pi_ids = sorted({pi for _, pi in stale})
        list(
            ProjectImage.objects.select_for_update(no_key=True)
            .filter(id__in=pi_ids)
            .order_by("id")
            .values_list("id", flat=True)
        )
        # Re-read under the locks: a late submit or skip may have ended some of them.
        still = list(
            Assignment.objects.select_for_update()
            .filter(
                id__in=[a for a, _ in stale],
                status=AssignmentStatus.ACTIVE,
                expires_at__lte=now,
            )
            .values_list("id", "project_image_id")
        )
        if not still:
            return 0
        Assignment.objects.filter(id__in=[a for a, _ in still]).update(
            status=AssignmentStatus.EXPIRED, finished_at=now
        )
        for pi_id, n in Counter(pi for _, pi in still).items():
            ProjectImage.objects.filter(pk=pi_id).update(leased=F("leased") - n)
    return len(still)


def next_task(
    project: Project,
    rater: AbstractBaseUser,
    *,
    exclude: Iterable[int] = (),
    now: datetime | None = None,
) -> Assignment | None:
    """The rater's next lease in `project`, or None when nothing is left for them.

    Rules: the rater's own live lease comes back first (oldest first, skipping `exclude`, the
    leases the client already shows); an image never goes to the same rater twice; completed
    ratings + live leases never exceed the image's target; started images come before fresh
    ones; expired leases free their slot.
    """
    now = now or timezone.now()
    exclude = [int(i) for i in exclude]
    reclaim_expired(project, now=now)
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().filter(project=project, user=rater).first()
        )
        if membership is None or membership.role not in RATING_ROLES:
            raise NotAMember(f"you are not a rater in project '{project.name}'")
        live = Assignment.objects.filter(
            project=project, rater=rater, status=AssignmentStatus.ACTIVE, expires_at__gt=now
        )
        own = live.exclude(id__in=exclude).order_by("created_at", "id").first()
        if own is not None:
            return own
        if not project.is_active or live.count() >= MAX_LIVE_LEASES:
            return None
        seen = Assignment.objects.filter(project_image=OuterRef("pk"), rater=rater)
        item = (
            ProjectImage.objects.select_for_update(skip_locked=True, no_key=True, of=("self",))
            .filter(project=project, remaining__gt=0)
            .filter(~Exists(seen))
            .order_by("remaining", "id")
            .only("id", "image_id")
            .first()
        )
        if item is None:
            return None
        ProjectImage.objects.filter(pk=item.pk).update(leased=F("leased") + 1)
        return Assignment.objects.create(
            project=project,
            project_image_id=item.pk,
            image_id=item.image_id,
            rater=rater,
            expires_at=now + timedelta(minutes=project.lease_minutes),
        )


# --- submit and skip ----------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitResult:
    rating: Rating
    created: bool  # False when this was a retry of an earlier submit with the same request id


def _own_assignment(assignment_id: int, rater: AbstractBaseUser) -> Assignment:
    assignment = Assignment.objects.filter(pk=assignment_id).select_related("project").first()
    if assignment is None:
        raise LeaseNotFound(f"assignment {assignment_id} does not exist")
    if assignment.rater_id != rater.pk:
        raise NotYourLease(f"assignment {assignment_id} belongs to another rater")
    return assignment


def _replay(existing: Rating, rater: AbstractBaseUser, assignment_id: int) -> SubmitResult:
    if existing.rater_id != rater.pk or existing.assignment_id != assignment_id:
        raise Conflict("this request_id was already used for a different rating")
    return SubmitResult(existing, created=False)


def _lock_for_finish(assignment: Assignment, now: datetime) -> tuple[ProjectImage, Assignment]:
    """Lock the image's counters then the lease, and settle a lease that ran out unreclaimed."""
    item = ProjectImage.objects.select_for_update(no_key=True).get(pk=assignment.project_image_id)
    assignment = Assignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.status == AssignmentStatus.ACTIVE and assignment.expires_at <= now:
        assignment.status = AssignmentStatus.EXPIRED
        item.leased -= 1
    return item, assignment


def submit_rating(
    assignment_id: int,
    rater: AbstractBaseUser,
    scores: Mapping[str, object],
    request_id: uuid.UUID | str,
    *,
    time_spent_ms: int | None = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Record a rater's 12 scores for their lease, atomically and idempotently."""
    try:
        request_id = uuid.UUID(str(request_id))
    except ValueError:
        raise InvalidRating(f"request_id {request_id!r} is not a UUID") from None
    try:
        clean = validate_scores(scores)
    except StandardError as exc:
        raise InvalidRating(str(exc)) from None
    if time_spent_ms is not None and not 0 <= time_spent_ms <= MAX_TIME_SPENT_MS:
        raise InvalidRating(f"time_spent_ms must be within 0..{MAX_TIME_SPENT_MS}")
    existing = Rating.objects.filter(request_id=request_id).first()
    if existing is not None:
        return _replay(existing, rater, assignment_id)
    assignment = _own_assignment(assignment_id, rater)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            item, assignment = _lock_for_finish(assignment, now)
            # A concurrent retry of this very request may have committed while we waited.
            existing = Rating.objects.filter(request_id=request_id).first()
            if existing is not None:
                return _replay(existing, rater, assignment_id)
            if assignment.status == AssignmentStatus.COMPLETED:
                raise Conflict("you have already rated this image")
            if assignment.status == AssignmentStatus.SKIPPED:
                raise Conflict("you skipped this image; it cannot be rated now")
            late = assignment.status == AssignmentStatus.EXPIRED
            if late:
                if item.target - item.completed - item.leased <= 0:
                    raise Conflict(
                        "your lease expired and the image already has enough ratings; "
                        "the rating was not recorded"
                    )
            else:
                item.leased -= 1
            item.completed += 1
            item.save(update_fields=["completed", "leased"])
            assignment.status = AssignmentStatus.COMPLETED
            assignment.finished_at = now
            assignment.save(update_fields=["status", "finished_at"])
            if time_spent_ms is None:
                time_spent_ms = min(
                    int((now - assignment.created_at).total_seconds() * 1000), MAX_TIME_SPENT_MS
                )
            rating = Rating.objects.create(
                project_id=assignment.project_id,
                image_id=assignment.image_id,
                rater=rater,
                assignment=assignment,
                time_spent_ms=max(0, time_spent_ms),
                request_id=request_id,
                late=late,
                **{k: clean[k] for k in DIMENSION_KEYS},
            )
    except IntegrityError:
        # Only reachable when the same request_id raced in for a different lease.
        existing = Rating.objects.filter(request_id=request_id).first()
        if existing is not None:
            return _replay(existing, rater, assignment_id)
        raise
    return SubmitResult(rating, created=True)


def skip_assignment(
    assignment_id: int,
    rater: AbstractBaseUser,
    reason: str,
    text: str = "",
    *,
    now: datetime | None = None,
) -> tuple[Skip, bool]:
    """Pass on a lease (and flag the image unless the reason is a plain skip).

    Idempotent: skipping the same lease again returns the first skip.
    """
    if reason not in SkipReason.values:
        raise WorkflowError(
            f"unknown reason {reason!r}; expected one of {', '.join(SkipReason.values)}"
        )
    text = (text or "").strip()
    if reason == SkipReason.OTHER and not text:
        raise WorkflowError("reason 'other' needs a text saying what is wrong")
    assignment = _own_assignment(assignment_id, rater)
    now = now or timezone.now()
    with transaction.atomic():
        item, assignment = _lock_for_finish(assignment, now)
        if assignment.status == AssignmentStatus.SKIPPED:
            return Skip.objects.get(assignment=assignment), False
        if assignment.status == AssignmentStatus.COMPLETED:
            raise Conflict("you have already rated this image")
        if assignment.status == AssignmentStatus.ACTIVE:
            item.leased -= 1
        item.save(update_fields=["leased"])
        assignment.status = AssignmentStatus.SKIPPED
        assignment.finished_at = now
        assignment.save(update_fields=["status", "finished_at"])
        skip = Skip.objects.create(
            project_id=assignment.project_id,
            image_id=assignment.image_id,
            rater=rater,
            assignment=assignment,
            reason=reason,
            text=text[:2000],
        )
    return skip, True
