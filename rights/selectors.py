"""Reads for takedown requests: candidate pool images, the face-matching answer, the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Q, QuerySet

from curation.imaging.hashing import from_signed64
from curation.imaging.near_dup import DB_SCHEME, DEFAULT_K
from curation.models import Image, SourceItem

from .models import AuditEvent, Match, TakedownRequest

FACE_MATCHING_MISSING = (
    "face matching is not available: the platform has no face recognition model (its face "
    "stage only detects faces, with OpenCV's Haar cascades, and cannot tell whose face it is); "
    "matches are found by exact bytes and near-duplicate perceptual hashes"
)


def face_matching() -> dict[str, Any]:
    """Whether requests can be matched by face: a recognition model named by the setting
    TAKEDOWN_FACE_MODEL. None ships with the platform, so the answer says so."""
    model = getattr(settings, "TAKEDOWN_FACE_MODEL", "") or ""
    if not model:
        return {"available": False, "why": FACE_MATCHING_MISSING}
    return {"available": False, "why": f"face model {model!r} is set, but the platform has no "
                                       "face recognition code to run it; " + FACE_MATCHING_MISSING}


def pool_threshold() -> int:
    """The pool's near-duplicate threshold (bits of pHash), where curation keeps it."""
    return DEFAULT_K


@dataclass(frozen=True)
class Near:
    image_id: int
    distance: int
    of: int  # index of the query hash it is near


def near_duplicates(phashes: Sequence[int], *, k: int | None = None) -> list[Near]:
    """Pool images within `k` (default: the pool's threshold) of any of these unsigned
    pHashes, each with its smallest distance, found through the pHash band columns (no
    stored hash is scanned)."""
    k = pool_threshold() if k is None else k
    if not phashes:
        return []
    query = np.array([int(h) for h in phashes], dtype=np.uint64)
    where = Q()
    for i, band in enumerate(DB_SCHEME.bands):
        values = np.unique((band.keys(query)[:, None] ^ band.masks[None, :]).ravel())
        where |= Q(**{f"phash_b{i}__in": values.tolist()})
    rows = list(Image.objects.filter(where).values_list("id", "phash"))
    if not rows:
        return []
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    found = np.array([from_signed64(r[1]) for r in rows], dtype=np.uint64)
    dist = np.bitwise_count(query[:, None] ^ found[None, :]).astype(np.int64)
    best_of = dist.argmin(axis=0)
    best = dist.min(axis=0)
    return [Near(int(ids[j]), int(best[j]), int(best_of[j]))
            for j in np.nonzero(best <= k)[0]]


def images_by_file_name(names: Sequence[str]) -> dict[str, list[int]]:
    """Pool images whose imported path is, or ends in, each file name."""
    out: dict[str, list[int]] = {}
    for name in names:
        q = Q(original_path=name) | Q(original_path__endswith=f"/{name}")
        out[name] = sorted(Image.objects.filter(q).values_list("id", flat=True))
    return out


def images_by_source_record(records: Sequence[dict[str, str]]) -> dict[tuple[str, str], int | None]:
    """The pool image each source record (source name, path) links to (None: no such record,
    or not linked)."""
    out: dict[tuple[str, str], int | None] = {}
    for r in records:
        item = SourceItem.objects.filter(source__name=r["source"], path=r["path"]).first()
        out[(r["source"], r["path"])] = item.image_id if item is not None else None
    return out


def requests() -> QuerySet[TakedownRequest]:
    return TakedownRequest.objects.select_related("filed_by").order_by("-created_at", "-id")


def matches_of(request: TakedownRequest) -> QuerySet[Match]:
    return request.matches.select_related("decided_by").order_by("image_ref")


def _user(u) -> str | None:
    return u.get_username() if u is not None else None


def request_report(request: TakedownRequest) -> dict[str, Any]:
    """Everything about one request: what it named, the photos' hashes, every match with where
    it was found and what was done, the rating aggregates kept, the blocked hashes and the
    audit trail."""
    return {
        "id": request.pk,
        "status": request.status,
        "person": request.person,
        "contact": request.contact,
        "reason": request.reason,
        "filed_by": _user(request.filed_by),
        "created_at": request.created_at,
        "names": request.names,
        "photos": [
            {"label": p.label, "sha256": p.sha256, "width": p.width, "height": p.height}
            for p in request.photos.order_by("id")
        ],
        "matches": [
            {"id": m.pk, "image_id": m.image_ref, "sha256": m.sha256,
             "original_path": m.original_path, "how": m.how, "distance": m.distance,
             "evidence": m.evidence, "decision": m.decision,
             "decided_by": _user(m.decided_by), "decided_at": m.decided_at, "note": m.note,
             "removed_at": m.removed_at, "places": m.places}
            for m in matches_of(request)
        ],
        "rating_aggregates": [
            {"project": a.project_name, "images": a.n_images, "ratings": a.n_ratings,
             "raters": a.n_raters, "means": a.means}
            for a in request.rating_aggregates.order_by("id")
        ],
        "blocked": list(request.blocked.order_by("id").values_list("sha256", flat=True)),
        "removals": [
            {"id": r.pk, "status": r.status, "progress": r.progress, "error": r.error}
            for r in request.removals.order_by("id")
        ],
        "audit": [
            {"at": e.created_at, "actor": _user(e.actor), "action": e.action, "why": e.why,
             "details": e.details}
            for e in AuditEvent.objects.filter(request=request).select_related("actor")
            .order_by("created_at", "id")
        ],
    }


