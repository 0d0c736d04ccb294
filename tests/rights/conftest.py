"""A photo and its copies for the takedown tests: a natural photo (its perceptual hash means
something, unlike noise), a recompressed and resized copy of it, and unrelated images."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import make_user
from tests.curation_jobs.conftest import astronaut


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def photo() -> bytes:
    """The person's photo as it sits in the pool."""
    return jpeg(astronaut(640), quality=92)


def recompressed_copy() -> bytes:
    """The same photo, resized to 70% and recompressed at quality 60: other bytes, the same
    picture."""
    img = Image.open(io.BytesIO(photo()))
    return jpeg(img.resize((448, 448), Image.Resampling.BICUBIC), quality=60)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_by_hash(root: Path) -> dict[str, str]:
    """Every file under root, relative path -> sha256 of its bytes."""
    return {
        p.relative_to(root).as_posix(): sha(p.read_bytes())
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def admin(db):
    return make_user("boss", "admin")
