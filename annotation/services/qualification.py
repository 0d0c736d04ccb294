"""Rater qualification: a candidate answers the project's training then test items, and the
pass rule on the test answers (per-dimension MAE and Spearman against the references)
certifies them or says why not. A project without training or test items has no track:
joining it is certification enough."""

from __future__ import annotations

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from scipy import stats

from humanbeauty.standard import DIMENSION_KEYS

from ..models import AssignmentStatus, ItemKind, Membership, Project, ProjectImage, RaterStatus
from .audit import audit
from .queue import unseen_items

TRACK_KINDS = (ItemKind.TRAINING, ItemKind.TEST)


def has_qualification_track(project: Project) -> bool:
    return project.items.filter(kind__in=TRACK_KINDS).exists()


def qualification_in_progress(project: Project, rater: AbstractBaseUser) -> bool:
    """Whether the rater holds an unanswered training or test item."""
    return project.assignments.filter(
        rater=rater, status=AssignmentStatus.ACTIVE, project_image__kind__in=TRACK_KINDS
    ).exists()


def qualification_left(project: Project, rater: AbstractBaseUser) -> bool:
    """Whether training or test items remain for the rater (answered or not)."""
    return (
        unseen_items(project, rater, ItemKind.TRAINING).exists()
        or unseen_items(project, rater, ItemKind.TEST).exists()
        or qualification_in_progress(project, rater)
    )


def next_qualification_item(project: Project, rater: AbstractBaseUser) -> ProjectImage | None:
    """The candidate's next unseen item: training first, then test."""
    return (
        unseen_items(project, rater, ItemKind.TRAINING).order_by("id").first()
        or unseen_items(project, rater, ItemKind.TEST).order_by("id").first()
    )


def evaluate_qualification(project: Project, membership: Membership) -> dict:
    """The pass rule on the candidate's test answers: per-dimension MAE and Spearman."""
    pairs = [
        (rating.scores, reference)
        for rating in project.ratings.filter(
            rater=membership.user, assignment__project_image__kind=ItemKind.TEST
        ).select_related("assignment__project_image__reference")
        for reference in [rating.assignment.project_image.reference.scores]
    ]
    n_test = project.items.filter(kind=ItemKind.TEST).count()
    per_dim: dict[str, dict[str, float | int | None]] = {}
    failures: list[str] = []
    for key in DIMENSION_KEYS:
        both = [
            (r[key], ref[key]) for r, ref in pairs if r[key] is not None and ref[key] is not None
        ]
        if not both:
            per_dim[key] = {"n": 0, "mae": None, "srcc": None}
            continue
        x, y = np.array(both).T
        mae = float(np.mean(np.abs(x - y)))
        srcc = (
            float(stats.spearmanr(x, y).statistic)
            if len(both) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
            else None
        )
        per_dim[key] = {"n": len(both), "mae": mae, "srcc": srcc}
        if mae > project.qual_max_mae:
            failures.append(f"{key} MAE {mae:.3f} > {project.qual_max_mae}")
        if srcc is not None and srcc < project.qual_min_srcc:
            failures.append(f"{key} SRCC {srcc:.2f} < {project.qual_min_srcc}")
    if len(pairs) < n_test:
        failures.insert(0, f"answered {len(pairs)} of {n_test} test items")
    return {
        "passed": not failures and bool(pairs),
        "n_test": len(pairs),
        "failures": failures,
        "dimensions": per_dim,
        "thresholds": {"max_mae": project.qual_max_mae, "min_srcc": project.qual_min_srcc},
    }


def finish_qualification(membership: Membership) -> Membership:
    """Apply the pass rule once the candidate has answered the whole track."""
    if membership.qualification_result is not None:
        return membership
    project = membership.project
    result = evaluate_qualification(project, membership)
    membership.qualification_result = result
    if result["passed"]:
        membership.status, membership.certified_via = RaterStatus.CERTIFIED, "test"
        membership.status_reason = ""
    else:
        membership.status_reason = "did not pass the qualification test: " + "; ".join(
            result["failures"][:4]
        )
    membership.save(
        update_fields=["qualification_result", "status", "certified_via", "status_reason"]
    )
    audit(
        project,
        membership.user,
        "qualification_passed" if result["passed"] else "qualification_failed",
        subject=membership.user,
        failures=result["failures"],
    )
    return membership


def finish_qualification_if_done(project_id: int, rater: AbstractBaseUser) -> None:
    """After a test answer: apply the pass rule at once if that was the last item."""
    membership = (
        Membership.objects.select_for_update()
        .select_related("project")
        .get(project_id=project_id, user=rater)
    )
    if membership.status == RaterStatus.CANDIDATE and not qualification_left(
        membership.project, rater
    ):
        finish_qualification(membership)
