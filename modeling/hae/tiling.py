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


def to_uint8(tiles: list[Image.Image]) -> torch.Tensor:
    """(n_tiles, 3, size, size) uint8: the tiles' pixels as they are (4x smaller than floats,
    so loader workers hand these over and the device normalises them)."""
    pixels = torch.from_numpy(np.stack([np.asarray(t, dtype=np.uint8) for t in tiles]))
    return pixels.permute(0, 3, 1, 2).contiguous()


def normalise(pixels: torch.Tensor, settings: TileSettings) -> torch.Tensor:
    """uint8 tiles -> float32 normalised with the settings' mean/std, on the tensor's device.
    The same float32 operations in the same order on any device, so the CPU and a GPU give
    bit-identical values (IEEE division and subtraction)."""
    out = pixels.float().div_(255.0)
    mean = torch.tensor(settings.mean, dtype=torch.float32, device=out.device).view(1, 3, 1, 1)
    std = torch.tensor(settings.std, dtype=torch.float32, device=out.device).view(1, 3, 1, 1)
    return out.sub_(mean).div_(std)


def to_tensor(tiles: list[Image.Image], settings: TileSettings) -> torch.Tensor:
    """(n_tiles, 3, size, size) float32, normalised (in torch: ~6x faster than numpy floats)."""
    return normalise(to_uint8(tiles), settings)


def preprocess(image: Image.Image, settings: TileSettings) -> torch.Tensor:
    return to_tensor(tile_image(image, settings), settings)


def preprocess_uint8(image: Image.Image, settings: TileSettings) -> torch.Tensor:
    """The tiles of :func:`preprocess` before normalising: ``normalise(preprocess_uint8(im))``
    equals ``preprocess(im)`` bit for bit."""
    return to_uint8(tile_image(image, settings))


# Tiling a decoded image on its tensor's device (a GPU): the same grid and crops, resized by
# torch's antialiased bicubic (Keys a=-0.5, PIL's filter), a horizontal pass rounded to uint8
# levels and then a vertical pass, as PIL does for most sizes. PIL computes in fixed point, torch
# in float32, and for some sizes PIL runs its passes in the other order, so pixels differ from the
# PIL reference a little. Tolerance, tested in tests/modeling_core/test_loading.py (uint8 levels,
# over all of an image's tiles): on photographs at most DEVICE_TILING_MAX_DIFF anywhere and
# DEVICE_TILING_MEAN_DIFF on average; on worst-case content (pixel noise, 3-px checkerboards) a
# mean under DEVICE_TILING_WORST_MEAN, single pixels up to DEVICE_TILING_WORST_MAX (where the
# pass order differs). The PIL path stays the reference and the default.
DEVICE_TILING_MAX_DIFF = 2
DEVICE_TILING_MEAN_DIFF = 0.05
DEVICE_TILING_WORST_MEAN = 1.0
DEVICE_TILING_WORST_MAX = 32


def _resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """PIL's order: a horizontal pass, rounded to uint8 levels, then a vertical pass."""
    out = image.float()
    for size in ((out.shape[-2], width), (height, width)):
        if tuple(out.shape[-2:]) != size:
            out = torch.nn.functional.interpolate(
                out, size=size, mode="bicubic", antialias=True, align_corners=False
            ).round_().clamp_(0, 255)
    return out


def tile_tensor(image: torch.Tensor, settings: TileSettings) -> torch.Tensor:
    """(3, H, W) uint8 RGB on any device -> (n_tiles, 3, size, size) uint8 on that device:
    :func:`tile_image`'s grid, tiles and thumbnail, resized by torch (see above)."""
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected (3, H, W) uint8, not {tuple(image.shape)} {image.dtype}")
    size = settings.tile_size
    height, width = int(image.shape[1]), int(image.shape[2])
    cols, rows = choose_grid(width, height, settings)
    batch = image.unsqueeze(0)
    resized = _resize(batch, rows * size, cols * size)
    # (1, 3, rows*s, cols*s) -> (rows*cols, 3, s, s), row-major like tile_image
    grid = resized.reshape(3, rows, size, cols, size).permute(1, 3, 0, 2, 4)
    tiles = grid.reshape(-1, 3, size, size)
    if settings.use_thumbnail and rows * cols > 1:
        tiles = torch.cat([tiles, _resize(batch, size, size)])
    return tiles.round_().clamp_(0, 255).to(torch.uint8)
