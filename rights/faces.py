"""Face embeddings for takedown matching, with a configured face recognition model (no Django).

The model is an ONNX file with the OpenCV Zoo SFace interface: a 1 x 3 x 112 x 112 BGR face
crop in, a 128-d embedding out (a real deployment uses `face_recognition_sface_2021dec.onnx`
from the OpenCV Zoo; none ships with the platform). It runs through
`cv2.FaceRecognizerSF` (opencv-python-headless). Faces are found by the platform's detector
(`curation.imaging.faces`, Haar cascades); each box is cropped, resized to 112 x 112 and
embedded. Two faces are the same person when the cosine similarity of their embeddings is at
least the threshold (SFace's published 0.363).

The Haar boxes are not aligned on the eyes as SFace's own pipeline (YuNet landmarks +
`alignCrop`) aligns them, so a real SFace model sees slightly looser crops than it was
trained on: expect fewer matches of the same person in other photos than the published
figures, while copies and re-crops of one photo (the same face pixels) match reliably.

A missing, unreadable or wrongly shaped model file is a `FaceModelError`, never a fallback.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps

from curation.imaging.faces import detect_faces
from curation.imaging.validate import DEFAULT_MAX_PIXELS, open_image, read_bytes

INPUT_SIDE = 112  # SFace's input: a 112 x 112 face crop
EMBEDDING_DIM = 128  # SFace's output
SFACE_THRESHOLD = 0.363  # SFace's published cosine threshold for "the same person"

Box = tuple[int, int, int, int]  # x, y, width, height in the image's pixels


class FaceModelError(RuntimeError):
    """The configured face model cannot be used: missing, unreadable, not the SFace shape."""


@dataclass(frozen=True)
class FaceVectors:
    """The faces found in one image and their L2-normalised embeddings (one row per face)."""

    boxes: tuple[Box, ...]
    vectors: np.ndarray  # (faces, EMBEDDING_DIM) float32

    @property
    def count(self) -> int:
        return len(self.boxes)

    def to_bytes(self) -> bytes:
        return np.ascontiguousarray(self.vectors, dtype="<f4").tobytes()

    @staticmethod
    def vectors_from_bytes(data: bytes | memoryview | None) -> np.ndarray:
        """The (faces, EMBEDDING_DIM) matrix that `to_bytes` wrote (empty for no faces)."""
        raw = bytes(data or b"")
        if len(raw) % (4 * EMBEDDING_DIM):
            raise ValueError(f"{len(raw)} bytes are not whole {EMBEDDING_DIM}-d float32 vectors")
        return np.frombuffer(raw, dtype="<f4").reshape(-1, EMBEDDING_DIM).astype(np.float32)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FaceEmbedder:
    """One loaded face model: finds faces in an image and embeds each of them."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FaceModelError(f"the face model file {str(path)!r} does not exist")
        try:
            self.sha256 = file_sha256(path)
        except OSError as exc:
            raise FaceModelError(f"the face model file {str(path)!r} cannot be read: "
                                 f"{exc.strerror or exc}") from None
        self.path = path
        try:
            self._model = cv2.FaceRecognizerSF.create(str(path), "")
        except cv2.error as exc:
            raise FaceModelError(
                f"the face model file {str(path)!r} is not a usable ONNX model "
                f"({_first_line(exc)})"
            ) from None
        self._lock = threading.Lock()  # an OpenCV net is not shared between threads
        try:
            probe = self._embed_crop(np.full((INPUT_SIDE, INPUT_SIDE, 3), 128, np.uint8))
        except cv2.error as exc:
            raise FaceModelError(
                f"the face model {str(path)!r} does not take a 1x3x{INPUT_SIDE}x{INPUT_SIDE} "
                f"face crop as SFace does ({_first_line(exc)})"
            ) from None
        if probe.shape != (EMBEDDING_DIM,) or not np.isfinite(probe).all():
            raise FaceModelError(
                f"the face model {str(path)!r} gives {probe.size} values per face, not the "
                f"{EMBEDDING_DIM}-d embedding of SFace's interface"
            )

    def _embed_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        with self._lock:
            out = self._model.feature(np.ascontiguousarray(crop_bgr))
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def embed(
        self,
        source: str | Path | BinaryIO | bytes | Image.Image,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> FaceVectors:
        """Every face the platform's detector finds in the image, embedded. Raises
        curation.imaging.validate.InvalidImage for a file that is not a usable image."""
        if isinstance(source, Image.Image):
            img = source
        else:
            data = source if isinstance(source, bytes) else read_bytes(source)
            img = open_image(data, max_pixels=max_pixels)
        rgb = ImageOps.exif_transpose(img).convert("RGB")  # faces are found upright
        report = detect_faces(rgb)
        bgr = np.asarray(rgb, dtype=np.uint8)[:, :, ::-1]
        boxes: list[Box] = []
        vectors: list[np.ndarray] = []
        for face in report.faces:
            x0, y0 = max(0, face.x), max(0, face.y)
            x1 = min(bgr.shape[1], face.x + face.width)
            y1 = min(bgr.shape[0], face.y + face.height)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            crop = cv2.resize(np.ascontiguousarray(bgr[y0:y1, x0:x1]),
                              (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA)
            v = self._embed_crop(crop)
            norm = float(np.linalg.norm(v))
            if not np.isfinite(norm) or norm == 0.0:
                continue  # a flat crop: nothing to compare
            boxes.append((x0, y0, x1 - x0, y1 - y0))
            vectors.append(v / norm)
        matrix = (np.stack(vectors) if vectors
                  else np.zeros((0, EMBEDDING_DIM), np.float32)).astype(np.float32)
        return FaceVectors(tuple(boxes), matrix)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


_loaded: dict[tuple[str, int, int], FaceEmbedder] = {}
_loaded_lock = threading.Lock()


def load_embedder(path: str | Path) -> FaceEmbedder:
    """The model at `path`, loaded once per process (again when the file changes)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError:
        raise FaceModelError(f"the face model file {str(path)!r} does not exist") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _loaded_lock:
        embedder = _loaded.get(key)
        if embedder is None:
            embedder = FaceEmbedder(path)
            _loaded.clear()
            _loaded[key] = embedder
    return embedder


@dataclass(frozen=True)
class FaceHit:
    owner: int  # the id the found vectors belong to (a pool image)
    similarity: float
    seed: int  # index of the seed vector that found it


def best_hits(seeds: np.ndarray, found: np.ndarray, owners: np.ndarray, *,
              threshold: float) -> list[FaceHit]:
    """For each owner of `found` vectors (rows; owners[i] owns row i) whose best cosine
    similarity to any seed reaches `threshold`: that similarity and the seed. Vectors are
    L2-normalised, so the cosine is the dot product."""
    if not len(seeds) or not len(found):
        return []
    sims = found @ seeds.T  # (found, seeds)
    best_seed = sims.argmax(axis=1)
    best = sims.max(axis=1)
    out: dict[int, FaceHit] = {}
    for row in np.nonzero(best >= threshold)[0]:
        owner = int(owners[row])
        hit = FaceHit(owner, float(best[row]), int(best_seed[row]))
        if owner not in out or hit.similarity > out[owner].similarity:
            out[owner] = hit
    return sorted(out.values(), key=lambda h: h.owner)
