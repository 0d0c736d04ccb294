"""Writes for quality control: reference items, gold, managers' decisions about raters,
adaptive overlap, statistics and consensus.

The numbers themselves come from `annotation.agreement` (pure numpy); this module loads
ratings, calls it, and stores what it found: rater figures on their Membership, consensus
labels per image, agreement per project, and review items where a person should look.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from celery import current_app
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from curation.models import Image
from humanbeauty.jsonsafe import FiniteJSONEncoder
from humanbeauty.roles import RATING_ROLES, Role
from humanbeauty.standard import (
    BY_KEY,
    DIMENSION_KEYS,
    DIMENSIONS,
    StandardError,
    validate_scores,
)

from .. import agreement
from ..models import (
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
from .audit import audit
from .errors import ManagerNotAllowed, WorkflowError
from .qualification import has_qualification_track
from .review_queue import queue_many_for_review

REFERENCE_KINDS = (ItemKind.GOLD, ItemKind.TRAINING, ItemKind.TEST)


# --- reference items ----------------------------------------------------------------------


def set_references(
    project: Project,
    rows: Iterable[tuple[Image, Mapping[str, float | None]]],
    kind: ItemKind,
    *,
    actor: AbstractBaseUser | None = None,
    refused: Iterable[str] = (),
) -> tuple[int, list[str]]:
    """Make images gold, training or test items of `project` with these reference scores.

    Returns (items set, errors: `refused`, the rows refused before, then these). An image
    already rated or leased in production cannot become a reference item (its ratings would
    silently leave the consensus): it is reported and the other rows are kept. A file of which
    no row can be used is refused whole (WorkflowError with the errors), with nothing written.
    Creating the first training/test item starts a qualification track: members certified
    only because there was none become candidates.
    """
    if kind not in REFERENCE_KINDS:
        raise WorkflowError(f"reference items are {', '.join(REFERENCE_KINDS)}, not {kind}")
    starts_track = kind != ItemKind.GOLD and not has_qualification_track(project)
    count, errors = 0, list(refused)
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
        if not count:  # rolls back what the refused rows touched: nothing to audit
            raise WorkflowError(
                f"no row could be used ({len(errors)} refused): nothing was set", errors=errors
            )
        if starts_track:
            Membership.objects.filter(project=project, certified_via="auto").update(
                status=RaterStatus.CANDIDATE, certified_via=""
            )
        audit(project, actor, f"set_{kind}", count=count, errors=len(errors))
    return count, errors


def reference_scores(item: ProjectImage) -> dict[str, float | None] | None:
    ref = Reference.objects.filter(item=item).first()
    return ref.scores if ref else None


# --- managers' decisions about raters --------------------------------------------------------


def _rater_for_manager(
    project: Project, user: AbstractBaseUser, actor: AbstractBaseUser
) -> Membership:
    """The locked membership of the rater a manager decides about, once the decision is theirs
    to take: the subject rates in the project; nobody decides about themselves; only an admin
    (of the project or the platform) decides about an admin. Checked before anything changes."""
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        raise WorkflowError(f"{user} is not a member of '{project.name}'")
    if membership.role not in RATING_ROLES:
        raise WorkflowError(f"{user} is a {membership.role}, who does not rate in this project")
    if getattr(actor, "is_superuser", False):
        return membership
    if user.pk == actor.pk:
        raise ManagerNotAllowed("managers do not decide about their own rating status")
    actor_role = (
        Membership.objects.filter(project=project, user=actor)
        .values_list("role", flat=True)
        .first()
    )
    if membership.role == Role.ADMIN and actor_role != Role.ADMIN:
        raise ManagerNotAllowed("only an admin decides about an admin's rating status")
    return membership


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
        membership = _rater_for_manager(project, user, actor)
        before = membership.status
        membership.status = status
        membership.status_reason = reason
        if status == RaterStatus.CERTIFIED:
            membership.certified_via = "manager"
        membership.save(update_fields=["status", "status_reason", "certified_via"])
        audit(project, actor, f"rater_{status}", subject=user, before=before, reason=reason)
    return membership


def set_rater_exclusion(
    project: Project,
    user: AbstractBaseUser,
    decision: str,
    *,
    actor: AbstractBaseUser,
    reason: str = "",
) -> Membership:
    """A manager includes or excludes a rater from the consensus, or hands the choice back
    to screening ("auto"). The decision wins over screening until undone; always audited.
    The consensus of the rater's images is recomputed before this returns."""
    if decision not in ("include", "exclude", "auto"):
        raise WorkflowError("decision is one of include, exclude, auto")
    reason = reason.strip()
    if decision == "exclude" and not reason:
        raise WorkflowError("excluding a rater needs a reason (it is shown with the exclusion)")
    with transaction.atomic():
        membership = _rater_for_manager(project, user, actor)
        before = membership.excluded
        membership.exclusion_override = "" if decision == "auto" else decision
        if decision == "exclude":
            membership.exclusion_reason = reason
        membership.save(update_fields=["exclusion_override", "exclusion_reason"])
        action = {"include": "rater_included", "exclude": "rater_excluded",
                  "auto": "rater_screening_restored"}[decision]
        audit(project, actor, action, subject=user, before_excluded=before, reason=reason)
    refresh_statistics(project, figures=True)
    membership.refresh_from_db()
    return membership


