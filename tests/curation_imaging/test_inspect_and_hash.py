"""inspect_and_hash: the import path's single decode refuses exactly what inspect_image
refuses (JPEG drafts included) and gives exactly hash_image's hashes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from curation.imaging.hashing import hash_image, inspect_and_hash
from curation.imaging.validate import InvalidImage, inspect_image

from .conftest import encode, photo


def outcome(fn, data: bytes) -> str:
    try:
        fn(io.BytesIO(data))
        return "ok"
    except InvalidImage as exc:
        return exc.reason


def damaged_variants(good: bytes, rng: np.random.Generator, n: int) -> list[bytes]:
    """Truncations, deleted runs and overwritten bytes past the headers."""
    out = []
    for t in range(n):
        b = bytearray(good)
        if t % 3 == 0:
            b = b[: int(len(b) * rng.uniform(0.05, 0.999))]
        elif t % 3 == 1:
            for _ in range(int(rng.integers(1, 50))):
                b[int(rng.integers(600, len(b)))] = int(rng.integers(0, 256))
        else:
            at = int(rng.integers(600, len(b) - 5000))
            del b[at : at + int(rng.integers(1, 4000))]
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("subsampling", [0, 2])
def test_damaged_jpegs_are_refused_exactly_as_a_full_decode_refuses_them(progressive,
                                                                         subsampling):
    big = photo("astronaut").resize((2016, 1344))  # large enough for a 1/8 draft
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90, progressive=progressive, subsampling=subsampling)
    variants = damaged_variants(buf.getvalue(), np.random.default_rng(subsampling), 30)
    full = [outcome(inspect_image, v) for v in variants]
    ours = [outcome(inspect_and_hash, v) for v in variants]
    assert ours == full
    assert "corrupt" in full and "ok" in full  # both kinds are in the sample


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_sound_files_give_hash_image_and_inspect_image_answers(fmt):
    data = encode(photo("astronaut").resize((1600, 1200)), fmt)
    got = inspect_and_hash(io.BytesIO(data))
    want = hash_image(io.BytesIO(data))
    info = inspect_image(io.BytesIO(data))
    assert got == want
    assert (got.width, got.height, got.format, got.sha256) == (
        info.width, info.height, info.format, info.sha256)


def test_truncated_pngs_and_cut_chunks_are_refused():
    png = encode(photo("camera"), "PNG")
    for cut in (png[: len(png) // 2], png[:-12]):
        assert outcome(inspect_and_hash, cut) == outcome(inspect_image, cut) == "corrupt"


def test_bombs_are_refused_from_the_header():
    data = encode(Image.new("RGB", (2000, 2000)), "PNG")
    with pytest.raises(InvalidImage) as info:
        inspect_and_hash(io.BytesIO(data), max_pixels=1_000_000)
    assert info.value.reason == "decompression_bomb"
