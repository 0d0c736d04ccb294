"""A folder of real photos and planted problems, imported as a manifest source."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def astronaut(side: int = 1024) -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((side, side), Image.LANCZOS)


def gradient(w: int, h: int) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1).astype(np.uint8))


# file name -> (expected decision, expected reasons)
EXPECTED = {
    "person.jpg": ("accepted", []),
    "person_mirror.jpg": ("accepted", []),
    "person_exact_copy.jpg": ("rejected", ["exact_duplicate"]),
    "person_resized.jpg": ("rejected", ["near_duplicate"]),
    "gradient.png": ("rejected", ["no_face"]),
    "tiny.png": ("rejected", ["too_small", "no_face"]),
    "strip.png": ("rejected", ["aspect_ratio", "no_face"]),
    "corrupt.jpg": ("rejected", ["corrupt"]),
    "truncated.jpg": ("rejected", ["corrupt"]),
}


def write_dataset(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    person = astronaut()
    person.save(folder / "person.jpg", quality=92)
    person.transpose(Image.FLIP_LEFT_RIGHT).save(folder / "person_mirror.jpg", quality=92)
    (folder / "person_exact_copy.jpg").write_bytes((folder / "person.jpg").read_bytes())
    person.resize((640, 640), Image.BILINEAR).save(folder / "person_resized.jpg", quality=70)
    gradient(600, 500).save(folder / "gradient.png")
    gradient(120, 90).save(folder / "tiny.png")
    gradient(2400, 400).save(folder / "strip.png")
    (folder / "corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    buf = io.BytesIO()
    astronaut(800).save(buf, format="JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    manifest = folder / "manifest.csv"
    lines = ["path,score"] + [f"{name},{3 + i % 5}" for i, name in enumerate(EXPECTED)]
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.fixture
def import_root(settings, tmp_path):
    root = tmp_path / "imports"
    root.mkdir()
    settings.IMPORT_ROOTS = [root.resolve()]
    return root


