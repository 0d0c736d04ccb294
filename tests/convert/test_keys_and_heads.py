"""Every source tensor is accounted for: backbone tensors are mapped, HumanAesExpert's linear
regression head is kept in an official-compatible head, anything else stops the conversion
with the list of keys and leaves nothing behind."""

from __future__ import annotations

import json

import pytest
import torch

from modeling.hae.convert import (
    CONVERSION_NAME,
    OFFICIAL_HEADS_NAME,
    UnknownKeysError,
    convert_checkpoint,
    load_regression_head,
)
from modeling.hae.errors import IncompatibleCheckpointError
from modeling.hae.heads import LinearRegressionHead
from tests.convert.conftest import copy_source, inputs
from tests.convert.support import load

HIDDEN = 64  # the fixtures' LLM hidden size


def test_unknown_keys_stop_the_conversion_with_every_key_listed(tmp_path):
    strangers = {
        "language_model.model.layers.0.attention.mystery.weight": torch.ones(2),
        "vision_model.encoder.layers.0.attn.extra": torch.ones(2),
        "something_else.weight": torch.ones(2),
    }
    src = copy_source("internlm2-tiny", tmp_path, strangers)
    dst = tmp_path / "out"
    with pytest.raises(UnknownKeysError) as caught:
        convert_checkpoint(src, dst)
    assert caught.value.keys == sorted(strangers)
    for key in strangers:
        assert key in str(caught.value)
    assert not dst.exists()
    assert not any(p.name.endswith(".converting") for p in tmp_path.iterdir())


def test_the_linear_regression_head_loads_into_an_official_compatible_head(tmp_path):
    generator = torch.Generator().manual_seed(7)
    weight = torch.randn(1, HIDDEN, generator=generator)
    bias = torch.randn(1, generator=generator)
    src = copy_source(
        "qwen2-tiny",
        tmp_path,
        {
            "language_model.lm_regression_head.weight": weight,
            "language_model.lm_regression_head.bias": bias,
        },
    )
    dst = tmp_path / "out"
    report = convert_checkpoint(src, dst)
    assert report.heads == {
        "regression": [
            "language_model.lm_regression_head.bias",
            "language_model.lm_regression_head.weight",
        ]
    }
    assert json.loads((dst / CONVERSION_NAME).read_text())["heads"] == report.heads
    assert (dst / OFFICIAL_HEADS_NAME).is_file()

    head = load_regression_head(dst)
    assert isinstance(head, LinearRegressionHead)
    features = torch.randn(3, HIDDEN, generator=generator)
    torch.testing.assert_close(head(features), features @ weight[0] + bias[0])
    # The backbone beside it still reproduces the official model: the head took nothing away.
    feed, _ = inputs("qwen2-tiny")
    assert load(dst)(**{k: feed[k] for k in ("input_ids", "attention_mask", "pixel_values")})


def test_a_regression_head_that_is_not_one_linear_layer_is_refused(tmp_path):
    src = copy_source(
        "qwen2-tiny",
        tmp_path,
        {"language_model.lm_regression_head.weight": torch.ones(4, HIDDEN)},
    )
    with pytest.raises(IncompatibleCheckpointError, match=r"expected \(1, 64\)"):
        convert_checkpoint(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_expert_head_is_refused_unless_dropped_on_purpose(tmp_path):
    expert = {
        "language_model.expert_head.0.weight": torch.ones(8, HIDDEN),
        "language_model.expert_head.0.bias": torch.ones(8),
        "language_model.expert_head2.weight": torch.ones(1, 8),
    }
    src = copy_source("qwen2-tiny", tmp_path, expert)
    with pytest.raises(UnknownKeysError, match="--drop-heads expert") as caught:
        convert_checkpoint(src, tmp_path / "refused")
    assert caught.value.keys == sorted(expert)
    assert not (tmp_path / "refused").exists()

    report = convert_checkpoint(src, tmp_path / "out", drop_heads=("expert",))
    assert report.dropped == sorted(expert)  # left out, and written down
    assert json.loads((tmp_path / "out" / CONVERSION_NAME).read_text())["dropped"] == sorted(
        expert
    )
    assert not (tmp_path / "out" / OFFICIAL_HEADS_NAME).exists()


def test_a_destination_with_files_is_never_overwritten(tmp_path):
    dst = tmp_path / "taken"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        convert_checkpoint(copy_source("qwen2-tiny", tmp_path), dst)
    assert [p.name for p in dst.iterdir()] == ["keep.txt"]
