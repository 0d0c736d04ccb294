"""Removing a request's confirmed images from everything (a `Removal` long job, run by
`rights.tasks.remove_confirmed_task`):

1. each published release that holds one gets its withdrawal notice (`withdrawn.jsonl`,
   `modeling.release.withdrawal`), which its download honours from then on;
2. in one transaction per batch: every project queue item, lease, skip, rating (kept as an
   anonymised aggregate or deleted: the setting TAKEDOWN_RATINGS), consensus label and review
   item (`annotation.services.withdrawal`); the release items (a later build never sees the
   image: it is gone from the pool); the pool rows and their clusters
   (`curation.services.removal`); the blocklist rows that keep the bytes and their
   near-duplicates out; the match's report of every place and what was done; the audit;
3. after commit, the stored files.

Idempotent: a redelivery or a resumed job skips the images already removed and deletes any
file a crash left behind.
"""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.services.withdrawal import RATING_POLICIES, withdraw_images
from core import jobs
from curation.services.removal import delete_stored, remove_images
from modeling.models import Release, ReleaseItem
from modeling.release import withdrawal
from modeling.services.releases import release_files

from ..models import (
    BlockedImage,
    Match,
    MatchDecision,
    Removal,
    RequestStatus,
    TakedownRequest,
    WithdrawnRatings,
)
from .errors import TakedownError
from .requests import record

RATINGS_SETTING = "TAKEDOWN_RATINGS"
DEFAULT_RATINGS = "aggregate"
BATCH = 50


def rating_policy() -> str:
    """What becomes of removed images' ratings: "aggregate" (kept only as anonymised
    aggregates per project) or "delete" (setting TAKEDOWN_RATINGS)."""
    policy = getattr(settings, RATINGS_SETTING, DEFAULT_RATINGS) or DEFAULT_RATINGS
    if policy not in RATING_POLICIES:
        raise TakedownError(
            f"{RATINGS_SETTING} must be one of {', '.join(RATING_POLICIES)}, not {policy!r}"
        )
    return policy


def remove_confirmed(removal_id: int) -> Removal:
    """The job's body: claim it, remove every confirmed image not yet removed, finish."""
    removal = jobs.claim_or_wait(Removal, removal_id)
    if removal is None:
        return Removal.objects.get(pk=removal_id)
    request = removal.request
    try:
        policy = rating_policy()
        todo = list(
            Match.objects.filter(request=request, decision=MatchDecision.CONFIRMED)
            .order_by("image_ref")
        )
        total = len(todo)
        done = sum(1 for m in todo if m.removed_at is not None)
        jobs.beat(Removal, removal_id, progress={"done": done, "total": total})
        left = [m for m in todo if m.removed_at is None]
        for at in range(0, len(left), BATCH):
            batch = left[at:at + BATCH]
            _remove_batch(request, removal, batch, policy)
            done += len(batch)
            jobs.beat(Removal, removal_id, progress={"done": done, "total": total})
        files = delete_stored(m.stored_name for m in todo)
        with transaction.atomic():
            TakedownRequest.objects.filter(pk=request.pk).update(
                status=RequestStatus.REMOVED, updated_at=timezone.now()
            )
            record(request, removal.created_by, "removal_finished", removal=removal.pk,
                   images=total, files_deleted_late=files)
            jobs.finish(Removal, removal_id, progress={"done": total, "total": total})
    except jobs.JobCancelled:
        pass  # what was removed stays removed; the rest waits for another removal
    except Exception as exc:
        jobs.fail(Removal, removal_id, str(exc))
        raise
    return Removal.objects.get(pk=removal_id)


def _notices(request: TakedownRequest, batch: list[Match]) -> dict[int, list[dict]]:
    """Withdrawal notices in every release that holds one of these images; per image id the
    places found. Written before the rows go (a notice lists files, which stay)."""
    places: dict[int, list[dict]] = defaultdict(list)
    by_id = {m.image_ref: m for m in batch}
    held = defaultdict(list)
    for release_id, image_id in ReleaseItem.objects.filter(
        image_id__in=list(by_id)
    ).values_list("release_id", "image_id"):
        held[release_id].append(image_id)
    now = timezone.now().isoformat()
    for release in Release.objects.filter(pk__in=list(held)).order_by("name", "created_at"):
        root = release_files(release)  # its folder, or its prefix of the media storage
        ids = sorted(held[release.pk])
        if not root.exists(withdrawal.MANIFEST):
            for i in ids:
                places[i].append({
                    "place": "release",
                    "what": f"{release.name} {release.version} ({release.status})",
                    "done": f"no manifest at {root}: no published files to withdraw",
                })
            continue
        files = withdrawal.image_files(root, [by_id[i].sha256 for i in ids])
        withdrawal.write_notice(root, [
            {"image_sha256": by_id[i].sha256.lower(), "image_id": i, "request": request.pk,
             "withdrawn_at": now, "files": files.get(by_id[i].sha256.lower(), [])}
            for i in ids
        ])
        for i in ids:
            n = len(files.get(by_id[i].sha256.lower(), []))
            places[i].append({
                "place": "release",
                "what": f"{release.name} {release.version} ({n} file(s))",
                "done": "listed in its withdrawn.jsonl; its download leaves the file(s) out",
            })
    return places


def _remove_batch(request: TakedownRequest, removal: Removal, batch: list[Match],
                  policy: str) -> None:
    ids = [m.image_ref for m in batch]
    places = _notices(request, batch)
    actor = removal.created_by
    with transaction.atomic():
        annotation = withdraw_images(ids, ratings=policy, actor=actor,
                                     reason=f"takedown request #{request.pk}")
        for agg in annotation.aggregates:
            WithdrawnRatings.objects.create(
                request=request, project_id=agg.project_id, project_name=agg.project_name,
                n_images=agg.n_images, n_ratings=agg.n_ratings, n_raters=agg.n_raters,
                means=agg.means,
            )
        ReleaseItem.objects.filter(image_id__in=ids).delete()
        pool = remove_images(ids)
        now = timezone.now()
        for m in batch:
            BlockedImage.objects.get_or_create(
                sha256=m.sha256, defaults={"phash": m.phash, "request": request}
            )
            m.places = [
                *pool.places.get(m.image_ref, []),
                *annotation.places.get(m.image_ref, []),
                *places.get(m.image_ref, []),
                {"place": "store", "what": m.stored_name, "done": "file deleted"},
                {"place": "blocklist", "what": f"sha256 {m.sha256[:16]}…, pHash",
                 "done": "refused at every door from now on, near-duplicates too"},
            ]
            m.removed_at = now
            m.save(update_fields=["places", "removed_at"])
            record(request, actor, "image_removed", removal=removal.pk, image_id=m.image_ref,
                   sha256=m.sha256, places=m.places, ratings=policy)
        transaction.on_commit(lambda: delete_stored(m.stored_name for m in batch))
