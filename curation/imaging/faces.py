"""Offline face detection with the Haar cascades bundled inside the OpenCV wheel.

The paper dropped images without a face and reported the largest face's share of the image;
`detect_faces` returns both. No model is downloaded: `cv2.data.haarcascades` ships the XML
files in opencv-python(-headless) 4.x. OpenCV 5 wheels no longer carry them (nor a CascadeClassifier
in the main module), and YuNet (`cv2.FaceDetectorYN`) needs an ONNX file that no wheel ships,
so the pipeline needs `opencv-python-headless>=4.10,<5`; a missing cascade is a clear error.

Detection runs on a copy scaled to `max_side` (JPEGs decoded straight at a reduced size with
PIL's draft mode), after histogram equalisation; boxes are reported in original pixels. The
frontal cascade finds faces turned up to about 30 degrees; `profile=True` adds the profile
cascade on the image and its mirror (it only knows one side), overlapping boxes merged.

What to expect (defaults, min_neighbors = 5): the face in `skimage.data.astronaut()` is found
and nothing in a gradient (both tested); 82 of 101 faces (skimage's astronaut and the 100 LFW
face crops, upscaled) are found; 3 of 16 skimage photos without a person (coins, moon, cell)
get a spurious box. Haar cascades miss turned and small faces and fire on textures, so a
pipeline should pair this with the CLIP person filter rather than trust it alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image

from curation.imaging.validate import DEFAULT_MAX_PIXELS, open_image, read_bytes

FRONTAL_CASCADE = "haarcascade_frontalface_default.xml"
PROFILE_CASCADE = "haarcascade_profileface.xml"


class FaceDetectorUnavailable(RuntimeError):
    """The bundled cascade files cannot be found or loaded."""


@dataclass(frozen=True)
class Face:
    x: int
    y: int
    width: int
    height: int
    kind: str  # "frontal" or "profile"

    @property
    def area(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class FaceReport:
    faces: tuple[Face, ...]
    image_width: int
    image_height: int

    @property
    def count(self) -> int:
        return len(self.faces)

    @property
    def largest(self) -> Face | None:
        return max(self.faces, key=lambda f: f.area, default=None)

    @property
    def largest_share(self) -> float:
        """Area of the largest face / area of the image (0.0 when there is none)."""
        face = self.largest
        return 0.0 if face is None else face.area / (self.image_width * self.image_height)


def cascade_path(name: str) -> Path:
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder or "") / name
    if not folder or not path.is_file() or not hasattr(cv2, "CascadeClassifier"):
        raise FaceDetectorUnavailable(
            f"OpenCV {cv2.__version__} has no bundled Haar cascade {name} (OpenCV 5 wheels "
            "dropped them); install opencv-python-headless>=4.10,<5"
        )
    return path


class FaceDetector:
    """Reusable detector; cascades are loaded once per thread (OpenCV objects are not shared)."""

    def __init__(
        self,
        *,
        profile: bool = False,
        max_side: int = 640,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 24,
        min_face_fraction: float = 0.05,
    ) -> None:
        self.profile = profile
        self.max_side = max_side
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        # Faces narrower than this share of the short side are ignored: too small to rate, and
        # where the cascade's false positives (folds, textures) live.
        self.min_face_fraction = min_face_fraction
        self._local = threading.local()
        self._cascades()  # fail now, not at the first image, when the files are missing

    def _cascades(self) -> dict[str, object]:
        cascades = getattr(self._local, "cascades", None)
        if cascades is None:
            names = {"frontal": FRONTAL_CASCADE}
            if self.profile:
                names["profile"] = PROFILE_CASCADE
            cascades = {}
            for kind, name in names.items():
                classifier = cv2.CascadeClassifier(str(cascade_path(name)))
                if classifier.empty():
                    raise FaceDetectorUnavailable(f"cannot load the cascade {name}")
                cascades[kind] = classifier
            self._local.cascades = cascades
        return cascades

    def detect(
        self, source: str | Path | BinaryIO | Image.Image | np.ndarray,
        *, max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> FaceReport:
        """Faces in an image given as a path, a file object, a PIL image or an array."""
        gray, (width, height) = self._load_gray(source, max_pixels)
        scale = width / gray.shape[1]
        min_side = max(self.min_size, round(self.min_face_fraction * min(gray.shape)))
        boxes: list[tuple[int, int, int, int, str]] = []
        for kind, cascade in self._cascades().items():
            views = [(gray, False)] + ([(gray[:, ::-1], True)] if kind == "profile" else [])
            for view, mirrored in views:
                found = cascade.detectMultiScale(  # type: ignore[attr-defined]
                    np.ascontiguousarray(view),
                    scaleFactor=self.scale_factor,
                    minNeighbors=self.min_neighbors,
                    minSize=(min_side, min_side),
                )
                for x, y, w, h in np.asarray(found).reshape(-1, 4).tolist():
                    if mirrored:
                        x = gray.shape[1] - x - w
                    boxes.append((x, y, w, h, kind))
        faces = [
            Face(round(x * scale), round(y * scale), round(w * scale), round(h * scale), kind)
            for x, y, w, h, kind in _merge_overlapping(boxes)
        ]
        return FaceReport(tuple(faces), width, height)

    def _load_gray(
        self, source: str | Path | BinaryIO | Image.Image | np.ndarray, max_pixels: int
    ) -> tuple[np.ndarray, tuple[int, int]]:
        """Equalised greyscale frame no longer than max_side, and the original (w, h)."""
        if isinstance(source, np.ndarray):
            arr = source.astype(np.uint8) * 255 if source.dtype == bool else source
            img = Image.fromarray(arr)
        elif isinstance(source, Image.Image):
            img = source
        else:
            img = open_image(read_bytes(source), max_pixels=max_pixels)
        size = img.size
        if (img.format or "").upper() in ("JPEG", "MPO") and max(size) > 2 * self.max_side:
            # A JPEG decodes straight to a reduced greyscale frame (see hashing.apply_draft).
            f = self.max_side / max(size)
            img.draft("L", (round(size[0] * f), round(size[1] * f)))
        gray = img.convert("L")
        if max(gray.size) > self.max_side:
            f = self.max_side / max(gray.size)
            gray = gray.resize((max(1, round(gray.width * f)), max(1, round(gray.height * f))),
                               Image.Resampling.BILINEAR)
        return cv2.equalizeHist(np.asarray(gray, dtype=np.uint8)), size


def _merge_overlapping(
    boxes: list[tuple[int, int, int, int, str]], iou: float = 0.3
) -> list[tuple[int, int, int, int, str]]:
    """Keep the larger of two boxes that overlap (frontal and profile firing on one face)."""
    kept: list[tuple[int, int, int, int, str]] = []
    for box in sorted(boxes, key=lambda b: -b[2] * b[3]):
        if all(_iou(box, k) < iou for k in kept):
            kept.append(box)
    return kept


def _iou(a: tuple[int, int, int, int, str], b: tuple[int, int, int, int, str]) -> float:
    ax, ay, aw, ah, _ = a
    bx, by, bw, bh, _ = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


_default: dict[tuple[bool], FaceDetector] = {}
_default_lock = threading.Lock()


def detect_faces(
    source: str | Path | BinaryIO | Image.Image | np.ndarray, *, profile: bool = False
) -> FaceReport:
    """Faces with the default settings (a shared detector per setting)."""
    with _default_lock:
        detector = _default.get((profile,))
        if detector is None:
            detector = _default[(profile,)] = FaceDetector(profile=profile)
    return detector.detect(source)