# --- gold -----------------------------------------------------------------------------------


def _mean_abs_error(a: Mapping[str, float | None], b: Mapping[str, float | None]) -> float | None:
    errors = [abs(a[k] - b[k]) for k in DIMENSION_KEYS if a[k] is not None and b[k] is not None]
    return sum(errors) / len(errors) if errors else None


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
#
# Two parts with different costs. The consensus of an image depends only on that image's
# ratings and on who is included (and, with bias correction, each rater's bias per
# dimension): it is recomputed for the stale images alone, so its cost grows with the
# ratings that arrived, not with the project. Rater figures, screening and agreement need
# every rating of the project: they are recomputed when asked (`figures=True`, a full
# refresh, ensure_fresh) or when older than FIGURES_MAX_AGE with new ratings since. When
# they change who is included (or a bias used by the consensus), the images of those raters
# are recomputed in the same refresh, so a label always equals what a full refresh gives
# with the figures of its time.
#
# A submitted rating marks its image stale and, after commit, schedules one debounced
# refresh per project (schedule_refresh); with no broker the refresh runs in-process at once.

REFRESH_LOCK = 0x4842_5246  # "HBRF": pg_advisory_xact_lock(REFRESH_LOCK, project_id)
# Optional settings (read at call time): QUALITY_REFRESH_DEBOUNCE_S (default 5),
# QUALITY_FIGURES_MAX_AGE_S (120), QUALITY_REFRESH_QUEUE (Celery's default queue).
FIGURES_MAX_AGE = timedelta(seconds=getattr(settings, "QUALITY_FIGURES_MAX_AGE_S", 120))
# A queued refresh that has not started this long after it was due is taken as lost.
LOST_AFTER = timedelta(minutes=10)
CHUNK = 5000

log = logging.getLogger(__name__)


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@dataclass
class RefreshReport:
    ratings: int  # production ratings of the project
    images_updated: int  # consensus labels written
    raters_excluded: list[str]
    review_items: int
    figures: bool = False  # rater figures, screening and agreement were recomputed
    screening_warning: str = ""


def _production_ratings(project: Project):
    return Rating.objects.filter(
        project=project,
        assignment__project_image__kind=ItemKind.PRODUCTION,
        assignment__project_image__excluded=False,
    )


@dataclass
class _Rows:
    """Long-form ratings, sorted by (image, rater) so every sum runs in one order."""

    image: np.ndarray
    rater: np.ndarray
    table: np.ndarray  # (n, 12), NaN = not applicable

    @classmethod
    def load(cls, queryset) -> _Rows:
        raw = list(queryset.values_list("image_id", "rater_id", *DIMENSION_KEYS))
        if not raw:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 12)))
        arr = np.array(raw, dtype=float)
        image, rater = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
        order = np.lexsort((rater, image))
        return cls(image[order], rater[order], arr[order, 2:])

    def subset(self, keep: np.ndarray) -> _Rows:
        return _Rows(self.image[keep], self.rater[keep], self.table[keep])


