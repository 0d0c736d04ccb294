from __future__ import annotations

import json

from transformers import AutoProcessor, InternVLForConditionalGeneration, InternVLProcessor

from humanbeauty.standard import DIMENSIONS, LEVELS
from modeling.hae import prompts
from modeling.hae.backbone import load_backbone
from modeling.hae.tiny import IMAGE_TOKENS, build_tokenizer


def test_tiny_tokenizer_knows_the_vocabulary_it_is_trained_on():
    tok = build_tokenizer()
    for token in IMAGE_TOKENS.values():
        assert tok.convert_tokens_to_ids(token) != tok.unk_token_id
    assert tok.context_image_token == "<IMG_CONTEXT>"
    for level in LEVELS:  # one token each: the LM-head score reads one logit per level
        assert len(tok.encode(" " + level, add_special_tokens=False)) == 1
    for d in DIMENSIONS:
        ids = tok.encode(d.name, add_special_tokens=False)
        assert tok.decode(ids) == d.name
    text = prompts.chat_prompt(prompts.query(True, 0), None)
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_tiny_checkpoint_loads_through_the_real_checkpoint_path(tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["model_type"] == "internvl"
    assert isinstance(AutoProcessor.from_pretrained(tiny_checkpoint), InternVLProcessor)
    assert isinstance(
        InternVLForConditionalGeneration.from_pretrained(tiny_checkpoint),
        InternVLForConditionalGeneration,
    )
    backbone = load_backbone(tiny_checkpoint)
    enc = backbone.encoder
    assert enc.tiles.tile_size == 56 and enc.tiles.max_tiles == 12
    assert enc.image_seq_length == backbone.model.config.image_seq_length
    assert enc.image_token_ids[2] == backbone.model.config.image_token_id
