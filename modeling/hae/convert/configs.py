"""The official ``InternVLChatConfig`` (a ``config.json`` dict) mapped to a native InternVL one.

Only the fields that describe the architecture are carried over, by name: the generic
transformers 4.37 fields the official configs serialize (``max_length: 20``, ...) and the
flash-attention switches (``attn_implementation``, ``use_flash_attn``) are left behind.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import IncompatibleCheckpointError

OFFICIAL_MODEL_TYPE = "internvl_chat"
# LLM families of the official layout and the native text model each becomes.
TEXT_MODEL_TYPES = {"qwen2": "qwen2", "internlm2": "llama"}
# Architecture fields both families share, copied as they are.
_TEXT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "initializer_range",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)
_QWEN2_FIELDS = ("use_sliding_window", "sliding_window", "max_window_layers", "attention_dropout")


@dataclass(frozen=True)
class Layout:
    """What the weight mapping needs to know about the source."""

    family: str  # "qwen2" or "internlm2"
    vision_hidden: int
    num_heads: int
    num_kv_heads: int
    head_dim: int


def _fail(message: str) -> IncompatibleCheckpointError:
    return IncompatibleCheckpointError(f"not a convertible InternVL2 checkpoint: {message}")


def _rope_scaling(scaling: dict | None) -> dict | None:
    """4.37's ``{"type": "dynamic", "factor": 2}`` is ``rope_type`` in transformers 5."""
    if not scaling:
        return None
    out = dict(scaling)
    kind = out.pop("type", None) or out.get("rope_type")
    if not kind:
        raise _fail(f"rope_scaling {scaling} names no type")
    out["rope_type"] = kind
    return out


def text_config(llm: dict) -> dict:
    family = llm.get("model_type")
    if family not in TEXT_MODEL_TYPES:
        raise _fail(
            f"LLM model_type {family!r}; the converter knows {sorted(TEXT_MODEL_TYPES)}"
        )
    missing = [k for k in ("hidden_size", "num_attention_heads", "vocab_size") if k not in llm]
    if missing:
        raise _fail(f"llm_config lacks {missing}")
    out = {k: llm[k] for k in _TEXT_FIELDS if k in llm}
    out["model_type"] = TEXT_MODEL_TYPES[family]
    out["num_key_value_heads"] = llm.get("num_key_value_heads") or llm["num_attention_heads"]
    # Untied in every official release; the flag is set at the top level too (see below).
    out["tie_word_embeddings"] = bool(llm.get("tie_word_embeddings", False))
    rope_parameters = {"rope_type": "default", "rope_theta": float(llm.get("rope_theta", 1e4))}
    scaling = _rope_scaling(llm.get("rope_scaling"))
    if scaling:
        rope_parameters.update(scaling)
    out["rope_parameters"] = rope_parameters
    if family == "qwen2":
        out.update({k: llm[k] for k in _QWEN2_FIELDS if k in llm})
    else:
        # InternLM2's one ``bias`` flag covers wqkv and wo; its feed-forward has no bias.
        # A generic InternLM2Config defaults it to true, so read it, never assume it.
        out["attention_bias"] = bool(llm.get("bias", True))
        out["mlp_bias"] = False
    return out


def vision_config(vision: dict, image_size: int) -> dict:
    if vision.get("model_type") not in ("intern_vit_6b", None):
        raise _fail(f"vision model_type {vision.get('model_type')!r}, expected 'intern_vit_6b'")
    patch = int(vision["patch_size"])
    return {
        "model_type": "internvl_vision",
        "hidden_size": vision["hidden_size"],
        "num_hidden_layers": vision["num_hidden_layers"],
        "num_attention_heads": vision["num_attention_heads"],
        "intermediate_size": vision["intermediate_size"],
        "hidden_act": vision.get("hidden_act", "gelu"),
        "layer_norm_eps": vision.get("layer_norm_eps", 1e-6),
        "norm_type": vision.get("norm_type", "rms_norm"),
        "attention_bias": bool(vision.get("qkv_bias", False)),
        "use_qk_norm": bool(vision.get("qk_normalization", False)),
        "image_size": [image_size, image_size],
        "patch_size": [patch, patch],
        "num_channels": vision.get("num_channels", 3),
        # InternViT ends without a norm: the native tower does the same with mean pooling on.
        "use_mean_pooling": True,
    }


def native_config(official: dict, image_token_id: int) -> tuple[dict, Layout]:
    """The native ``InternVLConfig`` as a dict (for ``InternVLConfig(**d)``) and the layout."""
    if official.get("model_type") != OFFICIAL_MODEL_TYPE:
        raise _fail(
            f"model_type {official.get('model_type')!r}, expected {OFFICIAL_MODEL_TYPE!r} "
            "(a checkpoint already in transformers format loads as it is)"
        )
    vision, llm = official.get("vision_config"), official.get("llm_config")
    if not isinstance(vision, dict) or not isinstance(llm, dict):
        raise _fail("config.json lacks vision_config or llm_config")
    if official.get("ps_version", "v2") != "v2":
        raise _fail(f"ps_version {official['ps_version']!r}: only the v2 pixel shuffle is native")
    image_size = int(official.get("force_image_size") or vision["image_size"])
    if image_size != int(vision["image_size"]):
        raise _fail(
            f"force_image_size {image_size} differs from the vision tower's "
            f"{vision['image_size']}; position embeddings would need interpolating"
        )
    ratio = float(official.get("downsample_ratio", 0.5))
    patch = int(vision["patch_size"])
    # num_image_token of the official model: tokens per tile after the pixel shuffle.
    image_seq_length = round((image_size // patch) ** 2 * ratio**2)
    text = text_config(llm)
    config = {
        "model_type": "internvl",
        "vision_config": vision_config(vision, image_size),
        "text_config": text,
        "image_token_id": int(image_token_id),
        "image_seq_length": image_seq_length,
        "downsample_ratio": ratio,
        "projector_hidden_act": "gelu",
        "vision_feature_layer": int(official.get("select_layer", -1)),
        "vision_feature_select_strategy": "default",  # CLS dropped, as extract_feature does
        # transformers 5 defaults this to True at the top level whatever text_config says, and a
        # tied model overwrites the token embeddings with lm_head on load: say it explicitly.
        "tie_word_embeddings": text["tie_word_embeddings"],
    }
    heads = int(text["num_attention_heads"])
    layout = Layout(
        family=llm["model_type"],
        vision_hidden=int(vision["hidden_size"]),
        num_heads=heads,
        num_kv_heads=int(text["num_key_value_heads"]),
        head_dim=int(llm.get("head_dim") or text["hidden_size"] // heads),
    )
    return config, layout