def _lock_refresh(project_id: int) -> None:
    """One refresh per project at a time (PostgreSQL; SQLite serialises writers anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [REFRESH_LOCK, project_id])


def _figures_due(stats: ProjectStats, n_ratings: int, now) -> bool:
    if stats.figures_computed_at is None:
        return True
    return n_ratings != stats.n_ratings and now - stats.figures_computed_at >= FIGURES_MAX_AGE


def refresh_statistics(
    project: Project, *, only_stale: bool = True, figures: bool | None = None
) -> RefreshReport:
    """Recompute the consensus of stale images (all with only_stale=False) and, when due,
    rater figures, screening and agreement (always with only_stale=False or figures=True)."""
    now = timezone.now()
    with transaction.atomic():
        _lock_refresh(project.pk)
        stats, _ = ProjectStats.objects.get_or_create(project=project)
        ratings = _production_ratings(project)
        n_ratings = ratings.count()
        if figures is None:
            figures = _figures_due(stats, n_ratings, now)
        figures = figures or not only_stale
        memberships = {
            m.user_id: m for m in Membership.objects.filter(project=project).select_related("user")
        }
        # Figures need every rating; so does recomputing every image.
        everything = _Rows.load(ratings) if figures else None
        touched: set[int] = set()
        warning = stats.screening.get("warning", "") if stats.screening else ""
        if figures:
            touched, warning = _refresh_figures(project, stats, everything, memberships, now)
        wanted = _images_to_recompute(project, only_stale, touched, everything)
        if everything is not None:
            rows = everything.subset(np.isin(everything.image, list(wanted)))
        else:
            rows = _load_images(ratings, sorted(wanted))
        labels, reviews = _consensus_labels(project, rows, memberships)
        review_items = queue_many_for_review(project.pk, reviews) if reviews else 0
        _upsert_labels(project, labels, now)
        stats.consensus_computed_at = now
        stats.refresh_runs += 1
        stats.save()
    # Outside the transaction (no lock held while waiting on raters' rows): an image is fresh
    # when no rating arrived after the read above (its counter is still what was counted).
    _clear_stale(project, {label["image_id"]: label["n_ratings"] for label in labels}, wanted)
    excluded_names = sorted(m.user.username for m in memberships.values() if m.excluded)
    return RefreshReport(n_ratings, len(labels), excluded_names, review_items, figures, warning)


def _images_to_recompute(
    project: Project, only_stale: bool, touched: set[int], everything: _Rows | None
) -> set[int]:
    """The stale images (every image without only_stale), and every image rated by a rater
    whose inclusion (or bias, with bias correction) just changed."""
    items = ProjectImage.objects.filter(project=project, kind=ItemKind.PRODUCTION, excluded=False)
    if only_stale:
        items = items.filter(consensus_stale=True)
    wanted = set(items.values_list("image_id", flat=True))
    if touched:
        wanted |= set(np.unique(everything.image[np.isin(everything.rater, list(touched))]))
    return wanted


_LABEL_FIELDS = ["scores", "max_std", "n_raters", "n_ratings", "inconsistent", "updated_at"]


def _upsert_labels(project: Project, labels: list[dict], now) -> None:
    """Insert or update labels. On PostgreSQL the rows travel as one JSON document (Django's
    bulk upsert sends JSON cells as text arrays, which psycopg quotes character by character:
    30 s for 50,000 labels against 2 s this way)."""
    if connection.vendor != "postgresql":
        ConsensusLabel.objects.bulk_create(
            [ConsensusLabel(project=project, updated_at=now, **label) for label in labels],
            batch_size=1000, update_conflicts=True,
            unique_fields=["project", "image"], update_fields=_LABEL_FIELDS,
        )
        return
    table = ConsensusLabel._meta.db_table
    for i in range(0, len(labels), CHUNK):
        rows = labels[i : i + CHUNK]
        try:
            document = json.dumps(rows, allow_nan=False)
        except ValueError:  # a non-finite number: stored as null, with a warning
            document = json.dumps(rows, cls=FiniteJSONEncoder)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table}
                    (project_id, image_id, scores, max_std, n_raters, n_ratings, inconsistent,
                     updated_at)
                SELECT %s, r.image_id, r.scores, r.max_std, r.n_raters, r.n_ratings,
                       r.inconsistent, %s
                FROM jsonb_to_recordset(%s::jsonb) AS r(
                    image_id bigint, scores jsonb, max_std double precision, n_raters integer,
                    n_ratings integer, inconsistent jsonb)
                ON CONFLICT (project_id, image_id) DO UPDATE SET
                    scores = EXCLUDED.scores, max_std = EXCLUDED.max_std,
                    n_raters = EXCLUDED.n_raters, n_ratings = EXCLUDED.n_ratings,
                    inconsistent = EXCLUDED.inconsistent, updated_at = EXCLUDED.updated_at
                """,
                [project.pk, now, document],
            )


