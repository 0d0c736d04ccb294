"""Writes for the rating workflow: projects, leases, ratings and skips (members: members.py).

Concurrency design (PostgreSQL): every change to an image's slot counters happens while its
`ProjectImage` row is locked, always in the order ProjectImage -> Assignment, so counters and
lease states cannot drift and transactions cannot deadlock. The next-task query locks one open
row with `FOR NO KEY UPDATE SKIP LOCKED`, so raters never wait on each other, and a rater's own
requests are serialised by locking their `Membership` row. On SQLite the IMMEDIATE transaction
mode serialises writers instead (see settings).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Subquery
from django.utils import timezone

from curation.models import Image
from humanbeauty.roles import RATING_ROLES
from humanbeauty.standard import DIMENSION_KEYS, StandardError, validate_scores

from ..models import (
    Assignment,
    AssignmentStatus,
    ItemKind,
    Membership,
    Project,
    ProjectImage,
    RaterStatus,
    Rating,
    Skip,
    SkipReason,
)
from . import errors
from .qualification import (
    finish_qualification,
    finish_qualification_if_done,
    has_qualification_track,
    next_qualification_item,
    qualification_in_progress,
)
from .quality import adapt_overlap, record_gold_answer, reference_scores, schedule_refresh
from .queue import pick_production, unseen_items
from .review_queue import queue_for_review

# Statuses that may take production tasks; a flagged rater keeps rating while a manager looks.
PRODUCTION_STATUSES = frozenset({RaterStatus.CERTIFIED, RaterStatus.FLAGGED})

# A rater holds at most this many live leases: the image on screen and the one preloaded.
MAX_LIVE_LEASES = 2
MAX_TIME_SPENT_MS = 24 * 3600 * 1000


# --- projects ------------------------------------------------------------------------------


def get_or_create_project(
    name: str, *, overlap: int | None = None, guidelines: str | None = None
) -> tuple[Project, bool]:
    defaults: dict[str, object] = {}
    if overlap is not None:
        if overlap < 1:
            raise errors.WorkflowError("overlap must be at least 1")
        defaults["overlap"] = overlap
    if guidelines is not None:
        defaults["guidelines"] = guidelines
    return Project.objects.get_or_create(name=name, defaults=defaults)


def add_images(
    project: Project, images: Iterable[Image], *, kind: ItemKind = ItemKind.PRODUCTION
) -> int:
    """Queue images in a project (each once); returns how many were new to it."""
    ids = {img.pk for img in images}
    present = set(
        ProjectImage.objects.filter(project=project, image_id__in=ids).values_list(
            "image_id", flat=True
        )
    )
    target = project.overlap if kind == ItemKind.PRODUCTION else 0
    new = [
        ProjectImage(project=project, image_id=i, target=target, kind=kind)
        for i in sorted(ids - present)
    ]
    ProjectImage.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
    return len(new)


# --- leases -------------------------------------------------------------------------------


def reclaim_expired(
    project: Project | int, *, now: datetime | None = None, limit: int = 500
) -> int:
    """Turn a project's expired leases into freed slots; returns how many were freed."""
    now = now or timezone.now()
    project_id = project.pk if isinstance(project, Project) else project
    # Only production leases hold a slot; a reference item's lease waits for its rater.
    due = Q(status=AssignmentStatus.ACTIVE, expires_at__lte=now)
    return _end_leases(
        Assignment.objects.filter(
            due, project_id=project_id, project_image__kind=ItemKind.PRODUCTION
        ),
        due,
        now=now,
        limit=limit,
    )


def release_leases(
    project: Project, rater: AbstractBaseUser, *, now: datetime | None = None
) -> int:
    """End all of a rater's live leases in the project (they left it): the slots of production
    images go back to the queue at once. Returns how many were ended."""
    now = now or timezone.now()
    live = Q(status=AssignmentStatus.ACTIVE)
    return _end_leases(
        Assignment.objects.filter(live, project=project, rater=rater), live, now=now, limit=None
    )


def _end_leases(candidates, still: Q, *, now: datetime, limit: int | None) -> int:
    """Mark the leases `candidates` finds expired, freeing the slots of production ones.

    The image rows are locked first (the one lock order), then the leases are read again
    under the locks with `still`: a submit or skip may have ended some of them meanwhile."""
    rows = candidates.values_list("id", "project_image_id")
    stale = list(rows[:limit] if limit is not None else rows)
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
        ended = list(
            Assignment.objects.select_for_update()
            .filter(still, id__in=[a for a, _ in stale])
            .values_list("id", "project_image_id", "project_image__kind")
        )
        if not ended:
            return 0
        Assignment.objects.filter(id__in=[a for a, _, _ in ended]).update(
            status=AssignmentStatus.EXPIRED, finished_at=now
        )
        slots = Counter(pi for _, pi, kind in ended if kind == ItemKind.PRODUCTION)
        for pi_id, n in slots.items():
            ProjectImage.objects.filter(pk=pi_id).update(leased=F("leased") - n)
    return len(ended)


