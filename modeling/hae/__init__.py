"""HumanAesExpert model code: plain PyTorch/transformers, no Django.

- :mod:`.tiny` - the explicit ``tiny`` smoke-test backbone (random InternVL, offline tokenizer)
- :mod:`.backbone` - load any InternVL checkpoint; tiling, prompts, model inputs
- :mod:`.heads`, :mod:`.model` - LM-head score, regression and Expert heads, MetaVoter
- :mod:`.lite` - the same heads on open_clip image embeddings
- :mod:`.losses`, :mod:`.metrics`, :mod:`.data`, :mod:`.train`, :mod:`.evaluate`
- :mod:`.recipes` - the training recipes (the project's and the official one)
- :mod:`.loading` - decode and tile in loader workers, batched (scoring, evaluation, training)
- :mod:`.flops` - model FLOPs from the config, for MFU and the FLOP limit in the benchmarks

Importing this package loads nothing heavy; ``load_model`` imports torch on first use.
"""

from __future__ import annotations

from pathlib import Path


def load_model(directory: str | Path, device: str = "cpu"):
    """A saved HumanAesExpert or HumanAesLite directory, ready to ``score(images)``."""
    from .evaluate import load_model as _load

    return _load(directory, device=device)


__all__ = ["load_model"]
