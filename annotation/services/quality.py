"""Writes for quality control: reference items, certification, gold, statistics, consensus.

The numbers themselves come from `annotation.agreement` (pure numpy); this module loads
ratings, calls it, and stores what it found: rater figures on their Membership, consensus
labels per image, agreement per project, and review items where a person should look.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from scipy import stats

from curation.models import Image
from humanbeauty.standard import BY_KEY, DIMENSION_KEYS, DIMENSIONS

from .. import agreement
from ..models import (
    AuditEvent,
    ConsensusLabel,
    ItemKind,
    Membership,
    Project,
    ProjectImage,
    ProjectStats,
    RaterStatus,
    Rating,
    Reference,
)
from .workflow import WorkflowError

REFERENCE_KINDS = (ItemKind.GOLD, ItemKind.TRAINING, ItemKind.TEST)


def audit(
    project: Project,
    actor: AbstractBaseUser | None,
    action: str,
    *,
    subject: AbstractBaseUser | None = None,
    image: Image | int | None = None,
    **details: object,
) -> AuditEvent:
    image_id = image.pk if isinstance(image, Image) else image
    return AuditEvent.objects.create(
        project=project,
        actor=actor,
        action=action,
        subject=subject,
        image_id=image_id,
        details=details,
    )


# --- reference items ----------------------------------------------------------------------


def set_references(
    project: Project,
    rows: Iterable[tuple[Image, Mapping[str, float | None]]],
    kind: ItemKind,
    *,
    actor: AbstractBaseUser | None = None,
) -> tuple[int, list[str]]:
    """Make images gold, training or test items of `project` with these reference scores.

    Returns (items set, errors). An image already rated or leased in production cannot
    become a reference item (its ratings would silently leave the consensus): it is reported
    and the other rows are kept. Creating the first training/test item starts a
    qualification track: members certified only because there was none become candidates.
    """
    if kind not in REFERENCE_KINDS:
        raise WorkflowError(f"reference items are {', '.join(REFERENCE_KINDS)}, not {kind}")
    starts_track = (
        kind != ItemKind.GOLD
        and not ProjectImage.objects.filter(
            project=project, kind__in=[ItemKind.TRAINING, ItemKind.TEST]
        ).exists()
    )
    count, errors = 0, []
    with transaction.atomic():
        for image, scores in rows:
            item = (
                ProjectImage.objects.select_for_update()
                .filter(project=project, image=image)
                .first()
            )
            if item is None:
                item = ProjectImage.objects.create(
                    project=project, image=image, target=0, kind=kind
                )
            elif item.kind == ItemKind.PRODUCTION and (item.completed or item.leased):
                errors.append(f"image {image.pk} already has production ratings or leases")
                continue
            elif (
                item.kind != kind and Rating.objects.filter(assignment__project_image=item).exists()
            ):
                errors.append(f"image {image.pk} was already answered as a {item.kind} item")
                continue
            else:
                item.kind, item.target = kind, 0
                item.save(update_fields=["kind", "target"])
            Reference.objects.update_or_create(item=item, defaults=dict(scores))
            count += 1
        if starts_track and count:
            Membership.objects.filter(project=project, certified_via="auto").update(
                status=RaterStatus.CANDIDATE, certified_via=""
            )
        audit(project, actor, f"set_{kind}", count=count, errors=len(errors))
    return count, errors


def reference_scores(item: ProjectImage) -> dict[str, float | None] | None:
    ref = Reference.objects.filter(item=item).first()
    return ref.scores if ref else None


# --- certification --------------------------------------------------------------------------


def _mean_abs_error(a: Mapping[str, float | None], b: Mapping[str, float | None]) -> float | None:
    errors = [abs(a[k] - b[k]) for k in DIMENSION_KEYS if a[k] is not None and b[k] is not None]
    return sum(errors) / len(errors) if errors else None


def evaluate_qualification(project: Project, membership: Membership) -> dict:
    """The pass rule on the candidate's test answers: per-dimension MAE and Spearman."""
    pairs = [
        (rating.scores, reference)
        for rating in Rating.objects.filter(
            project=project, rater=membership.user, assignment__project_image__kind=ItemKind.TEST
        ).select_related("assignment__project_image__reference")
        for reference in [rating.assignment.project_image.reference.scores]
    ]
    n_test = ProjectImage.objects.filter(project=project, kind=ItemKind.TEST).count()
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
    from .workflow import qualification_left

    membership = (
        Membership.objects.select_for_update()
        .select_related("project")
        .get(project_id=project_id, user=rater)
    )
    if membership.status == RaterStatus.CANDIDATE and not qualification_left(
        membership.project, rater
    ):
        finish_qualification(membership)


