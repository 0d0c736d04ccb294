"""Filing a takedown request, adding the person's photos (as hashes), finding the pool images
it means, the admin's decisions, rejecting it, and queueing the removal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core import jobs
from curation.imaging.hashing import from_signed64, inspect_and_hash, to_signed64
from curation.imaging.validate import InvalidImage
from curation.models import Image

from .. import selectors
from ..faces import FaceEmbedder, FaceVectors
from ..models import (
    AuditEvent,
    FaceEmbedding,
    Match,
    MatchDecision,
    MatchHow,
    Removal,
    RequestStatus,
    SuppliedPhoto,
    TakedownRequest,
)
from . import faces as face_index
from .errors import FaceMatchingUnavailable, TakedownConflict, TakedownError, TakedownNotFound

MAX_NAMED = 1000  # ids, file names or source records one request may name, each
MAX_ID = 2**63 - 1
DECIDING = (RequestStatus.OPEN, RequestStatus.MATCHED)


def record(request: TakedownRequest | None, actor: AbstractBaseUser | None, action: str, *,
           why: str = "", **details: Any) -> AuditEvent:
    """One step of the audit trail."""
    return AuditEvent.objects.create(
        request=request, actor=jobs.creator(actor), action=action, why=why, details=details
    )


def _text(value: object, name: str, *, limit: int, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise TakedownError(f"{name} must be text")
    value = value.strip()
    if required and not value:
        raise TakedownError(f"{name} is required")
    if len(value) > limit:
        raise TakedownError(f"{name} is longer than {limit} characters")
    return value


def _list(value: object, name: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise TakedownError(f"{name} must be a list")
    if len(value) > MAX_NAMED:
        raise TakedownError(f"{name} may hold at most {MAX_NAMED} entries, not {len(value)}")
    return list(value)


def _names(image_ids: object, file_names: object, source_records: object) -> dict[str, list]:
    errors = []
    ids = []
    for i, v in enumerate(_list(image_ids, "image_ids")):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_ID:
            errors.append(f"image_ids[{i}]: {v!r} is not an image id (a positive integer)")
        else:
            ids.append(v)
    files = []
    for i, v in enumerate(_list(file_names, "file_names")):
        if not isinstance(v, str) or not v.strip() or len(v) > 1000:
            errors.append(f"file_names[{i}]: a file name is text of 1 to 1000 characters")
        else:
            files.append(v.strip())
    records = []
    for i, v in enumerate(_list(source_records, "source_records")):
        if (not isinstance(v, Mapping) or set(v) != {"source", "path"}
                or not all(isinstance(v[k], str) and v[k].strip() for k in ("source", "path"))):
            errors.append(f"source_records[{i}]: give {{\"source\": name, \"path\": path}}")
        else:
            records.append({"source": v["source"].strip(), "path": v["path"].strip()})
    if errors:
        raise TakedownError(f"{len(errors)} named item(s) are not usable: " + "; ".join(
            errors[:5]), errors=errors)
    return {"image_ids": sorted(set(ids)), "file_names": sorted(set(files)),
            "source_records": [dict(t) for t in sorted({tuple(sorted(r.items()))
                                                        for r in records})]}


def file_request(
    *,
    person: str,
    contact: str,
    reason: str,
    image_ids: Sequence[int] = (),
    file_names: Sequence[str] = (),
    source_records: Sequence[Mapping[str, str]] = (),
    user: AbstractBaseUser | None = None,
) -> TakedownRequest:
    """File a request on a person's behalf; what it names may be empty while photos follow."""
    fields = {
        "person": _text(person, "person", limit=200),
        "contact": _text(contact, "contact", limit=300),
        "reason": _text(reason, "reason", limit=10_000),
    }
    names = _names(image_ids, file_names, source_records)
    with transaction.atomic():
        request = TakedownRequest.objects.create(
            filed_by=jobs.creator(user), names=names, **fields
        )
        record(request, user, "filed", why=fields["reason"], person=fields["person"],
               contact=fields["contact"], names=names)
    return request


def _locked(request_id: int) -> TakedownRequest:
    request = TakedownRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None:
        raise TakedownNotFound(f"no takedown request {request_id}")
    return request


def _must_be(request: TakedownRequest, states: Iterable[str], doing: str) -> None:
    if request.status not in states:
        raise TakedownConflict(f"request {request.pk} is {request.status}: it cannot {doing}")


def add_photo(
    request: TakedownRequest,
    fileobj: BinaryIO,
    *,
    label: str = "",
    user: AbstractBaseUser | None = None,
) -> SuppliedPhoto:
    """Hash a photo the person supplied (validated as any pool image is); its bytes are read
    once and never stored."""
    return add_photos(request, [(fileobj, label)], user=user)[0]


