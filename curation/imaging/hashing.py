"""Content hashes of images: sha256 (exact duplicates), pHash and dHash (near duplicates).

pHash and dHash are the 64-bit hashes `imagehash.phash(img)` / `imagehash.dhash(img)` compute
(hash_size 8), returned as unsigned ints whose big-endian hex equals `str(imagehash_hash)`.

Speed: JPEG draft decoding
--------------------------
Both hashes look at a 32x32 (pHash) or 9x8 (dHash) greyscale thumbnail, yet a plain
`imagehash.phash(Image.open(p))` decodes every pixel in colour and then runs a Lanczos filter
over the full frame. For JPEG (and MPO) we ask libjpeg for a draft instead: `Image.draft("L",
...)` decodes only the luma channel and lets the IDCT scale by 1/2, 1/4 or 1/8, so the decoder
skips colour conversion, chroma upsampling and most of the IDCT, and the Lanczos filter runs on
a frame 64x smaller. The draft is never smaller than `DRAFT_MIN_SIDE` on its short side, then
imagehash computes the hash from it exactly as usual. Other formats are decoded in full.

Measured (`python -m curation.imaging.hashing --tolerance`: 7 scikit-image photos x 5 sizes
from 0.3 to 18 Mpx x JPEG quality 60/75/90/97 x chroma 4:2:0/4:4:4, 280 files), Hamming
distance between the draft hash and plain imagehash on the same file:

    pHash: mean 0.09 bits, 99th percentile 2, max 2
    dHash: mean 0.43 bits, 99th percentile 2, max 3

For reference, recompressing a JPEG at quality 75 moves pHash by 0-4 bits by itself, and the
near-duplicate threshold is `near_dup.DEFAULT_K` = 10: the draft error can only tip a pair that
already sits within 2 bits of the threshold. `DRAFT_TOLERANCE` (4 bits) is the bound the tests
hold it to. Every image of the pool is hashed the same way, so comparisons stay consistent.

Throughput (`benchmarks/hashing.py`, 200 JPEGs of 2.7 Mpx, 2 cores): this stage (sha256 +
pHash + dHash) 314 images/s on two processes, 179 on one; plain
`imagehash.phash(Image.open(p))` 54 on one; imagededup's `PHash().encode_images()` 62 on two.
That is 5.8x plain imagehash and 5.1x imagededup. Decoding dominates what is left: libjpeg
still entropy-decodes every coefficient, whatever the scale.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TypedDict, Unpack

import imagehash
import numpy as np
from PIL import Image

from curation.imaging.validate import (
    DEFAULT_MAX_PIXELS,
    FileOutcome,
    InvalidImage,
    PathOrFile,
    Reason,
    decode_checked,
    open_image,
    read_bytes,
)

# Short side of the JPEG draft: at least 4x the pHash's 32 px thumbnail, so the Lanczos filter
# still does most of the smoothing (measured: mean dHash error 0.51 bits at 64 px, 0.43 at
# 128), while libjpeg's 1/8 scale still applies from 1024 px up (decoding cost barely moves).
DRAFT_MIN_SIDE = 128

# Documented, tested bound on |draft hash - plain imagehash| in bits (see module docstring).
DRAFT_TOLERANCE = 4

_DRAFT_FORMATS = frozenset({"JPEG", "MPO"})


@dataclass(frozen=True)
class ImageHashes:
    sha256: str
    phash: int  # unsigned 64-bit
    dhash: int  # unsigned 64-bit
    width: int  # of the stored image, not of the draft
    height: int
    format: str


class HashOutcome(FileOutcome[ImageHashes]):
    """One file of `hash_files`: `hashes`, or the reason it could not be hashed."""

    @property
    def hashes(self) -> ImageHashes | None:
        return self.value


def imagehash_to_int(h: imagehash.ImageHash) -> int:
    """The bits of an ImageHash as an int, row-major, first bit most significant."""
    return int.from_bytes(np.packbits(h.hash.ravel()).tobytes(), "big")


def int_to_hex(value: int) -> str:
    """16 hex digits, the same string `str(imagehash_hash)` gives for a 64-bit hash."""
    return f"{value:016x}"


def hex_to_int(value: str) -> int:
    return int(value, 16)


def to_signed64(value: int) -> int:
    """Unsigned 64-bit hash -> signed value, for a database BIGINT column."""
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def hashes_of(img: Image.Image) -> tuple[int, int]:
    """(pHash, dHash) of an opened image, exactly as imagehash computes them."""
    return imagehash_to_int(imagehash.phash(img)), imagehash_to_int(imagehash.dhash(img))


def apply_draft(img: Image.Image, min_side: int = DRAFT_MIN_SIDE, mode: str = "L") -> bool:
    """Ask a JPEG for a reduced draft in `mode` whose short side stays >= min_side; returns
    whether a draft was set up. The one JPEG draft rule: hashing asks for greyscale ("L"),
    the CLIP filter for "RGB".

    The requested size keeps the aspect ratio, so libjpeg picks the largest 1/2^n reduction
    whose short side stays >= min_side. A short side of exactly 2 x min_side is halved (the
    half still meets min_side); below that no reduction would, and nothing is asked for.
    """
    if (img.format or "").upper() not in _DRAFT_FORMATS:
        return False
    width, height = img.size
    scale = min_side / min(width, height)
    if scale > 0.5:
        return False  # no 1/2^n reduction would keep the short side >= min_side
    img.draft(mode, (max(1, round(width * scale)), max(1, round(height * scale))))
    return True


def hash_image(
    source: PathOrFile,
    *,
    draft: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_min_side: int = DRAFT_MIN_SIDE,
) -> ImageHashes:
    """sha256 of the bytes plus pHash and dHash of the picture; raises InvalidImage.

    The file is read once: the bytes feed sha256 and the decoder.
    """
    data = read_bytes(source)
    sha256 = hashlib.sha256(data).hexdigest()
    img = open_image(data, max_pixels=max_pixels)
    width, height = img.size
    fmt = (img.format or "").upper()
    try:
        with img:
            if draft:
                apply_draft(img, draft_min_side)
            phash, dhash = hashes_of(img)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(Reason.CORRUPT, f"the image cannot be decoded: {exc}") from None
    return ImageHashes(sha256, phash, dhash, width, height, fmt)


def inspect_and_hash(
    source: PathOrFile,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_min_side: int = DRAFT_MIN_SIDE,
) -> ImageHashes:
    """`validate.inspect_image`'s check and `hash_image`'s hashes from one decode.

    The decode that feeds the hashes is the validation: a JPEG's draft still entropy-decodes
    every coefficient of every component (libjpeg only skips the IDCT and colour work), so a
    truncated or damaged file fails here exactly as in a full decode (tested on truncations,
    deleted runs and overwritten bytes of baseline and progressive JPEGs); other formats are
    decoded in full, and a PNG's chunks are CRC-checked as `inspect_image` does. The hashes are
    those of `hash_image(draft=True)`. Raises InvalidImage.
    """
    info, hashes = decode_checked(
        source,
        max_pixels=max_pixels,
        prepare=lambda img: apply_draft(img, draft_min_side),
        measure=hashes_of,
    )
    return ImageHashes(info.sha256, *hashes, info.width, info.height, info.format)


def _hash_one(args: tuple[str, bool, int, bool]) -> HashOutcome:
    path, draft, max_pixels, validate = args
    try:
        if validate:
            return HashOutcome(path, inspect_and_hash(path, max_pixels=max_pixels))
        return HashOutcome(path, hash_image(path, draft=draft, max_pixels=max_pixels))
    except (InvalidImage, OSError) as exc:  # a bad or unreadable file: the batch goes on
        return HashOutcome.refused(path, exc)


def usable_cpus() -> int:
    """CPUs this process may run on (respects taskset and container CPU sets)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class HashOptions(TypedDict, total=False):
    """How `iter_hash_files` / `hash_files` hash (see iter_hash_files)."""

    processes: int | None
    chunksize: int
    progress: bool
    draft: bool
    max_pixels: int
    mp_context: BaseContext | None
    validate: bool


