"""Measure precision/recall of "pHash within k" on generated near-duplicates; pick the default k.

Originals: the photos that ship with scikit-image, whole and as four non-overlapping quadrants
(different pictures), plus the 200 small LFW crops of `data.lfw_subset()` upscaled. Copies of
every original: resized (50 %, 25 %, 200 %), recompressed (JPEG quality 30, 50, 75), lightly
cropped (2 % and 5 % of each dimension, split unevenly between the two sides) and all three at
once. Positives are (original, copy) pairs; negatives are pairs of originals from different
photos. Every file is hashed by the pipeline's own `hashing.hash_image` (draft decoding).

Measured (`python -m curation.imaging.calibrate_k`; 300 originals, 2,700 positive and
44,650 negative pairs). pHash sets the bits of the 64 DCT coefficients above their median, so
(ties aside) every hash has 32 bits set and distances are even: odd k behave as k - 1.

     k  recall  false-pos rate  precision
     4  0.807   0               1.000
     6  0.880   0               1.000
     8  0.932   0.00004         0.9992
    10  0.960   0.00009         0.9985
    12  0.984   0.00034         0.9944
    14  0.993   0.00083         0.9864
    16  0.997   0.00264         0.9580

Recall by transform at k = 10: resize 50 %, 25 %, 200 % and JPEG q75 1.00, q50 0.99, q30 0.98,
2 % crop 0.99, 5 % crop 0.76, crop + resize + q60 together 0.92. The false positives at k <= 10
are look-alikes (two upscaled 25 px LFW faces, the colour wheel vs a retina quadrant: a disc on
black). pHash is not crop-robust: 5 % crops are what a larger k buys, while false matches
grow about threefold per two bits beyond 10. k = 10 (`near_dup.DEFAULT_K`, also imagededup's
default) keeps precision above 0.998 with recall 0.96; a job can lower it (k = 6: no false
positive here, recall 0.88) for a pool where chains of look-alikes are a concern, since
clusters are transitive.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from curation.imaging.hashing import hash_image

PHOTOS = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins",
          "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
          "immunohistochemistry", "logo", "moon", "page", "retina", "rocket", "text")

Transform = Callable[[Image.Image, np.random.Generator], tuple[Image.Image, int]]


def _resize(f: float) -> Transform:
    def t(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
        size = (max(8, round(img.width * f)), max(8, round(img.height * f)))
        return img.resize(size, Image.Resampling.LANCZOS), 90
    return t


def _jpeg(quality: int) -> Transform:
    return lambda img, rng: (img, quality)


def _crop(fraction: float) -> Transform:
    def t(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
        dw, dh = round(img.width * fraction), round(img.height * fraction)
        left, top = int(rng.integers(0, dw + 1)), int(rng.integers(0, dh + 1))
        return img.crop((left, top, img.width - (dw - left), img.height - (dh - top))), 90
    return t


def _combo(img: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
    img, _ = _crop(0.03)(img, rng)
    img, _ = _resize(0.5)(img, rng)
    return img, 60


TRANSFORMS: dict[str, Transform] = {
    "resize_50": _resize(0.5), "resize_25": _resize(0.25), "resize_200": _resize(2.0),
    "jpeg_q75": _jpeg(75), "jpeg_q50": _jpeg(50), "jpeg_q30": _jpeg(30),
    "crop_2": _crop(0.02), "crop_5": _crop(0.05), "crop3_resize50_q60": _combo,
}


def originals(limit: int | None = None) -> list[tuple[str, Image.Image]]:
    """(group, image): images of the same group come from one photo and are never negatives."""
    from skimage import data as skdata

    out: list[tuple[str, Image.Image]] = []
    for name in PHOTOS:
        arr = getattr(skdata, name)()
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        img = Image.fromarray(arr).convert("RGB")
        out.append((name, img))
        w, h = img.size
        for box in [(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2),
                    (0, h // 2, w // 2, h), (w // 2, h // 2, w, h)]:
            out.append((name, img.crop(box)))
    faces = skdata.lfw_subset()
    for i, face in enumerate(faces):
        img = Image.fromarray((face * 255).astype(np.uint8)).convert("RGB")
        out.append((f"lfw{i}", img.resize((200, 200), Image.Resampling.BICUBIC)))
    return out if limit is None else out[:: max(1, len(out) // limit)]


def _jpeg_bytes(img: Image.Image, quality: int) -> io.BytesIO:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return buf


@dataclass(frozen=True)
class Study:
    ks: np.ndarray
    recall: np.ndarray
    fp_rate: np.ndarray
    precision: np.ndarray
    recall_by_transform: dict[str, np.ndarray]
    n_originals: int
    n_positive: int
    n_negative: int


def run_study(limit: int | None = None, seed: int = 0, max_k: int = 16) -> Study:
    rng = np.random.default_rng(seed)
    bases = originals(limit)
    base_hashes = np.array([hash_image(_jpeg_bytes(img, 95)).phash for _, img in bases],
                           dtype=np.uint64)
    groups = np.array([g for g, _ in bases])
    pos_d: dict[str, list[int]] = {name: [] for name in TRANSFORMS}
    for (_, img), bh in zip(bases, base_hashes, strict=True):
        for name, transform in TRANSFORMS.items():
            copy, quality = transform(img, rng)
            h = hash_image(_jpeg_bytes(copy, quality)).phash
            pos_d[name].append((int(bh) ^ h).bit_count())
    # Negatives: every pair of originals from different photos.
    iu, ju = np.triu_indices(len(bases), 1)
    keep = groups[iu] != groups[ju]
    neg_d = np.bitwise_count(base_hashes[iu[keep]] ^ base_hashes[ju[keep]])
    ks = np.arange(0, max_k + 1)
    all_pos = np.concatenate([np.asarray(v) for v in pos_d.values()])
    tp = (all_pos[None, :] <= ks[:, None]).sum(axis=1)
    fp = (neg_d[None, :] <= ks[:, None]).sum(axis=1)
    return Study(
        ks=ks,
        recall=tp / all_pos.size,
        fp_rate=fp / neg_d.size,
        precision=np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0),
        recall_by_transform={n: (np.asarray(v)[None, :] <= ks[:, None]).mean(axis=1)
                             for n, v in pos_d.items()},
        n_originals=len(bases),
        n_positive=int(all_pos.size),
        n_negative=int(neg_d.size),
    )


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use about this many originals")
    args = parser.parse_args(argv)
    s = run_study(args.limit)
    print(f"{s.n_originals} originals, {s.n_positive} positive and {s.n_negative} negative pairs")
    print(f"{'k':>3} {'recall':>7} {'fp_rate':>9} {'precision':>9}  recall by transform")
    names = list(s.recall_by_transform)
    for i, k in enumerate(s.ks):
        by = " ".join(f"{n}={s.recall_by_transform[n][i]:.2f}" for n in names)
        print(f"{k:>3} {s.recall[i]:>7.3f} {s.fp_rate[i]:>9.5f} {s.precision[i]:>9.4f}  {by}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