def _load_images(ratings, image_ids: list[int]) -> _Rows:
    parts = [_Rows.load(ratings.filter(image_id__in=image_ids[i : i + CHUNK]))
             for i in range(0, len(image_ids), CHUNK)]
    if not parts:
        return _Rows.load(ratings.none())
    rows = _Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("image", "rater",
                                                                              "table")))
    order = np.lexsort((rows.rater, rows.image))
    return rows.subset(order)


def _clear_stale(project: Project, seen: dict[int, int], wanted: set[int]) -> None:
    by_count: dict[int, list[int]] = {}
    for image_id in wanted:
        by_count.setdefault(seen.get(image_id, 0), []).append(image_id)
    for count, image_ids in by_count.items():
        for i in range(0, len(image_ids), CHUNK):
            ProjectImage.objects.filter(
                project=project,
                image_id__in=image_ids[i : i + CHUNK],
                consensus_stale=True,
                completed__lte=count,
            ).update(consensus_stale=False)
    # Images a reviewer excluded have no consensus to keep fresh.
    ProjectImage.objects.filter(project=project, excluded=True, consensus_stale=True).update(
        consensus_stale=False
    )


def _consensus_labels(
    project: Project, rows: _Rows, memberships: Mapping[int, Membership]
) -> tuple[list[dict], dict[int, list[str]]]:
    """Labels (ConsensusLabel's fields) of the images in `rows` over the included raters;
    review reasons per image."""
    if not len(rows.image):
        return [], {}
    image_keys, n_ratings, cells = _consensus_cells(project, rows, memberships)
    labels, reviews = [], {}
    for i, image_id in enumerate(int(x) for x in image_keys):
        scores: dict[str, dict | None] = {
            key: None if none[i] else {"mos": mos[i], "std": std[i], "n": n[i]}
            for key, (none, mos, std, n) in cells.items()
        }
        label, reasons = _label(project, image_id, scores, n_ratings[i])
        labels.append(label)
        if reasons:
            reviews[image_id] = reasons
    return labels, reviews


def _consensus_cells(
    project: Project, rows: _Rows, memberships: Mapping[int, Membership]
) -> tuple[np.ndarray, list[int], dict[str, tuple[list, list, list, list]]]:
    """The images (keys), their rating counts, and per dimension the consensus columns as
    plain lists (not applicable, mos, std, n): indexing numpy one element at a time is slow."""
    ratings_of = {}
    for j, key in enumerate(DIMENSION_KEYS):
        ratings_of[key], image_keys, rater_keys = agreement.LongRatings.from_pairs(
            rows.image, rows.rater, rows.table[:, j]
        )
    members = [memberships.get(int(u)) for u in rater_keys]
    included = np.array([m is None or not m.excluded for m in members])
    n_ratings = np.bincount(
        ratings_of[DIMENSION_KEYS[0]].image, minlength=len(image_keys)
    ).tolist()
    cells = {}
    for key, ratings in ratings_of.items():
        bias = None
        if project.bias_correction:
            bias = np.array(
                [np.nan if m is None else (m.dimension_bias or {}).get(key, np.nan)
                 for m in members],
                dtype=float,
            )
        c = agreement.consensus(ratings, included, bias)
        cells[key] = (
            ((c.n == 0) | c.is_not_applicable()).tolist(), c.mos.tolist(), c.std.tolist(),
            c.n.tolist(),
        )
    return image_keys, n_ratings, cells