def add_photos(
    request: TakedownRequest,
    files: Sequence[tuple[BinaryIO, str]],
    *,
    user: AbstractBaseUser | None = None,
) -> list[SuppliedPhoto]:
    """Hash several photos (file, label), every one before any is kept: one that is not
    usable keeps none (nothing partial)."""
    read = [(*_read_photo(fileobj, label), label) for fileobj, label in files]
    with transaction.atomic():
        request = _locked(request.pk)
        _must_be(request, DECIDING, "take photos any more")
        return [_keep_photo(request, info, faces, label=label, user=user)
                for info, faces, label in read]


def _read_photo(fileobj: BinaryIO, label: str) -> tuple[Any, Any]:
    try:
        info = inspect_and_hash(fileobj, max_pixels=settings.MAX_IMAGE_PIXELS)
    except InvalidImage as exc:
        raise TakedownError(f"the photo {label or ''} is not usable: {exc.message}".replace(
            "  ", " ")) from None
    return info, face_index.photo_faces(fileobj, label=label)  # None without a face model


def _keep_photo(request: TakedownRequest, info: Any, faces: Any, *, label: str,
                user: AbstractBaseUser | None) -> SuppliedPhoto:
    photo, created = SuppliedPhoto.objects.get_or_create(
        request=request, sha256=info.sha256,
        defaults={"label": label[:300], "phash": to_signed64(info.phash),
                  "dhash": to_signed64(info.dhash), "width": info.width,
                  "height": info.height, "added_by": jobs.creator(user)},
    )
    if faces is not None:
        face_index.keep_photo_faces(photo, faces)
    if created:
        record(request, user, "photo_added", label=photo.label, sha256=info.sha256,
               phash=f"{info.phash:016x}")
    return photo


def _must_be_matchable(request: TakedownRequest) -> None:
    _must_be(request, DECIDING, "be matched again")
    names = request.names or {}
    if not request.photos.exists() and not any(
            names.get(k) for k in ("image_ids", "file_names", "source_records")):
        raise TakedownError(
            "nothing to match: name images (ids, file names, source records) or add photos"
        )


