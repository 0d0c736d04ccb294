"""Simulated raters over a project whose true scores are known."""

from __future__ import annotations

import random

import numpy as np
import pytest

from annotation import services
from annotation.models import ItemKind
from annotation.services.quality import set_references
from curation.models import Image
from humanbeauty.standard import DIMENSION_KEYS
from tests.conftest import new_request_id


def true_scores(image_id: int) -> dict[str, float]:
    """A fixed, image-specific truth per dimension, away from the bounds: seeded by the image's
    bytes (sha256), not its row id, so a test sees the same truths whichever tests ran before
    it (ids are never reused, and a truth drawn from them made screening outcomes vary)."""
    sha = Image.objects.values_list("sha256", flat=True).get(pk=image_id)
    rng = np.random.default_rng(int(sha[:16], 16))
    base = rng.uniform(0.2, 0.8)
    return {k: float(np.clip(base + rng.normal(0, 0.05), 0.05, 0.95)) for k in DIMENSION_KEYS}


class SimRater:
    """careful: small noise; biased: +offset; random: uniform noise unrelated to the image."""

    def __init__(self, kind: str, seed: int, noise: float = 0.04, offset: float = 0.15):
        self.kind, self.noise, self.offset = kind, noise, offset
        self.rng = random.Random(seed)

    def scores(self, image_id: int) -> dict[str, float]:
        truth = true_scores(image_id)
        if self.kind == "random":
            return {k: self.rng.uniform(0, 1) for k in DIMENSION_KEYS}
        shift = self.offset if self.kind == "biased" else 0.0
        return {
            k: min(1.0, max(0.0, v + shift + self.rng.gauss(0, self.noise)))
            for k, v in truth.items()
        }


def rate_until_done(project, user, rater: SimRater, rng=None, limit: int = 10_000) -> int:
    done = 0
    while done < limit:
        try:
            task = services.next_task(project, user, rng=rng)
        except services.WorkflowError:
            break
        if task is None:
            break
        services.submit_rating(task.pk, user, rater.scores(task.image_id), new_request_id())
        done += 1
    return done


def make_references(project, images, kind: ItemKind):
    count, errors = set_references(project, [(img, true_scores(img.pk)) for img in images], kind)
    assert not errors and count == len(images)


@pytest.fixture
def truth():
    return true_scores