def hash_files(paths: Iterable[str | Path], **options: Unpack[HashOptions]) -> list[HashOutcome]:
    """All the outcomes of `iter_hash_files`, in input order."""
    return list(iter_hash_files(paths, **options))


def iter_hash_files(
    paths: Iterable[str | Path],
    *,
    processes: int | None = None,
    chunksize: int = 16,
    progress: bool = False,
    draft: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    mp_context: BaseContext | None = None,
    validate: bool = False,
) -> Iterator[HashOutcome]:
    """Hash many files on all cores, in input order; a bad file becomes an outcome, not an error.
    Each outcome is yielded as soon as it is ready, so the caller's work on one file overlaps
    the hashing of the next ones.

    processes: worker processes (default: the CPUs this process may use); 1 hashes in-process,
    which is what a Celery prefork worker must do (its daemonic children may not fork pools;
    scale there with worker concurrency instead). Files are handed out in chunks of `chunksize`
    so that inter-process traffic stays small next to decoding. validate: check each file as
    `inspect_and_hash` does (a bad file becomes an outcome with its reason), with draft on.
    """
    from tqdm import tqdm

    jobs = [(str(p), draft, max_pixels, validate) for p in paths]
    if processes is None:
        processes = usable_cpus()
    processes = max(1, min(processes, len(jobs)))
    bar = tqdm(total=len(jobs), desc="hash", unit="img", disable=not progress)
    try:
        if processes == 1:
            for job in jobs:
                yield _hash_one(job)
                bar.update()
        else:
            ctx = mp_context or multiprocessing.get_context()
            with ctx.Pool(processes) as pool:
                for outcome in pool.imap(_hash_one, jobs, chunksize=chunksize):
                    yield outcome
                    bar.update()
    finally:
        bar.close()


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def measure_draft_tolerance(paths: Sequence[str | Path]) -> dict[str, dict[str, float]]:
    """Hamming distance between draft and plain hashes on the same files (pHash and dHash)."""
    stats: dict[str, list[int]] = {"phash": [], "dhash": []}
    for p in paths:
        fast = hash_image(p, draft=True)
        with Image.open(p) as img:
            plain_p, plain_d = hashes_of(img)
        stats["phash"].append(hamming(fast.phash, plain_p))
        stats["dhash"].append(hamming(fast.dhash, plain_d))
    out: dict[str, dict[str, float]] = {}
    for name, values in stats.items():
        arr = np.asarray(values)
        out[name] = {
            "n": float(arr.size),
            "mean": float(arr.mean()),
            "p99": float(np.percentile(arr, 99)),
            "max": float(arr.max()),
        }
    return out


