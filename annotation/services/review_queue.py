"""What gets queued for review: a rater's flag, the statistics refresh's findings.

Reviewers' decisions on the queued images are in `review`.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import IntegrityError, transaction

from ..models import ReviewItem, ReviewStatus


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
