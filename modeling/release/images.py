"""Image files of a release: stable names, verified bytes, optional resize."""

from __future__ import annotations

import hashlib
import io
import re

from PIL import Image

from .config import ReleaseRow
from .errors import ReleaseDataError

_EXT = {"jpeg": "jpg", "jpg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "bmp": "bmp",
        "tiff": "tif", "tif": "tif", "mpo": "jpg"}
JPEG_QUALITY = 92
_HEX = re.compile(r"[0-9a-f]{64}")


def image_ext(fmt: str) -> str:
    key = (fmt or "").strip().lower()
    return _EXT.get(key, key or "img")


def stable_name(row: ReleaseRow, ext: str) -> str:
    """``{sha256[:16]}.{ext}``: the same image has the same name in every release."""
    sha = (row.sha256 or "").lower()
    if not _HEX.fullmatch(sha):
        raise ReleaseDataError(f"image {row.image_id}: sha256 {row.sha256!r} is not a hex digest")
    return f"{sha[:16]}.{ext}"


def read_verified(row: ReleaseRow) -> bytes:
    """The stored file's bytes, checked against the row's sha256."""
    if not row.file:
        raise ReleaseDataError(
            f"image {row.image_id} has no stored file; build with images=none or re-import it"
        )
    try:
        with open(row.file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ReleaseDataError(
            f"image {row.image_id}: cannot read its file {row.file}: {exc.strerror or exc}"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != row.sha256.lower():
        raise ReleaseDataError(
            f"image {row.image_id}: file {row.file} has sha256 {digest}, the database says "
            f"{row.sha256}; the stored file changed since it was imported"
        )
    return data


def needs_resize(row: ReleaseRow, max_side: int | None) -> bool:
    return max_side is not None and max(row.width, row.height) > max_side


def resize(data: bytes, max_side: int, image_id: int) -> tuple[bytes, int, int]:
    """Shrink so that the longer side is ``max_side`` (aspect kept), re-encoded as JPEG.

    Pixels keep their stored orientation (EXIF orientation is not applied), as the model's
    loader reads them.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale
            img = im.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ReleaseDataError(f"image {image_id}: cannot decode it to resize: {exc}") from None
    w, h = img.size
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=False)
    return buf.getvalue(), img.size[0], img.size[1]
