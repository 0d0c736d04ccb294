"""Reviewers' audited decisions on the images queued for review (queued by `review_queue`)."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from humanbeauty.standard import StandardError, validate_scores

from ..models import (
    ConsensusLabel,
    Project,
    ProjectImage,
    ReviewDecision,
    ReviewItem,
    ReviewStatus,
)
from .audit import audit
from .errors import Conflict, WorkflowError
from .quality import ensure_fresh


def decide(
    review: ReviewItem,
    reviewer: AbstractBaseUser,
    decision: ReviewDecision | str,
    *,
    final_scores: Mapping[str, float | None] | None = None,
    note: str = "",
) -> ReviewItem:
    """Record a reviewer's decision on a queued image, with its effect and an audit event."""
    decision = ReviewDecision(decision)
    if decision == ReviewDecision.ACCEPT:
        # Accept the consensus of every rating there is, not of those before the last refresh.
        ensure_fresh(Project.objects.get(pk=review.project_id), figures=False)
    with transaction.atomic():
        review = ReviewItem.objects.select_for_update().get(pk=review.pk)
        if review.status == ReviewStatus.RESOLVED:
            raise Conflict(f"this review was already decided ({review.decision})")
        item = ProjectImage.objects.select_for_update().get(
            project_id=review.project_id, image_id=review.image_id
        )
        details: dict[str, object] = {"reasons": review.reasons}
        details.update(_apply(decision, item, final_scores))
        review.status = ReviewStatus.RESOLVED
        review.decision = decision
        review.note = note
        review.reviewer = reviewer
        review.decided_at = timezone.now()
        review.save()
        audit(
            review.project,
            reviewer,
            f"review_{decision}",
            image=review.image_id,
            note=note,
            **details,
        )
    return review


def _apply(
    decision: ReviewDecision,
    item: ProjectImage,
    final_scores: Mapping[str, float | None] | None,
) -> dict[str, object]:
    """The decision's effect on the (locked) image and its label; details for the audit."""
    label = ConsensusLabel.objects.filter(project_id=item.project_id, image_id=item.image_id)
    if decision == ReviewDecision.SET_FINAL:
        return {"final": _set_final(item, label.first(), final_scores)}
    if decision == ReviewDecision.ACCEPT:
        if not label.exists():
            raise WorkflowError("there is no consensus to accept yet")
    elif decision == ReviewDecision.MORE_RATINGS:
        ProjectImage.objects.filter(pk=item.pk).update(target=F("target") + 1)
    elif decision == ReviewDecision.EXCLUDE:
        item.excluded = True
        item.save(update_fields=["excluded"])
        # Leave the queue (no new leases once the live ones end) and the consensus.
        ProjectImage.objects.filter(pk=item.pk).update(target=F("completed") + F("leased"))
        label.delete()
    return {}


def _set_final(
    item: ProjectImage,
    label: ConsensusLabel | None,
    final_scores: Mapping[str, float | None] | None,
) -> dict[str, float | None]:
    """The reviewer's 12 scores become the image's final label (made if there is none yet)."""
    if final_scores is None:
        raise WorkflowError("set_final needs final_scores for all 12 dimensions")
    try:
        final = validate_scores(final_scores)
    except StandardError as exc:
        raise WorkflowError(str(exc)) from None
    label = label or ConsensusLabel(
        project_id=item.project_id, image_id=item.image_id, scores={}, n_raters=0
    )
    label.final = final
    label.save()
    return final
