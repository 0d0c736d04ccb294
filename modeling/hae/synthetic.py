"""Synthetic releases in the official layout, for tests, benchmarks and demos.

Each image is a random colourful pattern with fine texture, then given a known brightness,
contrast, saturation and sharpness (blur). Its scores are a fixed function of those four factors,
so a model that learns from pixels can be checked on held-out images with nothing hard-coded.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from humanbeauty.standard import DIMENSION_KEYS, score_to_level


@dataclass(frozen=True)
class Factors:
    brightness: float
    contrast: float
    saturation: float
    sharpness: float

    def overall(self) -> float:
        return (
            0.35 * self.brightness
            + 0.25 * self.contrast
            + 0.2 * self.saturation
            + (0.2 * self.sharpness)
        )

    def dimensions(self) -> list[float]:
        """12 scores in the official order; parents are the mean of their children, except the
        comprehensive score, which is :meth:`overall` as for overall-only images."""
        b, c, s, k = self.brightness, self.contrast, self.saturation, self.sharpness
        face = [b, k, s, c, (k + c) / 2]
        general = [s, c, (b + s) / 2]
        env = (b + k) / 2
        values = {
            **dict(zip(DIMENSION_KEYS[:5], face, strict=True)),
            "facial_aesthetic": sum(face) / 5,
            **dict(zip(DIMENSION_KEYS[6:9], general, strict=True)),
            "environment": env,
            "general_appearance_aesthetic": sum(general) / 3,
            "comprehensive_aesthetic": self.overall(),
        }
        return [round(values[k], 6) for k in DIMENSION_KEYS]


def render(factors: Factors, size: tuple[int, int], rng: random.Random) -> Image.Image:
    w, h = size
    gen = np.random.default_rng(rng.randrange(2**32))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for _ in range(4):  # soft colour blobs: varied content that the scores do not depend on
        cx, cy, r = gen.uniform(0, w), gen.uniform(0, h), gen.uniform(0.2, 0.6) * max(w, h)
        img += (
            gen.uniform(0, 1, 3) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
        )
    img = img / max(img.max(), 1e-6)
    img += 0.25 * gen.choice([-1.0, 1.0], size=(h, w, 1)).astype(np.float32)  # fine texture
    gray = img.mean(-1, keepdims=True)
    img = gray + (img - gray) * (2.0 * factors.saturation)
    img = img.mean() + (img - img.mean()) * (0.2 + 1.3 * factors.contrast)
    img = (img - img.mean()) + 0.15 + 0.7 * factors.brightness
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    radius = 2.5 * (1.0 - factors.sharpness)
    return pil.filter(ImageFilter.GaussianBlur(radius)) if radius > 0.05 else pil


def write_synthetic_release(
    out_dir: str | Path,
    n_train: int = 16,
    n_test: int = 8,
    expert_fraction: float = 0.5,
    size: tuple[int, int] = (64, 48),
    seed: int = 0,
    n_val: int = 0,
) -> Path:
    """Write ``out_dir/HumanBeauty`` (58K-style overall-only and 50K-style 12-dim parts, plus
    train/test split files, and val with ``n_val``) and return that root."""
    rng = random.Random(seed)
    root = Path(out_dir) / "HumanBeauty"
    parts = {False: "HumanBeauty-58K", True: "HumanBeauty-50K"}
    for part in parts.values():
        (root / part / "images").mkdir(parents=True, exist_ok=True)
    counts = {"train": n_train, "test": n_test, **({"val": n_val} if n_val else {})}
    labels: dict[str, list[dict]] = {split: [] for split in counts}
    per_part: dict[bool, list[dict]] = {False: [], True: []}
    for split, count in counts.items():
        for i in range(count):
            expert = rng.random() < expert_fraction
            f = Factors(*(rng.random() for _ in range(4)))
            name = f"{split}_{i:05d}.png"
            render(f, size, rng).save(root / parts[expert] / "images" / name)
            line: dict = {"image_name": f"{parts[expert]}/images/{name}", "is_expert": expert}
            if expert:
                line.update(source="synthetic-expert", score=f.dimensions())
            else:
                overall = round(f.overall(), 6)
                line.update(source="synthetic", score=overall, text_level=score_to_level(overall))
            labels[split].append(line)
            per_part[expert].append({**line, "image_name": name})
    for split, lines in labels.items():
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (root / f"{split}_label.jsonl").write_text(text)
    for expert, lines in per_part.items():
        text = "".join(json.dumps(line) + "\n" for line in lines)
        (root / parts[expert] / "label.jsonl").write_text(text)
    return root
