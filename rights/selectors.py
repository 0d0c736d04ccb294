"""Reads for takedown requests: candidate pool images, the face-matching settings, answer and
search, the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from curation.imaging.hashing import from_signed64
from curation.imaging.near_dup import DB_SCHEME, DEFAULT_K
from curation.models import Image, SourceItem

from .faces import (
    EMBEDDING_DIM,
    SFACE_THRESHOLD,
    FaceModelError,
    FaceVectors,
    best_hits,
    load_embedder,
)
from .models import AuditEvent, FaceEmbedding, Match, TakedownRequest

FACE_MATCHING_MISSING = (
    "face matching is not available: the platform has no face recognition model configured "
    "(set TAKEDOWN_FACE_MODEL to the OpenCV Zoo SFace file face_recognition_sface_2021dec.onnx; "
    "the face stage alone only detects faces and cannot tell whose face it is); "
    "matches are found by exact bytes and near-duplicate perceptual hashes"
)
DEFAULT_FACE_INDEX_LIMIT = 100  # pool images one match request indexes (~0.1-0.3 s each)


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
             "similarity": m.similarity,
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




# --- faces (TAKEDOWN_FACE_MODEL) ---------------------------------------------------------------

@dataclass(frozen=True)
class FaceSettings:
    model: str  # path of the ONNX face model ("" none)
    threshold: float  # cosine similarity from which two faces are the same person
    index_limit: int  # pool images a match request may index itself before it asks for the command


def face_settings() -> FaceSettings:
    """The face-matching settings, checked: a threshold that is not a number in [-1, 1] or a
    limit under 1 is a FaceModelError (a configuration error), as a broken model file is."""
    model = str(getattr(settings, "TAKEDOWN_FACE_MODEL", "") or "").strip()
    raw = getattr(settings, "TAKEDOWN_FACE_THRESHOLD", SFACE_THRESHOLD)
    try:
        threshold = float(raw)
    except (TypeError, ValueError):
        raise FaceModelError(f"TAKEDOWN_FACE_THRESHOLD {raw!r} is not a number") from None
    if not -1.0 <= threshold <= 1.0:
        raise FaceModelError(f"TAKEDOWN_FACE_THRESHOLD {threshold} is not a cosine similarity "
                             "(between -1 and 1)")
    raw = getattr(settings, "TAKEDOWN_FACE_INDEX_LIMIT", DEFAULT_FACE_INDEX_LIMIT)
    try:
        limit = int(raw) if not isinstance(raw, bool | float) else 0
    except (TypeError, ValueError):
        limit = 0
    if limit < 1:
        raise FaceModelError(f"TAKEDOWN_FACE_INDEX_LIMIT {raw!r} is not a positive integer")
    return FaceSettings(model, threshold, limit)


def images_without_faces(model_sha256: str) -> QuerySet[Image]:
    """Pool images the face model has not indexed yet."""
    done = FaceEmbedding.objects.filter(model_sha256=model_sha256, image_id=OuterRef("pk"))
    return Image.objects.filter(~Exists(done)).order_by("id")


@dataclass(frozen=True)
class SameFace:
    image_id: int
    similarity: float
    seed: str  # what it has the same face as: "photo LABEL" or "image ID"


def same_faces(seeds: Sequence[tuple[str, np.ndarray]], *, model_sha256: str,
               threshold: float, chunk: int = 5000) -> list[SameFace]:
    """Pool images with a face whose embedding (by this model) is at least `threshold` similar
    to a seed face; seeds: (what, vectors of its faces). The index is read in chunks."""
    labels = [label for label, vectors in seeds for _ in range(len(vectors))]
    if not labels:
        return []
    query = np.concatenate([vectors for _, vectors in seeds if len(vectors)]).astype(np.float32)
    best: dict[int, SameFace] = {}
    rows = (FaceEmbedding.objects.filter(model_sha256=model_sha256, faces__gt=0)
            .order_by("image_id").values_list("image_id", "vectors"))
    for start in range(0, rows.count(), chunk):
        part = list(rows[start:start + chunk])
        owners = np.concatenate([np.full(n, i, np.int64) for i, n in
                                 ((i, len(v) // (4 * EMBEDDING_DIM)) for i, v in part)])
        found = np.concatenate([FaceVectors.vectors_from_bytes(v) for _, v in part])
        for hit in best_hits(query, found, owners, threshold=threshold):
            if hit.owner not in best or hit.similarity > best[hit.owner].similarity:
                best[hit.owner] = SameFace(hit.owner, hit.similarity, labels[hit.seed])
    return sorted(best.values(), key=lambda s: s.image_id)


def face_matching() -> dict[str, Any]:
    """Whether requests can be matched by face: a recognition model named by the setting
    TAKEDOWN_FACE_MODEL (none ships with the platform). A model that is set but cannot be
    used is answered as unavailable with the configuration error (never a silent fallback:
    asking to match by face then fails with the same message)."""
    try:
        cfg = face_settings()
        if not cfg.model:
            return {"available": False, "why": FACE_MATCHING_MISSING}
        model = load_embedder(cfg.model)
    except FaceModelError as exc:
        return {"available": False, "configuration_error": True,
                "why": f"face matching is misconfigured: {exc}"}
    return {
        "available": True,
        "model": Path(cfg.model).name,
        "sha256": model.sha256,
        "threshold": cfg.threshold,
        "index_limit": cfg.index_limit,
        "indexed": FaceEmbedding.objects.filter(model_sha256=model.sha256).count(),
        "pool": Image.objects.count(),
        "why": (f"faces are found with the platform's detector and compared with "
                f"{Path(cfg.model).name} (cosine similarity at least {cfg.threshold})"),
    }