def write_tolerance_corpus(folder: Path) -> list[Path]:
    """JPEGs of scikit-image photos at several sizes, qualities and chroma subsamplings."""
    from skimage import data as skdata

    rng = np.random.default_rng(7)
    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry",
             "hubble_deep_field"]
    long_sides = [640, 1280, 2016, 2800, 4240]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        base = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        for long_side in long_sides:
            ratio = rng.choice([1.0, 4 / 3, 3 / 2])
            size = (long_side, round(long_side / ratio))
            arr = np.asarray(base.resize(size, Image.Resampling.BICUBIC)).astype(np.int16)
            arr = arr + rng.normal(0, 4, arr.shape).astype(np.int16)  # sensor-like grain
            img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
            for quality in (60, 75, 90, 97):
                for subsampling in (2, 0):  # 4:2:0 and 4:4:4
                    p = folder / f"{name}_{long_side}_q{quality}_s{subsampling}.jpg"
                    img.save(p, quality=quality, subsampling=subsampling)
                    paths.append(p)
    return paths


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tolerance", action="store_true",
                        help="measure draft vs plain Hamming distance on generated JPEGs")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the corpus")
    parser.add_argument("files", nargs="*", type=Path, help="hash these files")
    args = parser.parse_args(argv)
    if args.tolerance:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            paths = write_tolerance_corpus(args.dir or Path(tmp))
            for name, s in measure_draft_tolerance(paths).items():
                print(f"{name}: n={s['n']:.0f} mean={s['mean']:.2f} p99={s['p99']:.0f} "
                      f"max={s['max']:.0f}")
        return 0
    for outcome in hash_files(args.files, progress=sys.stderr.isatty()):
        h = outcome.hashes
        if h is None:
            print(f"{outcome.path}\t{outcome.reason}\t{outcome.message}")
        else:
            print(f"{outcome.path}\t{h.sha256}\t{int_to_hex(h.phash)}\t{int_to_hex(h.dhash)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
