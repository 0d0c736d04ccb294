"""Rows for the Django-free release core: real image files, planted near-duplicate clusters."""

from __future__ import annotations

import hashlib
import random

import pytest

from humanbeauty.standard import DIMENSIONS
from modeling.release import ReleaseConfig, ReleaseRow
from tests.conftest import write_image

OVERALL_SOURCES = ("AVA", "TAD66K", "SCUT-FBP5500", "BAID", "AGIQA")
EXPERT_SOURCE = "hb-project"


@pytest.fixture(autouse=True)
def _media_root():
    """Overrides the Django-settings fixture of tests/conftest.py: this core needs no Django."""
    yield


def _scores(rng: random.Random, hidden_face: bool) -> tuple:
    values = [round(rng.uniform(0.05, 0.95), 4) for _ in DIMENSIONS]
    if hidden_face:  # no visible face: the five facial features and the facial score are null
        values[:6] = [None] * 6
    return tuple(values)


def make_rows(n_overall: int, n_expert: int, *, seed: int = 0, folder=None,
              cluster_every: int = 7, start_id: int = 1, size=(40, 30)) -> list[ReleaseRow]:
    """Rows with ids from ``start_id``; every ``cluster_every``-th image opens a cluster of 2-4
    near-duplicates (consecutive ids). Files are written under ``folder`` when given."""
    rng = random.Random(seed)
    rows: list[ReleaseRow] = []
    image_id = start_id
    cluster_id = start_id * 10
    total = n_overall + n_expert
    while len(rows) < total:
        members = 1
        cluster = None
        if (image_id - start_id) % cluster_every == 0:
            members = rng.randint(2, 4)
            cluster = cluster_id
            cluster_id += 1
        for _ in range(min(members, total - len(rows))):
            expert = len(rows) >= n_overall
            fmt = "PNG" if image_id % 5 == 0 else "JPEG"
            if folder is not None:
                path = write_image(folder / f"{image_id}.img", size=size, seed=image_id,
                                   fmt=fmt)
                sha = hashlib.sha256(path.read_bytes()).hexdigest()
                file = str(path)
            else:
                sha = hashlib.sha256(str(image_id).encode()).hexdigest()
                file = None
            if expert:
                scores = _scores(rng, hidden_face=image_id % 6 == 0)
                std = tuple(None if s is None else 0.05 for s in scores)
                n = (3,) * len(DIMENSIONS)
                source, overall = EXPERT_SOURCE, scores[-1]
            else:
                scores = std = n = None
                source = OVERALL_SOURCES[image_id % len(OVERALL_SOURCES)]
                overall = round(rng.betavariate(2, 2), 5)
            rows.append(ReleaseRow(
                image_id=image_id, file=file, sha256=sha, phash=f"{rng.getrandbits(64):016x}",
                cluster=cluster, source=source, width=size[0], height=size[1], format=fmt,
                overall=overall, scores=scores, std=std, n=n,
            ))
            image_id += 1
    return rows


@pytest.fixture(scope="module")
def image_rows(tmp_path_factory):
    """60 overall-only + 40 12-dim rows with real files (shared by a module's tests)."""
    folder = tmp_path_factory.mktemp("store")
    return make_rows(60, 40, folder=folder)


@pytest.fixture
def config():
    return ReleaseConfig(name="hb", version="1.0", seed=3)
