"""Test JPEGs for the benchmarks: crops of scikit-image photos, upscaled, with sensor grain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry",
          "hubble_deep_field")


def make_jpegs(folder: Path, n: int, size: tuple[int, int], quality: int = 90) -> list[Path]:
    """n different JPEGs: crops of scikit-image photos, upscaled, with sensor-like grain."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    bases = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in PHOTOS]
    paths = []
    for i in range(n):
        path = folder / f"img_{i:04d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        base = bases[i % len(bases)]
        w, h = base.size
        cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = base.crop((x, y, x + cw, y + ch)).resize(size, Image.Resampling.BICUBIC)
        arr = np.asarray(img).astype(np.int16) + rng.normal(0, 4, (size[1], size[0], 3)).astype(
            np.int16)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=quality)
    return paths
