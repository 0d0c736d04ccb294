"""Official InternVL2 tensor names -> native ``InternVLForConditionalGeneration`` ones.

Each source key must match one rule, by name; the rule's plan says which native tensors it
becomes and how (a rename, or one piece of a fused tensor).
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


Plan = list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]


def _same(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _rename(new_key: str) -> Plan:
    return [(new_key, _same)]


def _split(names: list[str], splitter: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]) -> Plan:
    """Native keys made from the pieces of one fused tensor (looked up when run, so a test can
    swap the splitter)."""
    return [(name, lambda t, i=i: splitter(t)[i]) for i, name in enumerate(names)]


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
_QWEN2_LAYER_MODULES = re.compile(
    r"self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj|input_layernorm|post_attention_layernorm"
)


def _vision(key: str, layout: Layout) -> Plan | None:
    rest = key.removeprefix("vision_model.")
    if rest in _VISION_RENAMES:
        return _rename(VISION + _VISION_RENAMES[rest])
    m = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)", rest)
    if not m:
        return None
    prefix, part = f"{VISION}encoder.layer.{m[1]}.", m[2]
    if part in _VISION_SCALES:
        return _rename(prefix + _VISION_SCALES[part])
    q = re.fullmatch(r"attn\.qkv\.(weight|bias)", part)
    if q:
        names = [f"{prefix}attention.{n}_proj.{q[1]}" for n in "qkv"]
        return _split(names, lambda t: split_vision_qkv(t, layout.vision_hidden))
    module, _, param = part.rpartition(".")
    if module in _VISION_LAYER_RENAMES and param in ("weight", "bias"):
        return _rename(f"{prefix}{_VISION_LAYER_RENAMES[module]}.{param}")
    return None


def _projector(key: str, layout: Layout) -> Plan | None:
    m = re.fullmatch(r"mlp1\.(\d+)\.(weight|bias)", key)
    if not m or m[1] not in _PROJECTOR:
        return None
    return _rename(f"model.multi_modal_projector.{_PROJECTOR[m[1]]}.{m[2]}")


# Whole-key renames of each LLM family (embeddings, final norm, LM head).
_TEXT_RENAMES = {
    "qwen2": {
        "language_model.lm_head.weight": "lm_head.weight",
        "language_model.model.embed_tokens.weight": TEXT + "embed_tokens.weight",
        "language_model.model.norm.weight": TEXT + "norm.weight",
    },
    "internlm2": {
        "language_model.output.weight": "lm_head.weight",
        "language_model.model.tok_embeddings.weight": TEXT + "embed_tokens.weight",
        "language_model.model.norm.weight": TEXT + "norm.weight",
    },
}
_LAYER = re.compile(r"language_model\.model\.layers\.(\d+)\.(.+)\.(weight|bias)")


def _qwen2_layer(index: str, module: str, param: str, layout: Layout) -> Plan | None:
    if _QWEN2_LAYER_MODULES.fullmatch(module):
        return _rename(f"{TEXT}layers.{index}.{module}.{param}")
    return None


def _internlm2_layer(index: str, module: str, param: str, layout: Layout) -> Plan | None:
    prefix = f"{TEXT}layers.{index}."
    if module == "attention.wqkv":
        names = [f"{prefix}self_attn.{n}_proj.{param}" for n in "qkv"]
        return _split(names, lambda t: split_wqkv(t, layout))
    if module in _INTERNLM2_LAYER_RENAMES:
        return _rename(f"{prefix}{_INTERNLM2_LAYER_RENAMES[module]}.{param}")
    return None


LayerRule = Callable[[str, str, str, Layout], Plan | None]
_LAYER_RULES: dict[str, LayerRule] = {"qwen2": _qwen2_layer, "internlm2": _internlm2_layer}


def plan(key: str, layout: Layout) -> Plan | None:
    """How one source tensor becomes native ones, or None if no rule understands its name."""
    if key.startswith("vision_model."):
        return _vision(key, layout)
    if key.startswith("mlp1."):
        return _projector(key, layout)
    if key in _TEXT_RENAMES[layout.family]:
        return _rename(_TEXT_RENAMES[layout.family][key])
    m = _LAYER.fullmatch(key)
    return _LAYER_RULES[layout.family](m[1], m[2], m[3], layout) if m else None


def map_tensor(
    key: str, tensor: torch.Tensor, layout: Layout
) -> list[tuple[str, torch.Tensor]]:
    """The native tensors one source tensor becomes."""
    steps = plan(key, layout)
    if steps is None:
        raise UnknownKeysError([key])
    return [(new_key, make(tensor)) for new_key, make in steps]


def head_key(key: str) -> str | None:
    """``lm_regression_head.weight`` etc. for a HumanAesExpert head tensor, else None."""
    m = HEAD_PATTERN.match(key)
    return m[1] if m else None


def classify(keys: Iterable[str], layout: Layout) -> tuple[list[str], list[str], list[str]]:
    """(backbone keys, head keys, keys nobody understands), by name alone."""
    backbone, heads, unknown = [], [], []
    for key in keys:
        if head_key(key):
            heads.append(key)
        elif plan(key, layout) is not None:
            backbone.append(key)
        else:
            unknown.append(key)
    return backbone, heads, unknown