def set_rater_status(
    project: Project,
    user: AbstractBaseUser,
    status: RaterStatus | str,
    *,
    actor: AbstractBaseUser,
    reason: str = "",
) -> Membership:
    """A manager's hand decision (certify, revoke, pause, resume), always audited."""
    status = RaterStatus(status)
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update().filter(project=project, user=user).first()
        )
        if membership is None:
            raise WorkflowError(f"{user} is not a member of '{project.name}'")
        before = membership.status
        membership.status = status
        membership.status_reason = reason
        if status == RaterStatus.CERTIFIED:
            membership.certified_via = "manager"
        membership.save(update_fields=["status", "status_reason", "certified_via"])
        audit(project, actor, f"rater_{status}", subject=user, before=before, reason=reason)
    return membership


# --- gold -----------------------------------------------------------------------------------


def record_gold_answer(rating: Rating, item: ProjectImage) -> Membership | None:
    """Update the rater's running accuracy on gold; flag or pause them below the threshold."""
    reference = reference_scores(item)
    error = _mean_abs_error(rating.scores, reference) if reference else None
    if error is None:
        return None
    project = Project.objects.get(pk=rating.project_id)
    membership = Membership.objects.select_for_update().get(project=project, user=rating.rater)
    membership.gold_n += 1
    membership.gold_abs_error_sum += error
    mae = membership.gold_abs_error_sum / membership.gold_n
    failing = membership.gold_n >= project.gold_min_n and mae > project.gold_max_mae
    fields = ["gold_n", "gold_abs_error_sum"]
    if failing and membership.status == RaterStatus.CERTIFIED:
        membership.status = (
            RaterStatus.PAUSED if project.pause_on_gold_failure else RaterStatus.FLAGGED
        )
        membership.status_reason = (
            f"gold MAE {mae:.3f} over {membership.gold_n} gold items exceeds {project.gold_max_mae}"
        )
        fields += ["status", "status_reason"]
        audit(
            project,
            None,
            f"rater_{membership.status}_by_gold",
            subject=rating.rater,
            gold_mae=mae,
            gold_n=membership.gold_n,
        )
    elif (
        not failing
        and membership.status == RaterStatus.FLAGGED
        and "gold" in (membership.status_reason)
    ):
        membership.status, membership.status_reason = RaterStatus.CERTIFIED, ""
        fields += ["status", "status_reason"]
    membership.save(update_fields=fields)
    return membership


# --- adaptive overlap -------------------------------------------------------------------------


def image_disagreement(project_id: int, image_id: int) -> float | None:
    """Mean over dimensions of the standard deviation of an image's production ratings."""
    rows = np.array(
        Rating.objects.filter(project_id=project_id, image_id=image_id).values_list(
            *DIMENSION_KEYS
        ),
        dtype=float,
    )
    if len(rows) < 2:
        return None
    with np.errstate(invalid="ignore"):
        stds = np.nanstd(rows, axis=0, ddof=1)
    stds = stds[~np.isnan(stds)]
    return float(stds.mean()) if stds.size else None


def adapt_overlap(item: ProjectImage, project: Project) -> bool:
    """Ask for one more rater where an image's ratings disagree (item must be locked).

    Only once all wanted ratings are in, and never beyond the project's max_overlap.
    """
    if not project.max_overlap or item.target >= project.max_overlap:
        return False
    if item.completed < item.target:
        return False
    spread = image_disagreement(item.project_id, item.image_id)
    if spread is None or spread <= project.disagreement_threshold:
        return False
    ProjectImage.objects.filter(pk=item.pk).update(target=F("target") + 1)
    item.target += 1
    return True


