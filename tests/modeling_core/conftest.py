"""Fixtures for the Django-free model code: a tiny random InternVL and tiny releases on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modeling.hae.data import read_split
from modeling.hae.synthetic import write_synthetic_release
from modeling.hae.tiny import build_tiny_checkpoint


@pytest.fixture(autouse=True)
def _media_root():
    """Overrides the Django-settings fixture of tests/conftest.py: these tests need no Django."""
    yield


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads and slow down a lot when the cores are
    shared with other work; restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny-internvl")


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory) -> Path:
    """8 train / 4 test images in the official layout, both overall-only and 12-dim lines."""
    out = tmp_path_factory.mktemp("release")
    root = write_synthetic_release(out, n_train=8, n_test=4, expert_fraction=0.5, seed=3)
    kinds = {s.is_expert for s in read_split(root, "train")}
    assert kinds == {True, False}, "the fixture must hold both kinds of label line"
    return out
