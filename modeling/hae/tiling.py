"""InternVL dynamic tiling: the image is cut into up to ``max_tiles`` square tiles whose grid
best matches its aspect ratio, plus a thumbnail of the whole image when there is more than one
tile, then normalised with ImageNet mean/std (the official preprocessing, tile size a parameter
so that tiny test models can use small tiles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TileSettings:
    tile_size: int = 448
    max_tiles: int = 12
    min_tiles: int = 1
    use_thumbnail: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def candidate_grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    """All (columns, rows) grids with min..max tiles, fewest tiles first (ties keep this order)."""
    grids = {
        (c, r)
        for c in range(1, max_tiles + 1)
        for r in range(1, max_tiles + 1)
        if min_tiles <= c * r <= max_tiles
    }
    return sorted(grids, key=lambda g: (g[0] * g[1], g))


def choose_grid(width: int, height: int, settings: TileSettings) -> tuple[int, int]:
    """Closest aspect ratio; on a tie the larger grid wins only if the image has the pixels
    to fill more than half of it (as in InternVL)."""
    aspect = width / height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in candidate_grids(settings.min_tiles, settings.max_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and width * height > 0.5 * settings.tile_size**2 * cols * rows:
            best = (cols, rows)
    return best


def tile_image(image: Image.Image, settings: TileSettings) -> list[Image.Image]:
    image = image.convert("RGB")
    size = settings.tile_size
    cols, rows = choose_grid(image.width, image.height, settings)
    resized = image.resize((cols * size, rows * size), Image.Resampling.BICUBIC)
    tiles = [
        resized.crop((c * size, r * size, (c + 1) * size, (r + 1) * size))
        for r in range(rows)
        for c in range(cols)
    ]
    if settings.use_thumbnail and len(tiles) > 1:
        tiles.append(image.resize((size, size), Image.Resampling.BICUBIC))
    return tiles


def to_tensor(tiles: list[Image.Image], settings: TileSettings) -> torch.Tensor:
    """(n_tiles, 3, size, size) float32, normalised (in torch: ~6x faster than numpy floats)."""
    pixels = torch.from_numpy(np.stack([np.asarray(t, dtype=np.uint8) for t in tiles]))
    pixels = pixels.permute(0, 3, 1, 2).contiguous().float().div_(255.0)
    mean = torch.tensor(settings.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(settings.std, dtype=torch.float32).view(1, 3, 1, 1)
    return pixels.sub_(mean).div_(std)


def preprocess(image: Image.Image, settings: TileSettings) -> torch.Tensor:
    return to_tensor(tile_image(image, settings), settings)