def _lock_rater(project_id: int, rater: AbstractBaseUser) -> Membership:
    """Lock the rater's membership (serialising their own requests), with its project.

    Only the membership row is locked (`of`): locking the project would serialise everyone.
    """
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(project_id=project_id, user=rater)
        .first()
    )
    if membership is not None and membership.role in RATING_ROLES:
        membership.user = rater  # already loaded: spare later reads a query for it
        return membership
    # A non-member gets the very answer a missing project gives: they learn nothing of it.
    if membership is None:
        raise errors.ProjectNotFound(f"project {project_id} does not exist")
    raise errors.NotAMember(f"role '{membership.role}' does not rate in this project")


# Expired leases are swept lazily by next(), at most once per project and process in this
# window of the (logical) clock; leases last minutes, so a sweep per request would be waste.
# A pick that comes back empty always sweeps and tries again before it answers "nothing".
RECLAIM_EVERY = timedelta(seconds=2)
_last_reclaim: dict[int, datetime] = {}


def _reclaim_if_due(project_id: int, now: datetime, *, force: bool = False) -> bool:
    """Sweep the project's expired leases unless this process did so just now (or `force`)."""
    last = _last_reclaim.get(project_id)
    if not force and last is not None and last <= now < last + RECLAIM_EVERY:
        return False
    reclaim_expired(project_id, now=now)
    _last_reclaim[project_id] = now
    return True


