"""Scoring heads on top of a feature vector (an LLM hidden state or a CLIP embedding).

- :func:`lm_level_score`: Q-Align-style LM-head score, a softmax over the logits of the five
  level words weighted by the level midpoints of the standard.
- :class:`RegressionHead`: MLP -> overall score in [0, 1].
- :class:`LinearRegressionHead`: the official head, one linear layer (converted checkpoints).
- :class:`ExpertHead`: 12 scores in [0, 1]; the 9 leaves are predicted from the features, each
  parent from its children's predictions plus the features, in the hierarchy of the standard.
- :class:`MetaVoter`: a small learned aggregator of the heads' overall scores and the expert's
  12 dimensions; starts as their plain average.
"""

from __future__ import annotations

import torch
from torch import nn

from humanbeauty.standard import BY_KEY, DIMENSION_KEYS, LEAF_KEYS, LEVEL_MIDPOINTS, PARENT_KEYS


def lm_level_score(
    logits: torch.Tensor, level_token_ids: tuple[int, ...] | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``logits``: (B, vocab) at the answer position -> (score (B,), level probabilities (B, 5))."""
    ids = torch.as_tensor(level_token_ids, device=logits.device, dtype=torch.long)
    probs = torch.softmax(logits.float().index_select(-1, ids), dim=-1)
    weights = torch.tensor(LEVEL_MIDPOINTS, device=logits.device, dtype=probs.dtype)
    return probs @ weights, probs


def _mlp(in_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, hidden), nn.GELU())


class RegressionHead(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 256):
        super().__init__()
        self.body = _mlp(in_dim, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.body(features.float()))).squeeze(-1)


def parent_order() -> list[str]:
    """Parents in an order where each one's children are already predicted."""
    done, order = set(LEAF_KEYS), []
    pending = list(PARENT_KEYS)
    while pending:
        ready = [k for k in pending if set(BY_KEY[k].children) <= done]
        if not ready:
            raise ValueError("the standard's hierarchy has a cycle")
        for key in ready:
            order.append(key)
            done.add(key)
            pending.remove(key)
    return order


class ExpertHead(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 256):
        super().__init__()
        self.body = _mlp(in_dim, hidden)
        self.leaves = nn.Linear(hidden, len(LEAF_KEYS))
        self.order = parent_order()
        self.parents = nn.ModuleDict()
        for key in self.order:
            n = len(BY_KEY[key].children)
            layer = nn.Linear(n + hidden, 1)
            with torch.no_grad():  # start as "the mean of the children" (in logit space)
                layer.weight[:, :n] = 4.0 / n
                layer.weight[:, n:].mul_(0.1)
                layer.bias.fill_(-2.0)
            self.parents[key] = layer

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, 12) in the official order."""
        z = self.body(features.float())
        values = dict(zip(LEAF_KEYS, torch.sigmoid(self.leaves(z)).unbind(-1), strict=True))
        for key in self.order:
            children = torch.stack([values[c] for c in BY_KEY[key].children], dim=-1)
            logit = self.parents[key](torch.cat([children, z], dim=-1)).squeeze(-1)
            values[key] = torch.sigmoid(logit)
        return torch.stack([values[k] for k in DIMENSION_KEYS], dim=-1)


class MetaVoter(nn.Module):
    """overall = sigmoid(logit(softmax(w) . candidates) + MLP(candidates, dims)).

    ``candidates``: (B, n) overall scores of the heads; ``dims``: (B, 12) expert scores. The
    correction MLP's last layer starts at zero, so an untrained voter is the heads' mean.
    """

    def __init__(self, n_candidates: int, n_dims: int = len(DIMENSION_KEYS), hidden: int = 32):
        super().__init__()
        self.n_candidates = n_candidates
        self.weights = nn.Parameter(torch.zeros(n_candidates))
        self.correction = nn.Sequential(
            nn.Linear(n_candidates + n_dims, hidden), nn.GELU(), nn.Linear(hidden, 1)
        )
        nn.init.zeros_(self.correction[-1].weight)
        nn.init.zeros_(self.correction[-1].bias)

    def forward(self, candidates: torch.Tensor, dims: torch.Tensor) -> torch.Tensor:
        candidates, dims = candidates.float(), dims.float()
        base = (torch.softmax(self.weights, 0) * candidates).sum(-1).clamp(1e-4, 1 - 1e-4)
        delta = self.correction(torch.cat([candidates, dims], dim=-1)).squeeze(-1)
        return torch.sigmoid(torch.logit(base) + delta)


class LinearRegressionHead(nn.Module):
    """The official HumanAesExpert regression head: one linear layer on an LLM hidden state
    (``language_model.lm_regression_head`` in the official checkpoints), no squashing."""

    def __init__(self, in_dim: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_dim, 1, bias=bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features.float()).squeeze(-1)
