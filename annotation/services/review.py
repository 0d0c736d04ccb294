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


def _merge_reasons(review: ReviewItem, reasons: list[str]) -> bool:
    """Add reasons to a (locked) review; reopen a decided one only for a reason it has not
    seen. True when something changed (the caller saves)."""
    new = sorted(set(review.reasons) | set(reasons))
    if review.status == ReviewStatus.RESOLVED:
        if set(reasons) <= set(review.reasons):
            return False
        review.status = ReviewStatus.OPEN
    elif new == review.reasons:
        return False
    review.reasons = new
    return True


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
        if not _merge_reasons(review, reasons):
            return False
        review.save(update_fields=["reasons", "status"])
        return True


def queue_many_for_review(project_id: int, reasons_by_image: Mapping[int, list[str]]) -> int:
    """queue_for_review for many images in a few queries (the statistics refresh)."""
    added = 0
    ids = sorted(reasons_by_image)
    with transaction.atomic():
        existing = {
            r.image_id: r
            for r in ReviewItem.objects.select_for_update()
            .filter(project_id=project_id, image_id__in=ids)
            .order_by("image_id")
        }
        missing = [i for i in ids if i not in existing]
        created = ReviewItem.objects.bulk_create(
            [
                ReviewItem(
                    project_id=project_id, image_id=i, reasons=sorted(set(reasons_by_image[i]))
                )
                for i in missing
            ],
            ignore_conflicts=True,
        )
        if missing:
            # Rows queued by someone else this very moment are merged like the others.
            mine = {(r.image_id, tuple(r.reasons)) for r in created}
            for r in ReviewItem.objects.select_for_update().filter(
                project_id=project_id, image_id__in=missing
            ):
                if (r.image_id, tuple(r.reasons)) in mine:
                    added += 1
                else:
                    existing[r.image_id] = r
        changed = [r for i, r in existing.items() if _merge_reasons(r, reasons_by_image[i])]
        ReviewItem.objects.bulk_update(changed, ["reasons", "status"])
    return added + len(changed)


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
    if decision == ReviewDecision.ACCEPT:
        # Accept the consensus of every rating there is, not of those before the last refresh.
        from ..models import Project
        from .quality import ensure_fresh

        ensure_fresh(Project.objects.get(pk=review.project_id), figures=False)
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
