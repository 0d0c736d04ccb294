"""Running a converted model the way the fixtures' ``expected`` tensors were made."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import InternVLConfig, InternVLForConditionalGeneration

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
COMPARED = (
    "vision_last_hidden_state",
    "vision_embeds",
    "inputs_embeds",
    "hidden_states_last",
    "logits",
)


def load(directory: Path) -> InternVLForConditionalGeneration:
    return InternVLForConditionalGeneration.from_pretrained(directory, dtype=torch.float32).eval()


def build_and_load_strictly(directory: Path) -> InternVLForConditionalGeneration:
    """The model built from the config, then a strict ``load_state_dict``: the path where a
    tied config silently lets one matrix overwrite the other (from_pretrained may warn)."""
    model = InternVLForConditionalGeneration(InternVLConfig.from_pretrained(directory))
    model.load_state_dict(load_file(str(directory / "model.safetensors")), strict=True)
    return model.eval()


@torch.no_grad()
def outputs(
    model: InternVLForConditionalGeneration, feed: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The five tensors the README's "Expected tensors" section names, from the native model.
    ``image_flags`` are all ones in the fixtures: every tile is fed."""
    pixels = feed["pixel_values"]
    vision = model.model.vision_tower(pixel_values=pixels).last_hidden_state
    features = model.model.get_image_features(pixel_values=pixels)
    features = features if isinstance(features, torch.Tensor) else features.pooler_output
    out = model(
        input_ids=feed["input_ids"],
        attention_mask=feed["attention_mask"],
        pixel_values=pixels,
        output_hidden_states=True,
    )
    return {
        "vision_last_hidden_state": vision,
        "vision_embeds": features.reshape(pixels.shape[0], -1, features.shape[-1]),
        "inputs_embeds": out.hidden_states[0],  # embeddings with the image rows scattered in
        "hidden_states_last": out.hidden_states[-1],  # after the final RMSNorm
        "logits": out.logits,
    }


def max_error(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float((got[k] - want[k]).abs().max()) for k in COMPARED}