@dataclass
class _Found:
    """What a match has found so far: image id -> (how, distance, evidence), each image kept
    with the first way it was found; what was named but is not in the pool; and the cosine
    similarity of the images first found by face."""

    images: dict[int, tuple[str, int | None, str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    similarity: dict[int, float] = field(default_factory=dict)

    def take(self, image_id: int, how: str, distance: int | None, evidence: str) -> None:
        if image_id not in self.images:
            self.images[image_id] = (how, distance, evidence)


def find_matches(
    request: TakedownRequest,
    *,
    faces: bool = False,
    user: AbstractBaseUser | None = None,
) -> list[Match]:
    """Find the pool images the request means: named ids, file names and source records;
    supplied photos by exact bytes; near-duplicates (pHash within the pool's threshold) of
    the photos and of every named image. Matches found before keep their decisions. `faces`:
    also the pool images with the same face as a photo or a named image (TAKEDOWN_FACE_MODEL;
    refused while none is configured, a configuration error when it cannot be used); the pool
    images not yet indexed are indexed first, at most TAKEDOWN_FACE_INDEX_LIMIT of them per
    call (FaceIndexIncomplete beyond: call again, or run `manage.py index_faces`)."""
    model = _face_model_indexed(request) if faces else None
    with transaction.atomic():
        request = _locked(request.pk)
        _must_be_matchable(request)
        photos = list(request.photos.order_by("id"))
        found = _Found()
        _take_named(found, request.names or {})
        _take_same_bytes(found, photos)
        _take_near_duplicates(found, photos)
        face_details = _take_same_faces(found, photos, model) if model is not None else {}
        new = _keep_new_matches(request, found)
        request.status = RequestStatus.MATCHED
        request.save(update_fields=["status", "updated_at"])
        record(request, user, "matched", found=len(found.images), new=len(new),
               threshold=selectors.pool_threshold(), not_found=found.missing,
               matches=[{"image_id": m.image_ref, "how": m.how, "distance": m.distance,
                         **({"similarity": m.similarity} if m.similarity is not None else {})}
                        for m in new], **face_details)
    return list(selectors.matches_of(request))


def _face_model_indexed(request: TakedownRequest) -> FaceEmbedder:
    """The configured face model, with the pool indexed for it. Indexing is slow and keeps
    each batch it writes, so it runs before the match's transaction and lock."""
    model = face_index.face_model()
    if model is None:
        raise FaceMatchingUnavailable(selectors.face_matching()["why"])
    # Refused before the pool is indexed (checked again under the lock).
    _must_be_matchable(TakedownRequest.objects.get(pk=request.pk))
    limit = selectors.face_settings().index_limit
    outcome = face_index.index_faces(model=model, limit=limit)
    if outcome.left:
        raise face_index.FaceIndexIncomplete(
            f"{outcome.left} pool image(s) are not indexed for faces yet (a match indexes "
            f"at most {limit}, TAKEDOWN_FACE_INDEX_LIMIT; it indexed {outcome.images} now): "
            "match again, or run `python manage.py index_faces` first"
        )
    return model


def _take_named(found: _Found, names: Mapping[str, list]) -> None:
    """The images the request names by id, file name and source record; a name that finds
    nothing is noted as missing."""
    ids = names.get("image_ids", [])
    present = set(Image.objects.filter(pk__in=ids).values_list("id", flat=True))
    for i in ids:
        if i in present:
            found.take(i, MatchHow.NAMED_ID, None, f"id {i}")
        else:
            found.missing.append(f"image id {i}")
    for name, hits in selectors.images_by_file_name(names.get("file_names", [])).items():
        for i in hits:
            found.take(i, MatchHow.NAMED_FILE, None, f"file name {name}")
        if not hits:
            found.missing.append(f"file name {name}")
    records = selectors.images_by_source_record(names.get("source_records", []))
    for (source, path), i in records.items():
        if i is None:
            found.missing.append(f"source record {source}:{path}")
        else:
            found.take(i, MatchHow.SOURCE_RECORD, None, f"source record {source}:{path}")


def _take_same_bytes(found: _Found, photos: Sequence[SuppliedPhoto]) -> None:
    """The pool images with exactly the bytes of a supplied photo."""
    by_sha = dict(Image.objects.filter(sha256__in=[p.sha256 for p in photos])
                  .values_list("sha256", "id"))
    for p in photos:
        if p.sha256 in by_sha:
            found.take(by_sha[p.sha256], MatchHow.EXACT, 0, f"photo {p.shown_as}")


def _take_near_duplicates(found: _Found, photos: Sequence[SuppliedPhoto]) -> None:
    """Near-duplicates of every photo and of every image found so far."""
    seeds = [(f"photo {p.shown_as}", from_signed64(p.phash)) for p in photos]
    named = Image.objects.filter(pk__in=list(found.images), phash__isnull=False)
    seeds += [(f"image {i}", from_signed64(h)) for i, h in named.values_list("id", "phash")]
    for near in selectors.near_duplicates([h for _, h in seeds]):
        found.take(near.image_id, MatchHow.NEAR_DUPLICATE, near.distance,
                   f"{near.distance} bits from {seeds[near.of][0]}")


def _take_same_faces(
    found: _Found, photos: Sequence[SuppliedPhoto], model: FaceEmbedder
) -> dict[str, Any]:
    """The pool images with the same face as a photo or an image found so far; returns what
    the search covered, for the audit trail."""
    stale = [p.shown_as for p in photos if p.face_model != model.sha256]
    if stale:
        raise face_index.PhotoFacesMissing(
            f"photo(s) {', '.join(stale[:5])} were added before the face model "
            f"{model.path.name} was configured: their faces are unknown (their bytes "
            "were not kept); add them again"
        )
    face_seeds = [(f"photo {p.shown_as}", FaceVectors.vectors_from_bytes(p.face_vectors))
                  for p in photos]
    face_seeds += [(f"image {i}", FaceVectors.vectors_from_bytes(v)) for i, v in
                   FaceEmbedding.objects.filter(model_sha256=model.sha256,
                                                image_id__in=list(found.images))
                   .values_list("image_id", "vectors")]
    threshold = selectors.face_settings().threshold
    for hit in selectors.same_faces(face_seeds, model_sha256=model.sha256, threshold=threshold):
        if hit.image_id not in found.images:
            found.similarity[hit.image_id] = hit.similarity
        found.take(hit.image_id, MatchHow.FACE, None,
                   f"same face as {hit.seed} (cosine {hit.similarity:.3f})")
    return {"faces": {
        "model": model.path.name, "sha256": model.sha256, "threshold": threshold,
        "faces_searched": sum(len(v) for _, v in face_seeds),
        "no_face": [label for label, v in face_seeds
                    if label.startswith("photo ") and not len(v)],
    }}


def _keep_new_matches(request: TakedownRequest, found: _Found) -> list[Match]:
    """A Match for every image found that the request has not matched before (those keep
    theirs, with their decisions)."""
    rows = Image.objects.in_bulk(list(found.images))
    known = set(request.matches.values_list("image_ref", flat=True))
    new = [
        Match(request=request, image=rows[i], image_ref=i, sha256=rows[i].sha256,
              phash=rows[i].phash, original_path=rows[i].original_path,
              stored_name=rows[i].file.name, how=how, distance=dist, evidence=evidence,
              similarity=found.similarity.get(i) if how == MatchHow.FACE else None)
        for i, (how, dist, evidence) in sorted(found.images.items()) if i not in known
    ]
    Match.objects.bulk_create(new)
    return new


def decide_matches(
    request: TakedownRequest,
    decisions: Sequence[Mapping[str, Any]],
    *,
    user: AbstractBaseUser | None = None,
) -> list[Match]:
    """The admin's decision on matches: [{"match": id, "decision": "confirmed"|"rejected",
    "note": str}]. A decision may be changed until the removal starts."""
    if not isinstance(decisions, list | tuple) or not decisions:
        raise TakedownError("give decisions: [{\"match\": id, \"decision\": "
                            "\"confirmed\" or \"rejected\", \"note\": why}]")
    errors = []
    wanted: dict[int, tuple[str, str]] = {}
    choices = (MatchDecision.CONFIRMED, MatchDecision.REJECTED)
    for i, d in enumerate(decisions):
        if not isinstance(d, Mapping):
            errors.append(f"decisions[{i}]: an object")
            continue
        mid, choice, note = d.get("match"), d.get("decision"), d.get("note", "")
        if isinstance(mid, bool) or not isinstance(mid, int) or not 1 <= mid <= MAX_ID:
            errors.append(f"decisions[{i}]: match must be a match id")
        elif choice not in choices:
            errors.append(f"decisions[{i}]: decision must be confirmed or rejected")
        elif not isinstance(note, str) or len(note) > 5000:
            errors.append(f"decisions[{i}]: note must be text of at most 5000 characters")
        else:
            wanted[mid] = (choice, note.strip())
    if errors:
        raise TakedownError(f"{len(errors)} decision(s) are not usable: {errors[0]}",
                            errors=errors)
    with transaction.atomic():
        request = _locked(request.pk)
        _must_be(request, (RequestStatus.MATCHED,), "take decisions (find matches first, "
                 "or it is decided)")
        matches = request.matches.select_for_update().in_bulk(list(wanted))
        unknown = sorted(set(wanted) - set(matches))
        if unknown:
            raise TakedownNotFound(f"request {request.pk} has no match(es) {unknown}")
        now = timezone.now()
        for mid, (choice, note) in sorted(wanted.items()):
            m = matches[mid]
            before = m.decision
            m.decision, m.note, m.decided_by, m.decided_at = choice, note, jobs.creator(user), now
            m.save(update_fields=["decision", "note", "decided_by", "decided_at"])
            record(request, user, f"match_{choice}", why=note, match=m.pk,
                   image_id=m.image_ref, how=m.how, before=before)
    return list(selectors.matches_of(request))


def reject_request(
    request: TakedownRequest, *, why: str, user: AbstractBaseUser | None = None
) -> TakedownRequest:
    """Reject the whole request (nothing is removed), with the reason told to the person."""
    why = _text(why, "why", limit=5000)
    with transaction.atomic():
        request = _locked(request.pk)
        _must_be(request, DECIDING, "be rejected")
        request.status = RequestStatus.REJECTED
        request.decision_note = why
        request.save(update_fields=["status", "decision_note", "updated_at"])
        record(request, user, "rejected", why=why)
    return request


def start_removal(request: TakedownRequest, *, user: AbstractBaseUser | None = None) -> Removal:
    """Queue the removal of the confirmed matches (a long job): every match decided, at least
    one confirmed."""
    with transaction.atomic():
        request = _locked(request.pk)
        _must_be(request, (RequestStatus.MATCHED,), "start a removal")
        pending = request.matches.filter(decision=MatchDecision.PENDING).count()
        if pending:
            raise TakedownConflict(f"{pending} match(es) still wait for a decision")
        confirmed = request.matches.filter(decision=MatchDecision.CONFIRMED).count()
        if not confirmed:
            raise TakedownConflict("no match is confirmed: nothing to remove (reject the "
                                   "request instead, with the reason)")
        request.status = RequestStatus.CONFIRMED
        request.save(update_fields=["status", "updated_at"])
        removal = Removal.objects.create(
            request=request, created_by=jobs.creator(user),
            progress={"done": 0, "total": confirmed},
        )
        record(request, user, "removal_queued", removal=removal.pk, images=confirmed)
        jobs.enqueue(removal)
    return removal
