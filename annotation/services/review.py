"""Writes for the review queue: what gets queued, and reviewers' audited decisions."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from humanbeauty.standard import StandardError, validate_scores

from ..models import (
    ConsensusLabel,
    ProjectImage,
    ReviewDecision,
    ReviewItem,
    ReviewStatus,
)
from .workflow import Conflict, WorkflowError


def queue_for_review(project_id: int, image_id: int, reasons: list[str]) -> bool:
    """Queue an image (or add reasons to its open review); True when something was added."""
    with transaction.atomic():
        review = (
            ReviewItem.objects.select_for_update()
            .filter(project_id=project_id, image_id=image_id)
            .first()
        )
        if review is None:
            try:
                with transaction.atomic():
                    ReviewItem.objects.create(
                        project_id=project_id, image_id=image_id, reasons=sorted(set(reasons))
                    )
                return True
            except IntegrityError:  # queued by someone else this very moment
                review = ReviewItem.objects.select_for_update().get(
                    project_id=project_id, image_id=image_id
                )
        new = sorted(set(review.reasons) | set(reasons))
        if review.status == ReviewStatus.RESOLVED:
            # A decided image comes back only for a reason the reviewer has not seen.
            if set(reasons) <= set(review.reasons):
                return False
            review.status = ReviewStatus.OPEN
        elif new == review.reasons:
            return False
        review.reasons = new
        review.save(update_fields=["reasons", "status"])
        return True


def decide(
    review: ReviewItem,
    reviewer: AbstractBaseUser,
    decision: ReviewDecision | str,
    *,
    final_scores: Mapping[str, float | None] | None = None,
    note: str = "",
) -> ReviewItem:
    """Record a reviewer's decision on a queued image, with its effect and an audit event."""
    from .quality import audit

    decision = ReviewDecision(decision)
    with transaction.atomic():
        review = ReviewItem.objects.select_for_update().get(pk=review.pk)
        if review.status == ReviewStatus.RESOLVED:
            raise Conflict(f"this review was already decided ({review.decision})")
        item = ProjectImage.objects.select_for_update().get(
            project_id=review.project_id, image_id=review.image_id
        )
        label = ConsensusLabel.objects.filter(
            project_id=review.project_id, image_id=review.image_id
        ).first()
        details: dict[str, object] = {"reasons": review.reasons}
        if decision == ReviewDecision.SET_FINAL:
            if final_scores is None:
                raise WorkflowError("set_final needs final_scores for all 12 dimensions")
            try:
                final = validate_scores(final_scores)
            except StandardError as exc:
                raise WorkflowError(str(exc)) from None
            label = label or ConsensusLabel(
                project_id=review.project_id, image_id=review.image_id, scores={}, n_raters=0
            )
            label.final = final
            label.save()
            details["final"] = final
        elif decision == ReviewDecision.ACCEPT:
            if label is None:
                raise WorkflowError("there is no consensus to accept yet")
        elif decision == ReviewDecision.MORE_RATINGS:
            ProjectImage.objects.filter(pk=item.pk).update(target=F("target") + 1)
        elif decision == ReviewDecision.EXCLUDE:
            item.excluded = True
            item.save(update_fields=["excluded"])
            # Leave the queue (no new leases once the live ones end) and the consensus.
            ProjectImage.objects.filter(pk=item.pk).update(target=F("completed") + F("leased"))
            ConsensusLabel.objects.filter(
                project_id=review.project_id, image_id=review.image_id
            ).delete()
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