def next_task(
    project: Project | int,
    rater: AbstractBaseUser,
    *,
    exclude: Iterable[int] = (),
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Assignment | None:
    """The rater's next lease in `project` (a project or its id), or None when nothing is left.

    Rules: the rater's own live lease comes back first (oldest first, skipping `exclude`, the
    leases the client already shows); an image never goes to the same rater twice; completed
    ratings + live leases never exceed the image's target; started images come before fresh
    ones; expired leases free their slot. Where the project has a qualification track, a
    candidate gets its training then test items first; certified raters get hidden gold
    items at the project's gold rate (`rng` decides, for tests).
    """
    now = now or timezone.now()
    exclude = [int(i) for i in exclude]
    project_id = project.pk if isinstance(project, Project) else int(project)
    swept = _reclaim_if_due(project_id, now)
    assignment, queue_empty = _lease_next(project_id, rater, exclude, now, rng or random)
    if queue_empty and not swept:
        # Outside the first transaction: the sweep locks images, and the rater's row is free.
        _reclaim_if_due(project_id, now, force=True)
        assignment, _ = _lease_next(project_id, rater, exclude, now, rng or random)
    return assignment


def _lease_next(
    project_id: int,
    rater: AbstractBaseUser,
    exclude: list[int],
    now: datetime,
    rng: random.Random,
) -> tuple[Assignment | None, bool]:
    """One attempt of next_task: (the lease or None, whether the queue had nothing to give)."""
    with transaction.atomic():
        membership = _lock_rater(project_id, rater)
        project = membership.project
        # Qualification leases wait for the candidate; gold expires like production, or a
        # lease handed back with its expiry in the past would give gold away.
        live = Assignment.objects.filter(
            Q(expires_at__gt=now)
            | Q(project_image__kind__in=(ItemKind.TRAINING, ItemKind.TEST)),
            project_id=project_id,
            rater=rater,
            status=AssignmentStatus.ACTIVE,
        )
        # One query for both rules: the oldest own live lease not on screen, and the cap.
        held = list(
            live.select_related("image", "project_image").order_by("created_at", "id")[
                : MAX_LIVE_LEASES + len(exclude)
            ]
        )
        own = next((a for a in held if a.pk not in exclude), None)
        if own is not None:
            return own, False
        if not project.is_active or len(held) >= MAX_LIVE_LEASES:
            return None, False
        item = _pick_item(project, membership, rng)
        if item is None:
            return None, True
        if item.kind == ItemKind.PRODUCTION:
            ProjectImage.objects.filter(pk=item.pk).update(leased=F("leased") + 1)
        assignment = Assignment.objects.create(
            project=project,
            project_image=item,
            image_id=item.image_id,
            rater=rater,
            expires_at=now + timedelta(minutes=project.lease_minutes),
        )
        if "image" in item._state.fields_cache:  # fetched with the queue row: no extra query
            assignment.image = item.image
        return assignment, False


def _pick_item(project: Project, membership: Membership, rng: random.Random) -> ProjectImage | None:
    """Which image a rater gets next: qualification first, then production mixed with gold."""
    rater = membership.user
    if membership.status == RaterStatus.CANDIDATE and has_qualification_track(project):
        item = next_qualification_item(project, rater)
        if item is not None:
            return item
        if qualification_in_progress(project, rater):
            return None  # the last item is still on the rater's screen
        membership = finish_qualification(membership)
    if membership.status not in PRODUCTION_STATUSES:
        raise errors.NotCertified(_status_message(membership))
    if project.gold_rate > 0 and rng.random() < project.gold_rate:
        gold = unseen_items(project, rater, ItemKind.GOLD).order_by("?").first()
        if gold is not None:
            return gold
    return pick_production(project.pk, rater)


def _status_message(membership: Membership) -> str:
    reason = f": {membership.status_reason}" if membership.status_reason else ""
    if membership.status == RaterStatus.CANDIDATE:
        return "you are not certified for this project yet" + reason
    return f"your rating in this project is {membership.status}{reason}"


# --- submit and skip ----------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitResult:
    rating: Rating
    created: bool  # False when this was a retry of an earlier submit with the same request id
    feedback: dict[str, float | None] | None = None  # reference scores, for training items


def _replay(existing: Rating, rater: AbstractBaseUser, assignment_id: int) -> SubmitResult:
    if existing.rater_id != rater.pk or existing.assignment_id != assignment_id:
        raise errors.Conflict("this request_id was already used for a different rating")
    return SubmitResult(existing, created=False, feedback=_training_feedback(existing))


def _training_feedback(rating: Rating) -> dict[str, float | None] | None:
    item = rating.assignment.project_image
    if item.kind != ItemKind.TRAINING:
        return None
    return reference_scores(item)


def _lock_for_finish(
    assignment_id: int, rater: AbstractBaseUser, now: datetime, **annotations: object
) -> tuple[ProjectImage, Assignment]:
    """Lock the lease's image counters then the lease (the one lock order), check the owner,
    and settle a lease that ran out unreclaimed. Call inside a transaction.

    The image row is found through the lease in the same query, so finishing a lease costs
    two locking reads; `annotations` ride along on the lease's read.
    """
    item = (
        ProjectImage.objects.select_for_update(no_key=True)
        .filter(pk__in=Assignment.objects.filter(pk=assignment_id).values("project_image_id"))
        .first()
    )
    if item is None:
        raise errors.LeaseNotFound(f"assignment {assignment_id} does not exist")
    # `of`: the project comes along for its settings but is not locked (that would serialise
    # every rater of the project).
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("project")
        .annotate(**annotations)
        .get(pk=assignment_id)
    )
    if assignment.rater_id != rater.pk:
        # As if it did not exist: other raters' leases are none of this rater's business.
        raise errors.LeaseNotFound(f"assignment {assignment_id} does not exist")
    assignment.project_image = item
    if (
        item.kind == ItemKind.PRODUCTION
        and assignment.status == AssignmentStatus.ACTIVE
        and assignment.expires_at <= now
    ):
        # Settle it now, as the reclaimer would have: whatever the caller does next (a late
        # submit, a skip, a refusal) starts from consistent counters.
        assignment.status = AssignmentStatus.EXPIRED
        assignment.finished_at = now
        assignment.save(update_fields=["status", "finished_at"])
        item.leased -= 1
        item.save(update_fields=["leased"])
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
    request_id, clean = _validate_submission(scores, request_id, time_spent_ms)
    now = now or timezone.now()
    earlier = Rating.objects.filter(request_id=request_id).values("id")[:1]
    try:
        with transaction.atomic():
            # Under the locks a retry of this very request has either committed or not begun:
            # the lease's read also says whether a rating with this request_id exists.
            item, assignment = _lock_for_finish(
                assignment_id, rater, now, earlier_rating=Subquery(earlier)
            )
            if assignment.earlier_rating is not None:
                return _replay(
                    Rating.objects.get(pk=assignment.earlier_rating), rater, assignment_id
                )
            _refuse_finished_lease(assignment)
            late = assignment.status == AssignmentStatus.EXPIRED
            if late:
                _refuse_former_member(assignment)
            if item.kind == ItemKind.PRODUCTION:
                _count_production_rating(item, late=late)
            _complete_lease(assignment, now)
            rating = Rating.objects.create(
                project_id=assignment.project_id,
                image_id=assignment.image_id,
                rater=rater,
                assignment=assignment,
                time_spent_ms=_time_spent(assignment, now, time_spent_ms),
                request_id=request_id,
                late=late,
                **{k: clean[k] for k in DIMENSION_KEYS},
            )
            _apply_quality_rules(rating, item, assignment.project)
    except IntegrityError:
        # Only reachable when the same request_id raced in for a different lease.
        existing = Rating.objects.filter(request_id=request_id).first()
        if existing is not None:
            return _replay(existing, rater, assignment_id)
        raise
    return SubmitResult(rating, created=True, feedback=_training_feedback(rating))