# --- statistics refresh -------------------------------------------------------------------


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@dataclass
class RefreshReport:
    ratings: int
    images_updated: int
    raters_excluded: list[str]
    review_items: int


def refresh_statistics(project: Project, *, only_stale: bool = True) -> RefreshReport:
    """Recompute rater figures, screening, consensus (of stale images) and agreement."""
    from .review import queue_for_review

    rows = list(
        Rating.objects.filter(
            project=project,
            assignment__project_image__kind=ItemKind.PRODUCTION,
            assignment__project_image__excluded=False,
        ).values_list("image_id", "rater_id", *DIMENSION_KEYS)
    )
    memberships = {m.user_id: m for m in Membership.objects.filter(project=project)}
    if not rows:
        ProjectStats.objects.update_or_create(
            project=project, defaults={"agreement": {}, "n_ratings": 0}
        )
        return RefreshReport(0, 0, [], 0)
    table = np.array([r[2:] for r in rows], dtype=float)
    image_ids = [r[0] for r in rows]
    rater_ids = [r[1] for r in rows]
    per_dim = {}
    for j, key in enumerate(DIMENSION_KEYS):
        ratings, image_keys, rater_keys = agreement.LongRatings.from_pairs(
            image_ids, rater_ids, table[:, j]
        )
        per_dim[key] = (ratings, agreement.rater_stats(ratings))

    # Rater figures pooled over dimensions (every dimension shares one indexing), screening.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a rater with no figure on a dimension
        bias = np.nanmean([st.bias for _, st in per_dim.values()], axis=0)
        spread = np.nanmean([st.spread for _, st in per_dim.values()], axis=0)
        corr = np.nanmean([st.corr_with_others for _, st in per_dim.values()], axis=0)
    if project.screening == "correlation":
        excluded = ~np.isnan(corr) & (corr < project.screening_min_corr)
    elif project.screening == "bt500":
        votes = np.sum([agreement.bt500_rejected(r) for r, _ in per_dim.values()], axis=0)
        excluded = votes > len(DIMENSION_KEYS) / 2
    else:
        excluded = np.zeros(len(rater_keys), dtype=bool)
    changed = False
    updates = []
    for idx, user_id in enumerate(rater_keys):
        m = memberships.get(int(user_id))
        if m is None:
            continue
        changed |= m.excluded != bool(excluded[idx])
        m.bias, m.spread = _finite(bias[idx]), _finite(spread[idx])
        m.corr_with_others, m.excluded = _finite(corr[idx]), bool(excluded[idx])
        updates.append(m)
    Membership.objects.bulk_update(updates, ["bias", "spread", "corr_with_others", "excluded"])

    # Consensus of the images whose ratings (or whose raters' inclusion) changed.
    items = ProjectImage.objects.filter(project=project, kind=ItemKind.PRODUCTION, excluded=False)
    if only_stale and not changed:
        items = items.filter(consensus_stale=True)
    wanted = dict(items.values_list("image_id", "id"))
    position = {int(img): i for i, img in enumerate(image_keys)}
    included = ~excluded
    columns = {}
    for key, (ratings, st) in per_dim.items():
        columns[key] = agreement.consensus(
            ratings, included, st.bias if project.bias_correction else None
        )
    labels, reviews = [], 0
    for image_id in wanted:
        i = position.get(image_id)
        if i is None:
            continue
        scores: dict[str, dict | None] = {}
        for key, c in columns.items():
            if c.n[i] == 0 or c.is_not_applicable()[i]:
                scores[key] = None
            else:
                scores[key] = {"mos": float(c.mos[i]), "std": float(c.std[i]), "n": int(c.n[i])}
        stds = [s["std"] for s in scores.values() if s and s["n"] >= 2]
        max_std = max(stds) if stds else None
        mean_std = sum(stds) / len(stds) if stds else None
        inconsistent = inconsistent_parents(scores, project.consistency_tolerance)
        labels.append(
            ConsensusLabel(
                project=project,
                image_id=image_id,
                scores=scores,
                max_std=max_std,
                n_raters=max((s["n"] for s in scores.values() if s), default=0),
                inconsistent=inconsistent,
            )
        )
        reasons = [f"inconsistent:{p}" for p in inconsistent]
        if mean_std is not None and mean_std > project.disagreement_threshold:
            reasons.append("disagreement")
        if reasons:
            reviews += queue_for_review(project.pk, image_id, reasons)
    ConsensusLabel.objects.bulk_create(
        labels,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["project", "image"],
        update_fields=["scores", "max_std", "n_raters", "inconsistent", "updated_at"],
    )
    ProjectImage.objects.filter(id__in=wanted.values()).update(consensus_stale=False)

    # Agreement per dimension over every production rating.
    figures = {}
    for key, (ratings, _) in per_dim.items():
        present = ratings.present()
        counts = np.bincount(present.image, minlength=present.n_images)
        k = max(2, int(project.overlap))
        icc_1, icc_k = agreement.icc2(agreement.slot_table(ratings, k))
        figures[key] = {
            "krippendorff_alpha": _finite(agreement.krippendorff_alpha_interval(ratings)),
            "icc2_1": _finite(icc_1),
            "icc2_k": _finite(icc_k),
            "mean_pairwise_srcc": _finite(agreement.mean_pairwise_spearman(ratings)),
            "n_images": int(np.sum(counts >= 2)),
        }
    ProjectStats.objects.update_or_create(
        project=project, defaults={"agreement": figures, "n_ratings": len(rows)}
    )
    excluded_names = [
        memberships[int(u)].user.username
        for u, e in zip(rater_keys, excluded, strict=True)
        if e and int(u) in memberships
    ]
    return RefreshReport(len(rows), len(labels), excluded_names, reviews)


