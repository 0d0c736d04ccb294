"""Official InternVL2 tensor names -> native ``InternVLForConditionalGeneration`` ones.

Each source key must match exactly one rule; the rule returns the native tensors it becomes.
A key no rule understands stops the conversion with the full list (nothing is dropped
silently). HumanAesExpert's score heads are recognised and set aside for :mod:`.convert`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import torch

from ..errors import IncompatibleCheckpointError
from .configs import Layout

VISION = "model.vision_tower."
TEXT = "model.language_model."
# HumanAesExpert's heads hang off the LLM (``language_model.<name>``); see the README.
REGRESSION_HEAD = "lm_regression_head"
HEAD_PATTERN = re.compile(r"^language_model\.((?:lm_regression_head|expert_head\d*)(?:\..+)?)$")


class UnknownKeysError(IncompatibleCheckpointError):
    """Source tensors the converter does not understand; ``keys`` lists every one."""

    def __init__(self, keys: Iterable[str], why: str = "the converter does not understand"):
        self.keys = sorted(keys)
        shown = ", ".join(self.keys[:40]) + (" ..." if len(self.keys) > 40 else "")
        super().__init__(
            f"{len(self.keys)} tensor(s) {why}, so nothing was written: {shown}"
        )


Mapped = list[tuple[str, torch.Tensor]]


def split_vision_qkv(tensor: torch.Tensor, hidden: int) -> tuple[torch.Tensor, ...]:
    """InternViT's ``attn.qkv`` is ``[q; k; v]`` in three contiguous row blocks (not per head)."""
    if tensor.shape[0] != 3 * hidden:
        raise IncompatibleCheckpointError(
            f"vision qkv has {tensor.shape[0]} rows, expected 3 x {hidden}"
        )
    return tuple(t.contiguous() for t in tensor.split(hidden, dim=0))


def split_wqkv(tensor: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, ...]:
    """InternLM2's ``wqkv`` rows are grouped per KV head: each group holds its
    ``heads/kv_heads`` query heads, then its key head, then its value head. Query heads come
    out in group order, which is the order native ``repeat_kv`` pairs them with KV heads."""
    kv, dim = layout.num_kv_heads, layout.head_dim
    per_group = layout.num_heads // kv
    rows = kv * (per_group + 2) * dim
    if tensor.shape[0] != rows:
        raise IncompatibleCheckpointError(
            f"wqkv has {tensor.shape[0]} rows, expected {rows} "
            f"({kv} KV groups x ({per_group} + 2) heads x {dim})"
        )
    grouped = tensor.reshape(kv, per_group + 2, dim, *tensor.shape[1:])
    q = grouped[:, :per_group].reshape(kv * per_group * dim, *tensor.shape[1:])
    k = grouped[:, -2].reshape(kv * dim, *tensor.shape[1:])
    v = grouped[:, -1].reshape(kv * dim, *tensor.shape[1:])
    return q.contiguous(), k.contiguous(), v.contiguous()


_VISION_RENAMES = {
    "embeddings.class_embedding": "embeddings.cls_token",
    "embeddings.position_embedding": "embeddings.position_embeddings",
    "embeddings.patch_embedding.weight": "embeddings.patch_embeddings.projection.weight",
    "embeddings.patch_embedding.bias": "embeddings.patch_embeddings.projection.bias",
}
_VISION_LAYER_RENAMES = {
    "attn.proj": "attention.projection_layer",
    "attn.q_norm": "attention.q_norm",
    "attn.k_norm": "attention.k_norm",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
}
_VISION_SCALES = {"ls1": "lambda_1", "ls2": "lambda_2"}
_PROJECTOR = {"0": "layer_norm", "1": "linear_1", "3": "linear_2"}
_INTERNLM2_LAYER_RENAMES = {
    "attention.wo": "self_attn.o_proj",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w3": "mlp.up_proj",
    "feed_forward.w2": "mlp.down_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_QWEN2_LAYER_PARTS = re.compile(
    r"^(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj|input_layernorm"
    r"|post_attention_layernorm)\.(weight|bias)$"
)


