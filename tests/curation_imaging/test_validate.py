"""validate: every kind of bad file is refused with the right reason; sound files pass."""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from curation.imaging.validate import (
    InvalidImage,
    Reason,
    ValidationRules,
    inspect_image,
    validate_image,
)
from humanbeauty.errors import DomainError

from .conftest import encode, photo


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with almost no pixel data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def reason_of(source, **kwargs) -> str:
    with pytest.raises(InvalidImage) as info:
        inspect_image(source, **kwargs)
    assert str(info.value)  # always says what was wrong
    return info.value.reason


def test_sound_jpeg_gives_size_format_and_sha256(write):
    data = encode(photo("coffee"), quality=90)
    path = write("coffee.jpg", data)
    info = inspect_image(path)
    assert (info.width, info.height, info.format) == (600, 400, "JPEG")
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert inspect_image(str(path)) == info


def test_file_object_is_read_whole_and_rewound():
    fh = io.BytesIO(encode(photo("chelsea"), "PNG"))
    fh.seek(17)
    info = inspect_image(fh)
    assert (info.width, info.height, info.format) == (451, 300, "PNG")
    assert fh.tell() == 0  # the caller can store the file from the start


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_files_are_corrupt(fmt, keep):
    data = encode(photo("astronaut"), fmt)
    with pytest.raises(InvalidImage) as info:
        inspect_image(io.BytesIO(data[: int(len(data) * keep)]))
    assert info.value.reason == Reason.CORRUPT
    assert "truncated" in str(info.value) or "cannot" in str(info.value)


@pytest.mark.parametrize("cut", [1, 2, 12])
def test_jpeg_missing_only_its_last_bytes_is_corrupt(cut):
    jpeg = encode(photo("astronaut"), "JPEG")
    assert reason_of(io.BytesIO(jpeg[:-cut])) == "corrupt"


def test_png_with_complete_pixels_but_cut_final_chunk_is_corrupt():
    png = encode(photo("astronaut"), "PNG")
    with Image.open(io.BytesIO(png[:-12])) as img:
        img.load()  # PIL alone accepts it: every pixel is there
    assert reason_of(io.BytesIO(png[:-12])) == "corrupt"  # the CRC walk refuses it


def test_damaged_pixel_data_is_corrupt():
    png = bytearray(encode(photo("camera"), "PNG"))
    start = png.find(b"IDAT") + 4000
    png[start : start + 16] = b"\xff" * 16
    assert reason_of(io.BytesIO(bytes(png))) == "corrupt"


@pytest.mark.parametrize(
    "data",
    [b"", b"just some text, not an image\n" * 10,
     b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n",
     b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4],
    ids=["empty", "text", "eps-not-accepted", "jpeg-magic-then-garbage"],
)
def test_non_images_are_corrupt(data):
    assert reason_of(io.BytesIO(data)) == "corrupt"


def test_bomb_above_our_limit_is_refused_before_decoding():
    # 2000 x 2000 is a fine image; with a limit of 1 Mpx it is a bomb, refused from the header.
    data = encode(Image.new("RGB", (2000, 2000)), "PNG")
    assert reason_of(io.BytesIO(data), max_pixels=1_000_000) == "decompression_bomb"
    assert inspect_image(io.BytesIO(data), max_pixels=4_000_000).width == 2000


def test_header_only_bombs_never_warn_and_never_allocate():
    # 10,000^2 = 100 Mpx: above our default (90 Mpx) and PIL's warning level, below PIL's error.
    # 40,000^2 = 1.6 Gpx: PIL's own hard refusal, turned into our error as well.
    for side in (10_000, 40_000):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(InvalidImage) as info:
                inspect_image(io.BytesIO(png_header_only(side, side)))
        assert info.value.reason == "decompression_bomb"
        assert f"{side}" in str(info.value) or "bomb" in str(info.value)
        assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_invalid_image_is_a_domain_error_with_code_and_survives_pickling():
    with pytest.raises(DomainError) as info:
        inspect_image(io.BytesIO(b"nope"))
    assert info.value.code == info.value.reason == "corrupt"
    assert info.value.message == str(info.value)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (type(copy), copy.reason, copy.message) == (InvalidImage, "corrupt", str(info.value))


def test_refuses_to_validate_if_truncated_loading_was_turned_on(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        inspect_image(io.BytesIO(encode(photo(), "PNG")))


@pytest.mark.parametrize(
    ("size", "reasons"),
    [((400, 300), ()), ((300, 200), ("too_small",)), ((1000, 300), ("aspect_ratio",)),
     ((300, 900), ()), ((100, 400), ("too_small", "aspect_ratio"))],
)
def test_rules_report_every_reason_that_applies(size, reasons):
    rules = ValidationRules(min_short_side=256, max_aspect_ratio=3.0)
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    result = validate_image(io.BytesIO(encode(Image.fromarray(arr), "PNG")), rules)
    assert result.reasons == reasons
    assert result.ok is (not reasons)
    assert result.info is not None and (result.info.width, result.info.height) == size
    if "too_small" in reasons:
        assert "short side" in result.message
    if "aspect_ratio" in reasons:
        assert "aspect ratio" in result.message


def test_validate_reports_corrupt_without_info():
    result = validate_image(io.BytesIO(encode(photo(), "JPEG")[:5000]))
    assert result.info is None
    assert result.reasons == ("corrupt",)
    assert not result.ok
