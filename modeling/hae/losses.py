"""Training losses.

Overall-only images supervise only the overall score: the other 11 Expert outputs are masked out
(their gradient is exactly zero, not merely small); 12-dimension images supervise all 12 except
dimensions rated "not applicable". The LM answers follow the official code exactly:
"The aesthetics of the human image is {level}" or twelve lines "{i}. {Name} : {level}".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import prompts
from .data import Sample


def lm_target(sample: Sample) -> str:
    if sample.is_expert:
        return prompts.expert_answer(sample.scores)
    return prompts.overall_answer(sample.text_level)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the supervised entries only. ``torch.where`` (not a multiply by
    the mask) keeps the gradient of masked entries exactly zero even if their target is NaN."""
    mask = mask.bool()
    diff = torch.where(mask, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return diff.pow(2).sum() / mask.sum().clamp(min=1)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the answer tokens (rows already selected by the model)."""
    if labels.numel() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels)


@dataclass(frozen=True)
class LossWeights:
    lm: float = 1.0
    regression: float = 1.0
    expert: float = 1.0


def hae_loss(
    outputs: dict[str, torch.Tensor],
    targets: torch.Tensor,
    mask: torch.Tensor,
    weights: LossWeights = LossWeights(),
) -> tuple[torch.Tensor, dict[str, float]]:
    """``outputs`` from the model's training forward; ``targets``/``mask`` (B, 12)."""
    parts: dict[str, torch.Tensor] = {}
    if "expert" in outputs:
        parts["expert"] = masked_mse(outputs["expert"], targets, mask)
    if "regression" in outputs:
        parts["regression"] = F.mse_loss(outputs["regression"], targets[:, -1])
    if "lm_logits" in outputs and weights.lm:
        parts["lm"] = lm_loss(outputs["lm_logits"], outputs["lm_labels"])
    total = sum(getattr(weights, k) * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}  # type: ignore[return-value]
