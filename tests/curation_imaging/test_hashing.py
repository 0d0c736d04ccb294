"""hashing: imagehash-compatible pHash/dHash, draft decoding within its tolerance, batches."""

from __future__ import annotations

import hashlib
import io

import imagehash
import pytest
from PIL import Image

from curation.imaging.hashing import (
    DRAFT_TOLERANCE,
    ImageHashes,
    apply_draft,
    from_signed64,
    hamming,
    hash_files,
    hash_image,
    hashes_of,
    hex_to_int,
    imagehash_to_int,
    int_to_hex,
    to_signed64,
)
from curation.imaging.validate import InvalidImage

from .conftest import encode, noisy, photo


def plain(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return (imagehash_to_int(imagehash.phash(img)), imagehash_to_int(imagehash.dhash(img)))


def test_int_encoding_matches_imagehash_hex():
    h = imagehash.phash(photo("coffee"))
    value = imagehash_to_int(h)
    assert int_to_hex(value) == str(h)
    assert hex_to_int(str(h)) == value
    assert hamming(value, imagehash_to_int(imagehash.phash(photo("chelsea")))) == (
        h - imagehash.phash(photo("chelsea"))
    )


def test_signed64_round_trip():
    for value in (0, 1, 2**63 - 1, 2**63, 2**64 - 1):
        signed = to_signed64(value)
        assert -(2**63) <= signed < 2**63
        assert from_signed64(signed) == value


def test_png_hashes_equal_plain_imagehash_exactly():
    data = encode(photo("rocket"), "PNG")
    h = hash_image(io.BytesIO(data))
    assert (h.phash, h.dhash) == plain(data)
    assert h.sha256 == hashlib.sha256(data).hexdigest()
    assert (h.width, h.height, h.format) == (640, 427, "PNG")


def test_draft_really_decodes_a_smaller_frame():
    data = encode(noisy(photo(), (2048, 1536)), quality=90)
    with Image.open(io.BytesIO(data)) as img:
        assert apply_draft(img)
        img.load()
        assert img.mode == "L" and max(img.size) <= 512 and min(img.size) >= 128


def test_a_short_side_of_exactly_twice_the_minimum_is_halved():
    """The two copies of apply_draft disagreed here: hashing's skipped the draft (scale >= 0.5),
    clip_filter's took it. The half keeps the short side at min_side, so it is taken, for
    greyscale (hashing) and RGB (CLIP) drafts alike; one pixel less and nothing is drafted."""
    for mode in ("L", "RGB"):
        with Image.open(io.BytesIO(encode(noisy(photo(), (384, 256)), quality=90))) as img:
            assert apply_draft(img, 128, mode)
            img.load()
            assert (img.size, img.mode) == ((192, 128), mode)
        with Image.open(io.BytesIO(encode(noisy(photo(), (382, 255)), quality=90))) as img:
            assert not apply_draft(img, 128, mode)
            img.load()
            assert (img.size, img.mode) == ((382, 255), "RGB")


@pytest.mark.parametrize("name", ["astronaut", "coffee", "camera", "immunohistochemistry"])
@pytest.mark.parametrize(("size", "quality"), [((2016, 1344), 90), ((3000, 2000), 75),
                                               ((1024, 768), 97), ((700, 700), 60)])
def test_draft_hashes_within_documented_tolerance_of_plain(name, size, quality):
    data = encode(noisy(photo(name), size, seed=len(name)), quality=quality)
    fast = hash_image(io.BytesIO(data))
    plain_p, plain_d = plain(data)
    assert (fast.width, fast.height) == size  # the stored size, not the draft's
    assert hamming(fast.phash, plain_p) <= DRAFT_TOLERANCE
    assert hamming(fast.dhash, plain_d) <= DRAFT_TOLERANCE
    assert hash_image(io.BytesIO(data), draft=False).phash == plain_p


def test_hash_image_hashes_the_draft_not_the_full_frame(monkeypatch):
    from curation.imaging import hashing

    seen = []
    real = hashing.hashes_of

    def spy(img):
        result = real(img)
        seen.append((img.mode, img.size))
        return result

    monkeypatch.setattr(hashing, "hashes_of", spy)
    data = encode(noisy(photo(), (2400, 1600)), quality=90)
    hashing.hash_image(io.BytesIO(data))
    hashing.hash_image(io.BytesIO(data), draft=False)
    assert seen == [("L", (300, 200)), ("RGB", (2400, 1600))]


def test_hash_image_refuses_bad_files():
    with pytest.raises(InvalidImage) as info:
        hash_image(io.BytesIO(b"not an image"))
    assert info.value.reason == "corrupt"
    data = encode(photo(), quality=90)
    with pytest.raises(InvalidImage):
        hash_image(io.BytesIO(data[: len(data) // 3]))


def test_hash_files_in_parallel_keeps_order_and_reports_bad_files(tmp_path):
    paths = []
    for i, name in enumerate(["astronaut", "coffee", "chelsea", "rocket", "camera"]):
        p = tmp_path / f"{i}.jpg"
        p.write_bytes(encode(noisy(photo(name), (800, 600), seed=i), quality=85))
        paths.append(p)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    paths.insert(2, bad)
    paths.append(tmp_path / "missing.jpg")

    parallel = hash_files(paths, processes=2, chunksize=2)
    serial = hash_files(paths, processes=1)
    assert [o.path for o in parallel] == [str(p) for p in paths]
    assert parallel == serial
    assert parallel[2].hashes is None and parallel[2].reason == "corrupt"
    assert parallel[-1].hashes is None and parallel[-1].reason == "unreadable"
    good = [o for o in parallel if o.hashes is not None]
    assert len(good) == 5
    assert all(isinstance(o.hashes, ImageHashes) for o in good)
    assert len({o.hashes.phash for o in good}) == 5
    assert good[0].hashes == hash_image(paths[0])


def test_hashes_of_matches_imagehash_on_an_open_image():
    img = photo("chelsea")
    assert hashes_of(img) == (imagehash_to_int(imagehash.phash(img)),
                              imagehash_to_int(imagehash.dhash(img)))
