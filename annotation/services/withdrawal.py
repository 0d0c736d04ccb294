"""Withdrawing images from every rating project (takedown requests, `rights`): their queue
items, leases (open or not), skips, ratings, consensus labels, review items and guide
examples. Project progress is counted from the queue items, so deleting an image's item and
everything under it leaves every count right; the statistics are refreshed after commit.

Ratings are kept only as anonymised aggregates (`ratings="aggregate"`: per project, how many
ratings by how many raters, and each dimension's mean; no image, no rater) or not at all
(`"delete"`); the caller stores the aggregates it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Avg, Count

from humanbeauty.standard import DIMENSIONS

from ..models import (
    Assignment,
    AssignmentStatus,
    ConsensusLabel,
    GuideExample,
    Project,
    ProjectImage,
    Rating,
    ReviewItem,
    Skip,
)
from .audit import audit
from .quality import schedule_refresh

RATING_POLICIES = ("aggregate", "delete")


@dataclass
class ProjectAggregate:
    project_id: int
    project_name: str
    n_images: int
    n_ratings: int
    n_raters: int
    means: dict[str, dict[str, Any]]


@dataclass
class AnnotationWithdrawal:
    """Per image id, every place it was found in a project and what was done:
    [{"place", "what", "done"}]; the rating aggregates kept (policy "aggregate")."""

    places: dict[int, list[dict[str, str]]] = field(default_factory=dict)
    aggregates: list[ProjectAggregate] = field(default_factory=list)


def withdraw_images(
    image_ids: Sequence[int],
    *,
    ratings: str = "aggregate",
    actor: AbstractBaseUser | None = None,
    reason: str = "",
) -> AnnotationWithdrawal:
    """Take these images out of every project (in the caller's transaction, or one of its
    own); returns where they were and what was done. `reason` goes to each project's audit."""
    if ratings not in RATING_POLICIES:
        raise ValueError(f"ratings must be one of {', '.join(RATING_POLICIES)}, not {ratings!r}")
    out = AnnotationWithdrawal()
    ids = list(image_ids)
    with transaction.atomic():
        items = list(
            ProjectImage.objects.select_for_update()
            .filter(image_id__in=ids)
            .select_related("project")
            .order_by("project_id", "image_id")
        )
        projects = {item.project_id: item.project for item in items}
        for pid in sorted(projects | dict.fromkeys(_other_projects(ids))):
            project = projects.get(pid) or Project.objects.get(pk=pid)
            mine = [i for i in items if i.project_id == pid]
            _withdraw_from(project, mine, ids, ratings, out)
            audit(project, actor, "image_withdrawn", images=sorted(
                {i.image_id for i in mine}), reason=reason, ratings=ratings)
            transaction.on_commit(lambda pid=pid: schedule_refresh(pid))
    return out


def _other_projects(ids: list[int]) -> set[int]:
    """Projects that hold rows of the images without a queue item (none in practice)."""
    found: set[int] = set()
    for model in (Rating, ReviewItem, ConsensusLabel, Skip):
        found.update(model.objects.filter(image_id__in=ids).values_list("project_id", flat=True))
    return found


def _note(out: AnnotationWithdrawal, image_id: int, place: str, what: str, done: str) -> None:
    out.places.setdefault(image_id, []).append({"place": place, "what": what, "done": done})


def _withdraw_from(project: Project, items: list[ProjectImage], ids: list[int],
                   ratings: str, out: AnnotationWithdrawal) -> None:
    name = f"project {project.name}"
    by_image = {item.image_id: item for item in items}
    leases = Assignment.objects.filter(project=project, image_id__in=ids)
    rated = Rating.objects.filter(project=project, image_id__in=ids)
    for image_id in sorted(set(ids)):
        item = by_image.get(image_id)
        if item is not None:
            _note(out, image_id, "project queue", name,
                  f"{item.kind} item removed (target {item.target}, {item.completed} done, "
                  f"{item.leased} leased)")
        mine = leases.filter(image_id=image_id)
        live = mine.filter(status=AssignmentStatus.ACTIVE).count()
        if mine.exists():
            _note(out, image_id, "leases", name,
                  f"{mine.count()} lease(s) deleted, {live} of them open")
        n = rated.filter(image_id=image_id).count()
        if n:
            _note(out, image_id, "ratings", name,
                  f"{n} rating(s) deleted" + (", kept as an anonymised aggregate"
                                              if ratings == "aggregate" else ""))
        review = ReviewItem.objects.filter(project=project, image_id=image_id).first()
        if review is not None:
            _note(out, image_id, "review queue", name,
                  f"{review.status} review item deleted ({', '.join(review.reasons)})")
        if item is not None:
            pinned = GuideExample.objects.filter(item=item).count()
            if pinned:
                _note(out, image_id, "guides", name, f"{pinned} pinned example(s) removed")
        if ConsensusLabel.objects.filter(project=project, image_id=image_id).exists():
            _note(out, image_id, "consensus", name, "consensus label deleted")
    if ratings == "aggregate" and rated.exists():
        stats = rated.aggregate(
            n=Count("id"), raters=Count("rater", distinct=True),
            images=Count("image", distinct=True),
            **{f"{d.key}__mean": Avg(d.key) for d in DIMENSIONS},
            **{f"{d.key}__n": Count(d.key) for d in DIMENSIONS},
        )
        out.aggregates.append(ProjectAggregate(
            project_id=project.pk, project_name=project.name, n_images=stats["images"],
            n_ratings=stats["n"], n_raters=stats["raters"],
            means={d.key: {"mean": stats[f"{d.key}__mean"], "n": stats[f"{d.key}__n"]}
                   for d in DIMENSIONS},
        ))
    rated.delete()
    Skip.objects.filter(project=project, image_id__in=ids).delete()
    leases.delete()
    ReviewItem.objects.filter(project=project, image_id__in=ids).delete()
    ConsensusLabel.objects.filter(project=project, image_id__in=ids).delete()
    ProjectImage.objects.filter(pk__in=[item.pk for item in items]).delete()