def inconsistent_parents(scores: Mapping[str, dict | None], tolerance: float) -> list[str]:
    """Parents whose MOS is further than `tolerance` from the mean of their children's MOS."""
    out = []
    for dim in DIMENSIONS:
        if dim.is_leaf or scores.get(dim.key) is None:
            continue
        children = [scores[c]["mos"] for c in BY_KEY[dim.key].children if scores.get(c)]
        if children and abs(scores[dim.key]["mos"] - sum(children) / len(children)) > tolerance:
            out.append(dim.key)
    return out


# --- reference files --------------------------------------------------------------------------


def parse_reference_csv(text: str) -> tuple[list[tuple[Image, dict]], list[str]]:
    """Rows of a reference CSV (`image` + the 12 keys) → (good rows, one error per bad row).

    `image` is an image id or a path as imported; an empty cell or "na"/"null" means not
    applicable. Bad rows are reported by line number; good rows are kept.
    """
    import csv
    import io

    from humanbeauty.standard import StandardError, validate_scores

    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [k for k in ("image", *DIMENSION_KEYS) if k not in header]
    if missing:
        raise WorkflowError(f"the CSV header lacks: {', '.join(missing)}")
    unknown = [h for h in header if h not in ("image", *DIMENSION_KEYS)]
    if unknown:
        raise WorkflowError(f"unknown CSV column(s): {', '.join(unknown)}")
    rows, errors = [], []
    for line, record in enumerate(reader, start=2):
        ref = (record.get("image") or "").strip()
        try:
            image = _find_image(ref)
            scores = {}
            for key in DIMENSION_KEYS:
                cell = (record.get(key) or "").strip()
                scores[key] = None if cell.lower() in ("", "na", "n/a", "null") else float(cell)
            rows.append((image, validate_scores(scores)))
        except (WorkflowError, StandardError) as exc:
            errors.append(f"line {line} ({ref or 'no image'}): {exc}")
        except ValueError as exc:
            errors.append(f"line {line} ({ref or 'no image'}): not a number: {exc}")
    return rows, errors


def _find_image(ref: str) -> Image:
    if not ref:
        raise WorkflowError("the image cell is empty")
    if ref.isdigit():
        image = Image.objects.filter(pk=int(ref)).first()
        if image is not None:
            return image
    matches = list(Image.objects.filter(original_path=ref)[:2])
    if len(matches) > 1:
        raise WorkflowError(f"path {ref!r} matches several images; use the image id")
    if not matches:
        raise WorkflowError(f"no image with id or imported path {ref!r}")
    return matches[0]
