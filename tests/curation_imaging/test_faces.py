"""faces: the bundled detector finds the face in a real photo, and none in a gradient."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from curation.imaging import faces as faces_module
from curation.imaging.faces import FaceDetector, FaceDetectorUnavailable, detect_faces

from .conftest import encode, photo

# The astronaut's face in skimage's 512 x 512 photo (Eileen Collins), measured by hand:
# roughly x 180-270, y 70-160.
FACE_CENTRE = (225, 115)


def contains(face, point, scale=1.0) -> bool:
    x, y = point[0] * scale, point[1] * scale
    return face.x <= x <= face.x + face.width and face.y <= y <= face.y + face.height


def test_finds_the_face_in_a_real_photo():
    report = detect_faces(photo("astronaut"))
    assert report.count == 1
    face = report.largest
    assert contains(face, FACE_CENTRE)
    assert 60 <= face.width <= 140
    assert report.largest_share == pytest.approx(face.area / (512 * 512))
    assert 0.015 < report.largest_share < 0.08


def test_finds_no_face_in_a_gradient():
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.float64), (480, 1)).astype(np.uint8)
    report = detect_faces(gradient)
    assert report.count == 0
    assert report.largest is None and report.largest_share == 0.0
    rgb = np.dstack([gradient, gradient[:, ::-1], np.full_like(gradient, 128)])
    assert detect_faces(Image.fromarray(rgb), profile=True).count == 0


def test_large_jpeg_file_is_detected_on_a_reduced_draft_in_original_pixels(tmp_path):
    path = tmp_path / "astronaut_4x.jpg"
    path.write_bytes(encode(photo("astronaut").resize((2048, 2048), Image.Resampling.BICUBIC),
                            quality=90))
    report = FaceDetector().detect(path)
    assert (report.image_width, report.image_height) == (2048, 2048)
    assert report.count == 1
    assert contains(report.largest, FACE_CENTRE, scale=4)
    assert 240 <= report.largest.width <= 560  # reported in original pixels
    assert detect_faces(io.BytesIO(path.read_bytes())).count == 1


def test_profile_cascade_adds_nothing_spurious_on_the_frontal_face():
    report = FaceDetector(profile=True).detect(photo("astronaut"))
    assert report.count == 1  # frontal and profile boxes on one face are merged
    assert contains(report.largest, FACE_CENTRE)


def test_missing_cascades_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + "/")
    with pytest.raises(FaceDetectorUnavailable, match="opencv-python-headless"):
        FaceDetector()
    assert faces_module.FRONTAL_CASCADE.endswith(".xml")
