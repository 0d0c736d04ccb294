"""Image files for the imaging tests: generated, and real photos from scikit-image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def photo(name: str = "astronaut") -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def encode(img: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def noisy(img: Image.Image, size: tuple[int, int], seed: int = 0, sigma: float = 4) -> Image.Image:
    """Upscaled copy with sensor-like grain: a stand-in for a multi-megapixel photo."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(img.resize(size, Image.Resampling.BICUBIC)).astype(np.int16)
    arr = arr + rng.normal(0, sigma, arr.shape).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.fixture
def write(tmp_path: Path):
    """write(name, data: bytes) -> path under tmp_path."""

    def _write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write
