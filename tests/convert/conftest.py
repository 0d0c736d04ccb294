"""Fixtures for the official-checkpoint converter: the golden InternVL2 fixtures
(``fixtures/internvl2-official/``, a copy of the shared reference data; see its README) and
their conversions, made once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from modeling.hae.convert import convert_checkpoint

# No Django here, one thread for tiny models: the same autouse fixtures as the model core's.
from tests.modeling_core.conftest import _media_root, _one_thread  # noqa: F401

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "internvl2-official"
FAMILIES = ("qwen2-tiny", "internlm2-tiny")


def source(name: str) -> Path:
    path = FIXTURES / name
    assert (path / "model.safetensors").is_file(), f"golden fixture missing: {path}"
    return path


def inputs(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = str(source(name) / "inputs.safetensors")
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
    return load_file(path), metadata


def expected(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(source(name) / "expected.safetensors"))


def copy_source(name: str, into: Path, extra: dict[str, torch.Tensor] | None = None) -> Path:
    """A writable copy of a fixture, with ``extra`` tensors added to its weights."""
    out = into / name
    shutil.copytree(source(name), out)
    for path in out.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    if extra:
        weights = load_file(str(out / "model.safetensors"))
        weights.update(extra)
        save_file(weights, str(out / "model.safetensors"), {"format": "pt"})
    return out


@pytest.fixture(scope="session")
def converted(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("converted")
    return {name: _convert(name, root) for name in FAMILIES}


def _convert(name: str, root: Path) -> Path:
    convert_checkpoint(source(name), root / name)
    return root / name