def _validate_submission(
    scores: Mapping[str, object], request_id: uuid.UUID | str, time_spent_ms: int | None
) -> tuple[uuid.UUID, dict[str, float | None]]:
    """The request id as a UUID and the scores checked against the standard, or InvalidRating."""
    try:
        request_id = uuid.UUID(str(request_id))
    except ValueError:
        raise errors.InvalidRating(f"request_id {request_id!r} is not a UUID") from None
    try:
        clean = validate_scores(scores)
    except StandardError as exc:
        raise errors.InvalidRating(str(exc)) from None
    if time_spent_ms is not None and not 0 <= time_spent_ms <= MAX_TIME_SPENT_MS:
        raise errors.InvalidRating(f"time_spent_ms must be within 0..{MAX_TIME_SPENT_MS}")
    return request_id, clean


def _refuse_finished_lease(assignment: Assignment) -> None:
    """A lease already rated or skipped takes no rating (an expired one may, see below)."""
    if assignment.status == AssignmentStatus.COMPLETED:
        raise errors.Conflict("you have already rated this image")
    if assignment.status == AssignmentStatus.SKIPPED:
        raise errors.Conflict("you skipped this image; it cannot be rated now")


def _refuse_former_member(assignment: Assignment) -> None:
    """A late rating counts only from someone still in the project: removing a member ends
    their leases, and those must not come back as ratings."""
    if not Membership.objects.filter(
        project_id=assignment.project_id, user_id=assignment.rater_id
    ).exists():
        raise errors.NotAMember(f"you are no longer a member of '{assignment.project.name}'")


def _count_production_rating(item: ProjectImage, *, late: bool) -> None:
    """Turn the lease's slot into a completed rating (item locked). A late rating (its lease
    expired and was freed) counts only while the image still has a slot open."""
    if late:
        if item.target - item.completed - item.leased <= 0:
            raise errors.Conflict(
                "your lease expired and the image already has enough ratings; "
                "the rating was not recorded"
            )
    else:
        item.leased -= 1
    item.completed += 1
    item.consensus_stale = True
    item.save(update_fields=["completed", "leased", "consensus_stale"])
    # The consensus follows without anyone remembering: a debounced refresh once the rating
    # is committed (in-process when there is no broker).
    project_id = item.project_id
    transaction.on_commit(lambda: schedule_refresh(project_id))


def _complete_lease(assignment: Assignment, now: datetime) -> None:
    assignment.status = AssignmentStatus.COMPLETED
    assignment.finished_at = now
    assignment.save(update_fields=["status", "finished_at"])


def _time_spent(assignment: Assignment, now: datetime, reported_ms: int | None) -> int:
    """What the client reported, else the lease's age (capped)."""
    if reported_ms is None:
        reported_ms = min(
            int((now - assignment.created_at).total_seconds() * 1000), MAX_TIME_SPENT_MS
        )
    return max(0, reported_ms)


def _apply_quality_rules(rating: Rating, item: ProjectImage, project: Project) -> None:
    """What a new rating sets off, by the kind of item it rates."""
    if item.kind == ItemKind.PRODUCTION:
        adapt_overlap(item, project)
    elif item.kind == ItemKind.GOLD:
        record_gold_answer(rating, item)
    elif item.kind == ItemKind.TEST:
        finish_qualification_if_done(project.pk, rating.rater)


def skip_assignment(
    assignment_id: int,
    rater: AbstractBaseUser,
    reason: str,
    *,
    text: str = "",
    now: datetime | None = None,
) -> tuple[Skip, bool]:
    """Pass on a lease (and flag the image unless the reason is a plain skip).

    Idempotent: skipping the same lease again returns the first skip.
    """
    if reason not in SkipReason.values:
        raise errors.WorkflowError(
            f"unknown reason {reason!r}; expected one of {', '.join(SkipReason.values)}"
        )
    text = (text or "").strip()
    if reason == SkipReason.OTHER and not text:
        raise errors.WorkflowError("reason 'other' needs a text saying what is wrong")
    now = now or timezone.now()
    with transaction.atomic():
        item, assignment = _lock_for_finish(assignment_id, rater, now)
        if assignment.status == AssignmentStatus.SKIPPED:
            return Skip.objects.get(assignment=assignment), False
        if assignment.status == AssignmentStatus.COMPLETED:
            raise errors.Conflict("you have already rated this image")
        if assignment.status == AssignmentStatus.ACTIVE and item.kind == ItemKind.PRODUCTION:
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
        if skip.is_flag:
            queue_for_review(item.project_id, item.image_id, [f"flag:{reason}"])
    return skip, True