def _label(
    project: Project, image_id: int, scores: dict[str, dict | None], n_ratings: int
) -> tuple[dict, list[str]]:
    """One image's label and why it goes to review: a parent far from its children's mean,
    or raters who disagree more than the project tolerates."""
    stds = [s["std"] for s in scores.values() if s and s["n"] >= 2]
    inconsistent = inconsistent_parents(scores, project.consistency_tolerance)
    label = {
        "image_id": image_id,
        "scores": scores,
        "max_std": max(stds) if stds else None,
        "n_raters": max((s["n"] for s in scores.values() if s), default=0),
        "n_ratings": n_ratings,
        "inconsistent": inconsistent,
    }
    reasons = [f"inconsistent:{p}" for p in inconsistent]
    if stds and sum(stds) / len(stds) > project.disagreement_threshold:
        reasons.append("disagreement")
    return label, reasons


@dataclass
class _RaterFigures:
    """Per dimension the ratings and rater statistics; per rater (in `raters` order) the
    means over the dimensions and the images they share with others."""

    per_dim: dict[str, tuple[agreement.LongRatings, agreement.RaterStats]]
    raters: np.ndarray  # user ids
    bias: np.ndarray
    spread: np.ndarray
    corr: np.ndarray
    shared: np.ndarray

    @classmethod
    def compute(cls, rows: _Rows) -> _RaterFigures:
        per_dim = {}
        for j, key in enumerate(DIMENSION_KEYS):
            ratings, _, raters = agreement.LongRatings.from_pairs(
                rows.image, rows.rater, rows.table[:, j]
            )
            per_dim[key] = (ratings, agreement.rater_stats(ratings))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a rater without a figure somewhere
            means = {
                name: np.nanmean([getattr(st, name) for _, st in per_dim.values()], axis=0)
                for name in ("bias", "spread", "corr_with_others")
            }
        shared = agreement.shared_images(per_dim[DIMENSION_KEYS[0]][0])
        return cls(
            per_dim, raters, means["bias"], means["spread"], means["corr_with_others"], shared
        )


@dataclass
class _ScreeningResult:
    verdict: agreement.Screening
    votes: np.ndarray  # BT.500: dimensions on which each rater is rejected
    names: dict[int, str]
    warning: str  # for the manager when the cap stopped screening; "" else

    def flagged_names(self, raters: np.ndarray) -> list[str]:
        return [
            self.names.get(int(u), str(u))
            for u, c in zip(raters, self.verdict.candidates, strict=True)
            if c
        ]


def _refresh_figures(
    project: Project,
    stats: ProjectStats,
    rows: _Rows,
    memberships: Mapping[int, Membership],
    now,
) -> tuple[set[int], str]:
    """Rater figures, screening and agreement over every production rating; stores them.

    Returns the raters whose inclusion (or, with bias correction, bias) changed, and the
    screening warning for the manager ("" when none).
    """
    if not len(rows.image):
        stats.agreement, stats.n_ratings, stats.screening = {}, 0, {}
        stats.figures_computed_at = now
        return set(), ""
    figures = _RaterFigures.compute(rows)
    screening = _screen_raters(project, figures, memberships)
    touched = _store_rater_figures(project, figures, screening, memberships)
    stats.agreement, stats.n_ratings = _agreement_figures(project, figures), len(rows.image)
    stats.figures_computed_at = now
    stats.screening = {
        "method": project.screening,
        "min_shared": project.screening_min_shared,
        "candidates": sorted(screening.flagged_names(figures.raters)),
        "capped": screening.verdict.capped,
        "warning": screening.warning,
    }
    return touched, screening.warning


def _screen_raters(
    project: Project, figures: _RaterFigures, memberships: Mapping[int, Membership]
) -> _ScreeningResult:
    """The project's screening method names candidates; `agreement.screen` applies the
    guard rails (enough shared images, never a majority)."""
    n_raters = len(figures.raters)
    votes = np.zeros(n_raters, dtype=int)
    if project.screening == "correlation":
        candidates = ~np.isnan(figures.corr) & (figures.corr < project.screening_min_corr)
    elif project.screening == "bt500":
        votes = np.sum(
            [agreement.bt500_rejected(r) for r, _ in figures.per_dim.values()], axis=0
        )
        candidates = votes > len(DIMENSION_KEYS) / 2
    else:
        candidates = np.zeros(n_raters, dtype=bool)
    verdict = agreement.screen(candidates, figures.shared, project.screening_min_shared)
    names = {
        int(u): memberships[int(u)].user.username
        for u in figures.raters
        if int(u) in memberships
    }
    result = _ScreeningResult(verdict, votes, names, "")
    if verdict.capped:
        flagged = result.flagged_names(figures.raters)
        result.warning = (
            f"low agreement everywhere: screening would exclude {len(flagged)} of "
            f"{n_raters} raters ({', '.join(flagged)}), so it excluded nobody; "
            "look at the raters and decide by hand"
        )
    return result


