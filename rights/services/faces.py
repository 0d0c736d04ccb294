"""Writes of face matching (TAKEDOWN_FACE_MODEL): the configured model, the faces of a supplied
photo kept on it, and the pool's face index (`FaceEmbedding`, filled on demand in batches).

The embeddings are derived data: a photo's are kept on its `SuppliedPhoto` row (the photo's
bytes are not, so re-matching needs them) and go with the request; a pool image's go with
the image. Changing the model file (another sha256) indexes the pool again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from tqdm import tqdm

from curation.imaging.validate import InvalidImage
from curation.models import Image

from .. import selectors
from ..faces import FaceEmbedder, FaceModelError, FaceVectors, load_embedder
from ..models import FaceEmbedding, SuppliedPhoto
from .errors import TakedownError


class FaceModelUnusable(TakedownError, status=503, code="face_model_unusable"):
    """TAKEDOWN_FACE_MODEL is set, but the model (or a face setting) cannot be used: a
    configuration error of the platform, told as such."""


class FaceIndexIncomplete(TakedownError, status=409, code="face_index_incomplete"):
    """More pool images lack a face index than one match request indexes itself."""


class PhotoFacesMissing(TakedownError, code="photo_faces_missing"):
    """A photo was added before the current face model was configured: its faces are unknown
    (its bytes were not kept), so it must be added again."""


def face_model() -> FaceEmbedder | None:
    """The configured face model, loaded (None: TAKEDOWN_FACE_MODEL is not set). A model that
    is set but unusable is FaceModelUnusable, never a silent fallback."""
    try:
        cfg = selectors.face_settings()
        return load_embedder(cfg.model) if cfg.model else None
    except FaceModelError as exc:
        raise FaceModelUnusable(
            f"face matching is misconfigured: {exc} (fix TAKEDOWN_FACE_MODEL, or unset it to "
            "match without faces)"
        ) from None


def photo_faces(fileobj: BinaryIO, *, label: str = "") -> tuple[FaceEmbedder, FaceVectors] | None:
    """The faces of a supplied photo by the configured model (None: no model configured).
    Read before the photo's bytes are dropped; the caller keeps them with `keep_photo_faces`."""
    model = face_model()
    if model is None:
        return None
    try:
        return model, model.embed(fileobj, max_pixels=settings.MAX_IMAGE_PIXELS)
    except InvalidImage as exc:
        raise TakedownError(f"the photo {label} is not usable: {exc.message}") from None


def keep_photo_faces(photo: SuppliedPhoto, found: tuple[FaceEmbedder, FaceVectors]) -> None:
    """Keep a photo's face embeddings on its row (for matching and re-matching)."""
    model, faces = found
    if photo.face_model == model.sha256:
        return
    photo.face_model = model.sha256
    photo.faces = faces.count
    photo.face_vectors = faces.to_bytes()
    photo.save(update_fields=["face_model", "faces", "face_vectors"])


@dataclass(frozen=True)
class IndexOutcome:
    images: int  # images indexed now
    faces: int  # faces found in them
    unreadable: int  # images whose file could not be read or decoded (kept with the error)
    left: int  # images still without an index for this model


def _embed_stored(model: FaceEmbedder, image: Image) -> FaceEmbedding:
    row = FaceEmbedding(image=image, model_sha256=model.sha256)
    try:
        with default_storage.open(image.file.name, "rb") as fh:
            data = fh.read()
        faces = model.embed(data, max_pixels=settings.MAX_IMAGE_PIXELS)
    except InvalidImage as exc:
        row.error = f"not a usable image: {exc.message}"[:300]
    except OSError as exc:
        row.error = f"its file cannot be read: {exc}"[:300]
    else:
        row.faces = faces.count
        row.vectors = faces.to_bytes()
        row.boxes = [list(b) for b in faces.boxes]
    return row


def index_faces(
    *,
    model: FaceEmbedder | None = None,
    limit: int | None = None,
    batch: int = 50,
    progress: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> IndexOutcome:
    """Embed the faces of pool images not yet indexed for the model (default: the configured
    one), in batches of `batch` (each written when done: an interrupted run keeps its work),
    at most `limit` images (None: all). Safe beside other indexers (a row written twice is
    kept once). `on_batch(done, total)` after each batch; `progress`: a tqdm bar."""
    if batch < 1 or (limit is not None and limit < 1):
        raise TakedownError("batch and limit must be at least 1")
    model = model or face_model()
    if model is None:
        raise TakedownError("no face model is configured: set TAKEDOWN_FACE_MODEL")
    todo = selectors.images_without_faces(model.sha256)
    total = todo.count() if limit is None else min(limit, todo.count())
    done = found = unreadable = 0
    last = 0
    bar = tqdm(total=total, unit="image", desc="faces", disable=not progress)
    try:
        while done < total:
            images = list(todo.filter(pk__gt=last)[: min(batch, total - done)])
            if not images:
                break
            rows = [_embed_stored(model, image) for image in images]
            FaceEmbedding.objects.bulk_create(rows, ignore_conflicts=True)
            last = images[-1].pk
            done += len(rows)
            found += sum(r.faces for r in rows)
            unreadable += sum(1 for r in rows if r.error)
            bar.update(len(rows))
            if on_batch is not None:
                on_batch(done, total)
    finally:
        bar.close()
    left = selectors.images_without_faces(model.sha256).count()
    return IndexOutcome(done, found, unreadable, left)