def _vision(key: str, tensor: torch.Tensor, layout: Layout) -> Mapped | None:
    rest = key.removeprefix("vision_model.")
    if rest in _VISION_RENAMES:
        return [(VISION + _VISION_RENAMES[rest], tensor)]
    m = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)", rest)
    if not m:
        return None
    prefix, part = f"{VISION}encoder.layer.{m[1]}.", m[2]
    if part in _VISION_SCALES:
        return [(prefix + _VISION_SCALES[part], tensor)]
    q = re.fullmatch(r"attn\.qkv\.(weight|bias)", part)
    if q:
        names = ("q_proj", "k_proj", "v_proj")
        pieces = split_vision_qkv(tensor, layout.vision_hidden)
        return [(f"{prefix}attention.{n}.{q[1]}", t) for n, t in zip(names, pieces, strict=True)]
    module, _, param = part.rpartition(".")
    if module in _VISION_LAYER_RENAMES and param in ("weight", "bias"):
        return [(f"{prefix}{_VISION_LAYER_RENAMES[module]}.{param}", tensor)]
    return None


def _projector(key: str, tensor: torch.Tensor, layout: Layout) -> Mapped | None:
    m = re.fullmatch(r"mlp1\.(\d+)\.(weight|bias)", key)
    if not m or m[1] not in _PROJECTOR:
        return None
    return [(f"model.multi_modal_projector.{_PROJECTOR[m[1]]}.{m[2]}", tensor)]


def _qwen2(key: str, tensor: torch.Tensor, layout: Layout) -> Mapped | None:
    if key == "language_model.lm_head.weight":
        return [("lm_head.weight", tensor)]
    rest = key.removeprefix("language_model.model.")
    if rest == key:
        return None
    if rest in ("embed_tokens.weight", "norm.weight"):
        return [(TEXT + rest, tensor)]
    m = re.fullmatch(r"layers\.(\d+)\.(.+)", rest)
    if m and _QWEN2_LAYER_PARTS.match(m[2]):
        return [(TEXT + rest, tensor)]
    return None


def _internlm2(key: str, tensor: torch.Tensor, layout: Layout) -> Mapped | None:
    if key == "language_model.output.weight":
        return [("lm_head.weight", tensor)]
    rest = key.removeprefix("language_model.model.")
    if rest == key:
        return None
    if rest == "tok_embeddings.weight":
        return [(TEXT + "embed_tokens.weight", tensor)]
    if rest == "norm.weight":
        return [(TEXT + rest, tensor)]
    m = re.fullmatch(r"layers\.(\d+)\.(.+)\.(weight|bias)", rest)
    if not m:
        return None
    prefix, module, param = f"{TEXT}layers.{m[1]}.", m[2], m[3]
    if module == "attention.wqkv":
        names = ("q_proj", "k_proj", "v_proj")
        pieces = split_wqkv(tensor, layout)
        return [(f"{prefix}self_attn.{n}.{param}", t) for n, t in zip(names, pieces, strict=True)]
    if module in _INTERNLM2_LAYER_RENAMES:
        return [(f"{prefix}{_INTERNLM2_LAYER_RENAMES[module]}.{param}", tensor)]
    return None


Rule = Callable[[str, torch.Tensor, Layout], "Mapped | None"]
_TEXT_RULES: dict[str, Rule] = {"qwen2": _qwen2, "internlm2": _internlm2}


def map_tensor(key: str, tensor: torch.Tensor, layout: Layout) -> Mapped | None:
    """The native tensors one source tensor becomes, or None if no rule understands it."""
    if key.startswith("vision_model."):
        return _vision(key, tensor, layout)
    if key.startswith("mlp1."):
        return _projector(key, tensor, layout)
    return _TEXT_RULES[layout.family](key, tensor, layout)


def head_key(key: str) -> str | None:
    """``lm_regression_head.weight`` etc. for a HumanAesExpert head tensor, else None."""
    m = HEAD_PATTERN.match(key)
    return m[1] if m else None


def classify(keys: Iterable[str], layout: Layout) -> tuple[list[str], list[str], list[str]]:
    """(backbone keys, head keys, keys nobody understands), without reading a tensor."""
    backbone, heads, unknown = [], [], []
    probe = torch.empty(0)
    for key in keys:
        if head_key(key):
            heads.append(key)
        elif _understood(key, probe, layout):
            backbone.append(key)
        else:
            unknown.append(key)
    return backbone, heads, unknown


def _understood(key: str, probe: torch.Tensor, layout: Layout) -> bool:
    try:
        return map_tensor(key, probe, layout) is not None
    except IncompatibleCheckpointError:
        return True  # a split rule matched the name; the real tensor's shape is checked later