def _store_rater_figures(
    project: Project, figures: _RaterFigures, screening: _ScreeningResult,
    memberships: Mapping[int, Membership],
) -> set[int]:
    """Write each member's figures, screening note and inclusion (a manager's standing
    decision wins over screening); returns whose inclusion or bias changed."""
    verdict = screening.verdict
    touched: set[int] = set()
    updates = []
    for idx, user_id in enumerate(int(u) for u in figures.raters):
        m = memberships.get(user_id)
        if m is None:
            continue
        before = (m.excluded, m.dimension_bias)
        m.bias, m.spread = _finite(figures.bias[idx]), _finite(figures.spread[idx])
        m.corr_with_others = _finite(figures.corr[idx])
        m.dimension_bias = {k: _finite(st.bias[idx]) for k, (_, st) in figures.per_dim.items()}
        m.shared_images = int(figures.shared[idx])
        finding = _screening_finding(
            project, m, screening.votes[idx], bool(verdict.candidates[idx])
        )
        if not verdict.eligible[idx]:
            m.screening_note = (
                f"not screened yet: shares {m.shared_images} images with other raters; "
                f"screening starts at {project.screening_min_shared}"
            )
        elif verdict.capped and verdict.candidates[idx]:
            m.screening_note = f"{finding}; not excluded: {screening.warning.split(':')[0]}"
        else:
            m.screening_note = finding
        if m.exclusion_override == "include":
            m.excluded, m.exclusion_source, m.exclusion_reason = False, "manager", ""
        elif m.exclusion_override == "exclude":
            m.excluded, m.exclusion_source = True, "manager"
        elif verdict.excluded[idx]:
            m.excluded, m.exclusion_source, m.exclusion_reason = True, "screening", finding
        else:
            m.excluded, m.exclusion_source, m.exclusion_reason = False, "", ""
        if before[0] != m.excluded or (project.bias_correction and before[1] != m.dimension_bias):
            touched.add(user_id)
        updates.append(m)
    Membership.objects.bulk_update(
        updates,
        ["bias", "spread", "corr_with_others", "dimension_bias", "shared_images",
         "screening_note", "excluded", "exclusion_source", "exclusion_reason"],
    )
    return touched


def _agreement_figures(project: Project, figures: _RaterFigures) -> dict[str, dict]:
    """Per dimension: Krippendorff's alpha, ICC(2,1) and ICC(2,k) over k = the overlap (at
    least 2) rating slots, the mean pairwise Spearman, and the images rated at least twice."""
    out = {}
    k = max(2, int(project.overlap))
    for key, (ratings, _) in figures.per_dim.items():
        present = ratings.present()
        counts = np.bincount(present.image, minlength=present.n_images)
        icc_1, icc_k = agreement.icc2(agreement.slot_table(ratings, k))
        out[key] = {
            "krippendorff_alpha": _finite(agreement.krippendorff_alpha_interval(ratings)),
            "icc2_1": _finite(icc_1),
            "icc2_k": _finite(icc_k),
            "mean_pairwise_srcc": _finite(agreement.mean_pairwise_spearman(ratings)),
            "n_images": int(np.sum(counts >= 2)),
        }
    return out


def _screening_finding(project: Project, m: Membership, votes: int, flagged: bool) -> str:
    over = f"over {m.shared_images} shared images"
    if project.screening == "correlation":
        if m.corr_with_others is None:
            return f"no correlation with the other raters yet ({over})"
        sign = "<" if flagged else ">="
        return (
            f"correlation with the other raters {m.corr_with_others:.2f} {sign} "
            f"{project.screening_min_corr} {over}"
        )
    if project.screening == "bt500":
        return f"ITU-R BT.500 rejects them on {votes} of {len(DIMENSION_KEYS)} dimensions ({over})"
    return "screening is off for this project"


