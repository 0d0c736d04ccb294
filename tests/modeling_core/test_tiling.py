from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from modeling.hae.tiling import IMAGENET_MEAN, IMAGENET_STD, TileSettings, choose_grid, preprocess


def test_grid_follows_aspect_ratio_within_the_tile_budget():
    s = TileSettings(tile_size=448, max_tiles=12)
    assert choose_grid(448, 448, s) == (1, 1)
    assert choose_grid(896, 448, s) == (2, 1)
    assert choose_grid(448, 1344, s) == (1, 3)
    assert choose_grid(4000, 100, s) == (12, 1)  # the widest grid the budget allows
    cols, rows = choose_grid(1920, 1080, s)
    assert cols * rows <= 12 and cols > rows


def test_tiles_plus_thumbnail_normalised_with_imagenet_stats():
    s = TileSettings(tile_size=28, max_tiles=12)
    single = preprocess(Image.new("RGB", (20, 20), (124, 116, 104)), s)
    assert single.shape == (1, 3, 28, 28)  # one tile: no thumbnail
    # a tie in aspect ratio goes to the larger grid when the image has the pixels for it
    assert preprocess(Image.new("RGB", (50, 50)), s).shape == (5, 3, 28, 28)
    wide = preprocess(Image.new("RGB", (40, 20), (255, 0, 0)), s)
    assert wide.shape == (3, 3, 28, 28)  # 2x1 tiles + thumbnail
    red = (np.array([1.0, 0.0, 0.0]) - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert torch.allclose(wide[:, :, 10, 10], torch.tensor(red, dtype=torch.float32), atol=1e-5)
