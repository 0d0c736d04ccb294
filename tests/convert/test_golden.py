"""Both official layouts convert into a native model that reproduces the official outputs."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer

from modeling.hae.convert import CONVERSION_NAME
from modeling.hae.convert.configs import native_config
from tests.convert.conftest import FAMILIES, expected, inputs, source
from tests.convert.support import COMPARED, TOLERANCE, load, outputs


@pytest.mark.parametrize("name", FAMILIES)
def test_converted_model_reproduces_the_official_outputs(converted, name):
    feed, _ = inputs(name)
    got = outputs(load(converted[name]), feed)
    want = expected(name)
    for key in COMPARED:
        torch.testing.assert_close(got[key], want[key], **TOLERANCE, msg=lambda m, k=key: k + m)


@pytest.mark.parametrize("name", FAMILIES)
def test_tokenizer_stands_alone_and_reproduces_the_prompt_ids(converted, name):
    feed, meta = inputs(name)
    config = json.loads((converted[name] / "tokenizer_config.json").read_text())
    assert "auto_map" not in config  # no remote code left to run
    tokenizer = AutoTokenizer.from_pretrained(converted[name], local_files_only=True)
    assert tokenizer(meta["prompt"])["input_ids"] == feed["input_ids"][0].tolist()
    assert tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>") == int(meta["img_context_token_id"])


@pytest.mark.parametrize("name", FAMILIES)
def test_config_is_explicit_and_carries_nothing_from_flash_attention(converted, name):
    _, meta = inputs(name)
    raw = (converted[name] / "config.json").read_text()
    config = json.loads(raw)
    assert config["model_type"] == "internvl"
    assert config["tie_word_embeddings"] is False  # at the top level, not only in text_config
    assert config["text_config"]["tie_word_embeddings"] is False
    assert config["image_token_id"] == int(meta["img_context_token_id"])
    assert config["image_seq_length"] == int(meta["num_image_token"]) == 9
    assert "flash" not in raw
    assert "max_length" not in config["text_config"]  # the generic 4.37 fields stay behind
    report = json.loads((converted[name] / CONVERSION_NAME).read_text())
    assert report["image_token_id"] == config["image_token_id"]
    assert report["heads"] == {} and report["dropped"] == []


def test_internlm2_config_maps_onto_llama_with_its_rope_and_bias(converted):
    text = json.loads((converted["internlm2-tiny"] / "config.json").read_text())["text_config"]
    assert text["model_type"] == "llama"
    assert text["rope_parameters"] == {
        "rope_type": "dynamic",
        "factor": 2.0,
        "rope_theta": 1000000.0,
    }
    assert text["attention_bias"] is False  # from llm_config.bias, not InternLM2's default
    assert (text["num_attention_heads"], text["num_key_value_heads"]) == (8, 2)


def test_untied_embeddings_survive_loading(converted):
    model = load(converted["qwen2-tiny"])
    embed, head = model.get_input_embeddings().weight, model.lm_head.weight
    assert embed.data_ptr() != head.data_ptr()
    assert not torch.equal(embed, head)


def test_image_seq_length_follows_the_tile_and_patch_sizes():
    official = json.loads((source("qwen2-tiny") / "config.json").read_text())
    official["force_image_size"] = official["vision_config"]["image_size"] = 448
    config, _ = native_config(official, image_token_id=7)
    assert config["image_seq_length"] == 256  # (448 / 14)^2 / 4, as in InternVL2-1B/-8B
    assert config["vision_config"]["image_size"] == [448, 448]
    assert config["image_token_id"] == 7  # whatever the tokenizer said, never a constant
