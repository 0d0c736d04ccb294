"""Model FLOPs of an InternVL-based HumanAesExpert, from its config, and the FLOP limit of a device.

Matmul FLOPs only (2 per multiply-add; norms, activations, softmax and RoPE are left out), for
the shapes in ``InternVLConfig`` (d = hidden size, f = MLP width, L = layers):

- vision tower, per tile of T = (image/patch)^2 + 1 tokens (the patches and the CLS token):
  patch embedding 2 * (image/patch)^2 * 3 * patch^2 * d_v, and per layer
  2 * T * (4 d_v^2 + 2 d_v f_v) (q, k, v, output projection; two MLP matrices) plus attention
  4 * T^2 * d_v (QK^T and AV, bidirectional);
- projector, per tile of t = (T - 1) * downsample^2 image tokens (pixel shuffle):
  2 * t * (d_v / downsample^2 * d + d^2) (linear_1, linear_2);
- language model, per sequence of S real tokens: per layer
  2 * S * (2 d^2 + 2 d * kv + 3 d f) (q and o, k and v of kv = kv_heads * head_dim, the gated MLP)
  plus causal attention 2 * S^2 * d (half of QK^T and AV); the LM head 2 * d * V per position
  whose logits are computed (one per overall question when scoring, each answer token when
  training).

Scoring one image (what ``heads_on`` runs): one vision pass and projector for its tiles, the
language model on the overall question and on the 12-dimension question.
Training one sample: the same forward once (one question), times 3 (forward + backward, the
usual model-FLOPs convention: backward = 2 x forward) for every part at or above the lowest part
with trainable parameters (gradients flow through it), times 1 for frozen parts below it
(forward only). With LoRA the weight gradients of frozen matrices are not computed, so the work
actually needed is nearer 2 x forward: the convention makes MFU comparable with full training.

``limit(images/s) = peak FLOP/s / FLOPs per image``; MFU = achieved FLOP/s / peak FLOP/s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

# Dense bf16 tensor-core peaks (SXM, no sparsity), FLOP/s, by a name the device reports.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12}
PARTS = ("vision", "projector", "language")  # bottom to top


@dataclass(frozen=True)
class Shapes:
    image: int
    patch: int
    d_v: int
    f_v: int
    layers_v: int
    downsample: float
    d: int
    f: int
    layers: int
    kv: int
    vocab: int

    @classmethod
    def of(cls, config) -> Shapes:
        v, t = config.vision_config, config.text_config
        size = v.image_size[0] if isinstance(v.image_size, list | tuple) else v.image_size
        patch = v.patch_size[0] if isinstance(v.patch_size, list | tuple) else v.patch_size
        head_dim = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
        kv_heads = getattr(t, "num_key_value_heads", None) or t.num_attention_heads
        return cls(
            image=int(size), patch=int(patch), d_v=v.hidden_size, f_v=v.intermediate_size,
            layers_v=v.num_hidden_layers, downsample=float(config.downsample_ratio),
            d=t.hidden_size, f=t.intermediate_size, layers=t.num_hidden_layers,
            kv=int(kv_heads * head_dim), vocab=t.vocab_size,
        )

    @property
    def patches(self) -> int:
        return (self.image // self.patch) ** 2

    @property
    def image_tokens(self) -> int:
        return round(self.patches * self.downsample**2)

    # parameters of the matmuls (weights only): what the tests compare with the model
    def vision_matmul_params(self) -> int:
        return 3 * self.patch**2 * self.d_v + self.layers_v * (4 * self.d_v**2 + 2 * self.d_v
                                                               * self.f_v)

    def projector_matmul_params(self) -> int:
        return round(self.d_v / self.downsample**2) * self.d + self.d**2

    def language_matmul_params(self) -> int:
        return self.layers * (2 * self.d**2 + 2 * self.d * self.kv + 3 * self.d * self.f)


def vision_flops(s: Shapes, tiles: int) -> float:
    tokens = s.patches + 1
    per_tile = 2 * s.patches * 3 * s.patch**2 * s.d_v
    per_tile += s.layers_v * (2 * tokens * (4 * s.d_v**2 + 2 * s.d_v * s.f_v)
                              + 4 * tokens**2 * s.d_v)
    return float(tiles * per_tile)


def projector_flops(s: Shapes, tiles: int) -> float:
    return float(tiles * 2 * s.image_tokens * s.projector_matmul_params())


def language_flops(s: Shapes, seq_len: int, logits: int = 0) -> float:
    """One sequence of ``seq_len`` real tokens, LM-head logits at ``logits`` positions."""
    per_layer = 2 * seq_len * (2 * s.d**2 + 2 * s.d * s.kv + 3 * s.d * s.f) + 2 * seq_len**2 * s.d
    return float(s.layers * per_layer + 2 * s.d * s.vocab * logits)


def scoring_flops(s: Shapes, tiles: int, overall_len: int, expert_len: int) -> float:
    """One image: its tiles through vision and projector, both questions through the LLM."""
    return (vision_flops(s, tiles) + projector_flops(s, tiles)
            + language_flops(s, overall_len, logits=1) + language_flops(s, expert_len))


def training_flops(
    s: Shapes, tiles: int, seq_len: int, answer_tokens: int, trained: set[str]
) -> float:
    """One sample (see the module doc): x3 from the lowest trained part up, x1 below it."""
    parts = {
        "vision": vision_flops(s, tiles),
        "projector": projector_flops(s, tiles),
        "language": language_flops(s, seq_len, logits=answer_tokens),
    }
    if not trained:
        return sum(parts.values())
    lowest = min(PARTS.index(p) for p in trained)
    return sum(v * (3 if PARTS.index(p) >= lowest else 1) for p, v in parts.items())


def trained_parts(core) -> set[str]:
    """Which of vision tower, projector and language model hold trainable parameters."""
    modules = {
        "vision": core.model.vision_tower,
        "projector": core.model.multi_modal_projector,
        "language": core.model.language_model,
    }
    return {k for k, m in modules.items() if any(p.requires_grad for p in m.parameters())}


def measured_matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 1024,
                         seconds: float = 1.0) -> float:
    """FLOP/s of an n x n x n matmul on ``device`` (the best of repeated runs within
    ``seconds``): the CPU's peak, measured in the same run as the benchmark."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)  # warm-up
    best, deadline = 0.0, time.perf_counter() + seconds
    while True:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
        if time.perf_counter() > deadline:
            return best


def device_peak(device: torch.device, dtype: torch.dtype) -> tuple[float, str]:
    """(peak FLOP/s, where it comes from): the table for a known GPU (bf16 dense), else a
    matmul measured now in ``dtype`` (the CPU: fp32, its intra-op threads)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peak in PEAK_BF16.items():
            if key in name:
                return peak, f"{name}: {peak / 1e12:.0f} TFLOP/s bf16 dense (spec)"
        peak = measured_matmul_peak(device, dtype, n=8192)
        return peak, f"{name}: {peak / 1e12:.1f} TFLOP/s ({dtype}, measured 8192^3 matmul)"
    peak = measured_matmul_peak(device, dtype)
    threads = torch.get_num_threads()
    return peak, (f"CPU ({threads} threads): {peak / 1e9:.1f} GFLOP/s "
                  f"({str(dtype).removeprefix('torch.')}, measured 1024^3 matmul)")


__all__ = [
    "PEAK_BF16",
    "Shapes",
    "device_peak",
    "language_flops",
    "measured_matmul_peak",
    "projector_flops",
    "scoring_flops",
    "trained_parts",
    "training_flops",
    "vision_flops",
]
