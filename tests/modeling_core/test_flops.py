"""Model FLOPs from the config (modeling/hae/flops.py) against what torch counts and the model's
own weights; the training multipliers; the device's peak."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import InternVLForConditionalGeneration

from modeling.hae.flops import (
    Shapes,
    device_peak,
    language_flops,
    projector_flops,
    scoring_flops,
    trained_parts,
    training_flops,
    vision_flops,
)
from modeling.hae.model import HumanAesExpert, LoraSettings
from modeling.hae.synthetic import Factors, render
from modeling.hae.tiny import build_tokenizer, internvl_config, random_backbone


def _weights(module: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules()
               if isinstance(m, torch.nn.Linear | torch.nn.Conv2d))


@pytest.mark.parametrize("size", ["tiny", "1b"])
def test_matmul_parameters_from_the_config_equal_the_models_weights(size):
    tokenizer = build_tokenizer()
    config = internvl_config(size, len(tokenizer), tokenizer.context_image_token_id,
                             56 if size == "tiny" else 448)
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    shapes = Shapes.of(config)
    assert shapes.vision_matmul_params() == _weights(model.model.vision_tower)
    assert shapes.projector_matmul_params() == _weights(model.model.multi_modal_projector)
    assert shapes.language_matmul_params() == _weights(model.model.language_model)
    if size == "1b":  # InternVL2-1B: 256 image tokens per 448-px tile
        assert shapes.image_tokens == 256 and shapes.patches == 1024


def _attention(shapes: Shapes, tiles: int, lengths: list[int]) -> float:
    """The attention terms of the module doc (torch's counter leaves CPU attention out)."""
    tokens = shapes.patches + 1
    vision = shapes.layers_v * 4 * tokens**2 * shapes.d_v * tiles
    return vision + sum(shapes.layers * 2 * n**2 * shapes.d for n in lengths)


def test_scoring_flops_equal_the_matmuls_torch_counts_in_a_real_forward():
    model = HumanAesExpert.wrap(random_backbone("tiny")).eval()
    rng = random.Random(0)
    images = [render(Factors(*(rng.random() for _ in range(4))), (640, 480), rng)
              for _ in range(2)]
    overall, expert = model.encoder.encode_scoring_pair(images, 1)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.heads_on(overall, expert)
    counts = counter.get_flop_counts()
    counted = sum(
        sum(counts[name].values())
        for name in ("InternVLVisionModel", "InternVLMultiModalProjector",
                     "HumanAesExpert.vlm.model.language_model", "HumanAesExpert.vlm.lm_head")
    )
    shapes = Shapes.of(model.core.config)
    tiles = overall.pixel_values.shape[0] // len(images)
    assert tiles == 13  # 12 tiles + thumbnail: full tiling
    lengths_o = overall.attention_mask.sum(1).tolist()
    lengths_e = expert.attention_mask.sum(1).tolist()
    # every row is unpadded here (same-size images), so torch multiplies exactly these tokens
    assert lengths_o == [overall.input_ids.shape[1]] * 2
    ours = sum(scoring_flops(shapes, tiles, o, e)
               for o, e in zip(lengths_o, lengths_e, strict=True))
    assert ours - _attention(shapes, 2 * tiles, lengths_o + lengths_e) == counted


def test_training_counts_three_times_from_the_lowest_trained_part_up():
    tokenizer = build_tokenizer()
    shapes = Shapes.of(internvl_config("1b", len(tokenizer), tokenizer.context_image_token_id,
                                       448))
    v, p, lang = vision_flops(shapes, 13), projector_flops(shapes, 13), language_flops(
        shapes, 3400, logits=20)
    all_parts = {"vision", "projector", "language"}
    assert training_flops(shapes, 13, 3400, 20, all_parts) == 3 * (v + p + lang)
    assert training_flops(shapes, 13, 3400, 20, {"vision", "language"}) == 3 * (v + p + lang)
    assert training_flops(shapes, 13, 3400, 20, {"projector", "language"}) == v + 3 * (p + lang)
    assert training_flops(shapes, 13, 3400, 20, {"language"}) == v + p + 3 * lang
    assert training_flops(shapes, 13, 3400, 20, set()) == v + p + lang
    # the 1B shape at full tiling: about 15 TFLOP per scored image, ~65 images/s on 989 TFLOP/s
    per_image = scoring_flops(shapes, 13, 13 * 256 + 60, 13 * 256 + 90)
    assert 14e12 < per_image < 17e12


def test_trained_parts_follow_the_lora_placement():
    frozen_vision = HumanAesExpert.wrap(random_backbone("tiny"), LoraSettings(vision=False))
    assert trained_parts(frozen_vision.core) == {"language"}
    both = HumanAesExpert.wrap(random_backbone("tiny"), LoraSettings())
    assert trained_parts(both.core) == {"vision", "language"}
    assert trained_parts(HumanAesExpert.wrap(random_backbone("tiny")).core) == set()


def test_the_cpu_peak_is_measured_in_the_run():
    peak, where = device_peak(torch.device("cpu"), torch.float32)
    assert peak > 1e8 and "measured" in where and "CPU" in where