def ensure_fresh(project: Project, *, figures: bool = True) -> RefreshReport | None:
    """Refresh now, with the task's code, if anything a reader would see is out of date.

    Out of date: an image whose ratings changed since its consensus, or (with `figures`)
    rater figures and screening computed before the latest ratings. None when nothing was.
    Call before reading labels (releases, the review queue).
    """
    stale = ProjectImage.objects.filter(project=project, consensus_stale=True).exists()
    figures_old = False
    if figures:
        stats = ProjectStats.objects.filter(project=project).first()
        n_ratings = _production_ratings(project).count()
        figures_old = n_ratings > 0 and (
            stats is None
            or stats.figures_computed_at is None
            or stats.n_ratings != n_ratings
        )
    if not stale and not figures_old:
        return None
    return refresh_statistics(project, figures=figures_old or None)


def ensure_statistics(project: Project) -> None:
    """Compute the project's statistics if it never had any (its first reader asks); from
    then on they are kept up by the debounced refresh after ratings and the beat task."""
    if not ProjectStats.objects.filter(project=project).exists():
        refresh_statistics(project)


def schedule_refresh(project_id: int) -> None:
    """After a commit that made images stale: one refresh per project and debounce window.

    With a broker the refresh is queued a debounce interval ahead, and ratings meanwhile find it
    already queued (one UPDATE that matches nothing); the task clears the mark when it starts,
    so ratings during a refresh queue the next one. With no broker (tasks run in-process, as
    in the quick start) it runs at once: the refresh of a few stale images is cheap. A failure
    here never fails the rating: the image stays stale for the beat task and ensure_fresh.
    """
    # The one import inside a function: tasks call these services (the usual pair).
    from ..tasks import refresh_project_statistics

    try:
        if current_app.conf.task_always_eager:
            refresh_project_statistics.apply(args=(project_id,))
            return
        now = timezone.now()
        debounce = timedelta(seconds=getattr(settings, "QUALITY_REFRESH_DEBOUNCE_S", 5))
        claimed = (
            ProjectStats.objects.filter(project_id=project_id)
            .filter(Q(refresh_due_at__isnull=True) | Q(refresh_due_at__lt=now - LOST_AFTER))
            .update(refresh_due_at=now + debounce)
        )
        if not claimed:
            _, claimed = ProjectStats.objects.get_or_create(
                project_id=project_id, defaults={"refresh_due_at": now + debounce}
            )
        if claimed:
            refresh_project_statistics.apply_async(
                (project_id,),
                countdown=debounce.total_seconds(),
                queue=getattr(settings, "QUALITY_REFRESH_QUEUE", None),
            )
    except Exception:
        log.exception("could not refresh project %s after a rating; it stays stale", project_id)


def run_scheduled_refresh(project_id: int, *, figures: bool | None = None) -> RefreshReport | None:
    """The refresh task's body: free the debounce mark first, then refresh."""
    ProjectStats.objects.filter(project_id=project_id).update(refresh_due_at=None)
    project = Project.objects.filter(pk=project_id).first()
    if project is None:  # deleted meanwhile
        return None
    return refresh_statistics(project, figures=figures)


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


def parse_reference_csv(
    text: str, within: QuerySet[Image]
) -> tuple[list[tuple[Image, dict]], list[str]]:
    """Rows of a reference CSV (`image` + the 12 keys) → (good rows, one error per bad row).

    `image` is an image id or a path as imported, looked up only among `within` (the images the
    caller may use: `selectors.reference_candidates`), and an image outside it is reported in
    the very words of a missing one, so the pool cannot be probed. An empty cell or "na"/"null"
    means not applicable. Bad rows are reported by line number; good rows are kept.
    """
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
            if any("\x00" in (cell or "") for cell in record.values() if isinstance(cell, str)):
                raise WorkflowError("the line holds a NUL character")
            image = _find_image(ref, within)
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


def _find_image(ref: str, within: QuerySet[Image]) -> Image:
    if not ref:
        raise WorkflowError("the image cell is empty")
    if ref.isdigit() and len(ref) <= 18:
        image = within.filter(pk=int(ref)).first()
        if image is not None:
            return image
    matches = list(within.filter(original_path=ref)[:2])
    if len(matches) > 1:
        raise WorkflowError(f"path {ref!r} matches several images; use the image id")
    if not matches:
        raise WorkflowError(f"no image with id or imported path {ref!r} that you may use here")
    return matches[0]
