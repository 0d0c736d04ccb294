"""Each pitfall the fixtures' README lists, caught: a converter step done the wrong way (or a
config field left at its default) makes the comparison with the official outputs fail."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from modeling.hae.convert import convert_checkpoint, weights
from tests.convert.conftest import expected, inputs, source
from tests.convert.support import build_and_load_strictly, load, max_error, outputs

HARD_CODED_IMAGE_TOKEN_ID = 151667  # <IMG_CONTEXT> in the real InternVL2-1B vocabulary


def _config_edited(converted_dir, tmp_path, edit):
    out = tmp_path / "edited"
    shutil.copytree(converted_dir, out)
    path = out / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    return out


@pytest.mark.parametrize("name", ["qwen2-tiny", "internlm2-tiny"])
def test_top_level_tie_word_embeddings_left_to_the_default_breaks_the_logits(
    converted, tmp_path, name
):
    feed, _ = inputs(name)
    right = build_and_load_strictly(converted[name])
    assert max_error(outputs(right, feed), expected(name))["logits"] < 1e-5
    tied = _config_edited(converted[name], tmp_path, lambda c: c.pop("tie_word_embeddings"))
    model = build_and_load_strictly(tied)  # a strict load that succeeds ...
    # ... because transformers 5 ties them when the top level says nothing, whatever
    # text_config says: one matrix now stands for both.
    assert model.get_input_embeddings().weight.data_ptr() == model.lm_head.weight.data_ptr()
    errors = max_error(outputs(model, feed), expected(name))
    assert errors["logits"] > 1.0
    assert errors["inputs_embeds"] > 0.1  # the token embeddings were overwritten by lm_head


def _vision_qkv_per_head(tensor, hidden):
    heads = 3  # the fixtures' InternViT
    grouped = tensor.reshape(heads, 3, hidden // heads, *tensor.shape[1:])
    return tuple(grouped[:, i].reshape(hidden, *tensor.shape[1:]).contiguous() for i in range(3))


def _wqkv_in_three_blocks(tensor, layout):
    q_rows = layout.num_heads * layout.head_dim
    kv_rows = layout.num_kv_heads * layout.head_dim
    return tuple(t.contiguous() for t in tensor.split([q_rows, kv_rows, kv_rows], dim=0))


@pytest.mark.parametrize("name", ["qwen2-tiny", "internlm2-tiny"])
def test_vision_qkv_split_per_head_breaks_the_vision_features(monkeypatch, tmp_path, name):
    monkeypatch.setattr(weights, "split_vision_qkv", _vision_qkv_per_head)
    convert_checkpoint(source(name), tmp_path / "wrong")
    feed, _ = inputs(name)
    errors = max_error(outputs(load(tmp_path / "wrong"), feed), expected(name))
    assert errors["vision_embeds"] > 0.5


def test_internlm2_wqkv_split_as_flat_blocks_breaks_the_logits(monkeypatch, tmp_path):
    monkeypatch.setattr(weights, "split_wqkv", _wqkv_in_three_blocks)
    convert_checkpoint(source("internlm2-tiny"), tmp_path / "wrong")
    feed, _ = inputs("internlm2-tiny")
    errors = max_error(outputs(load(tmp_path / "wrong"), feed), expected("internlm2-tiny"))
    assert errors["vision_embeds"] < 1e-5  # the vision side is untouched ...
    assert errors["logits"] > 1.0  # ... the attention is not


def test_grouped_wqkv_split_orders_query_heads_by_kv_group():
    """Rows (group, slot, dim): 4 query heads, then the group's key, then its value."""
    layout = weights.Layout("internlm2", vision_hidden=48, num_heads=8, num_kv_heads=2, head_dim=1)
    rows = torch.arange(12.0).unsqueeze(-1)  # 2 groups x 6 slots, one row per head
    q, k, v = weights.split_wqkv(rows, layout)
    assert q.squeeze(-1).tolist() == [0, 1, 2, 3, 6, 7, 8, 9]
    assert k.squeeze(-1).tolist() == [4, 10]
    assert v.squeeze(-1).tolist() == [5, 11]


@pytest.mark.parametrize("name", ["qwen2-tiny", "internlm2-tiny"])
def test_a_hard_coded_image_token_id_matches_no_image_token(converted, tmp_path, name):
    feed, meta = inputs(name)
    assert json.loads((converted[name] / "config.json").read_text())["image_token_id"] == int(
        meta["img_context_token_id"]
    )
    wrong = _config_edited(
        converted[name], tmp_path, lambda c: c.update(image_token_id=HARD_CODED_IMAGE_TOKEN_ID)
    )
    with pytest.raises(ValueError, match="Image features and image tokens do not match"):
        outputs(load(wrong), feed)
