"""Convert an official InternVL2 remote-code checkpoint (``model_type: internvl_chat``: the
layout of InternVL2-1B/-8B and of the HumanAesExpert-1B/-8B releases) into a transformers-format
InternVL backbone directory that :func:`modeling.hae.backbone.load_backbone` loads.

- :mod:`.configs` - the official config mapped to a native ``InternVLConfig``
- :mod:`.weights` - key renames and the fused q/k/v splits; every source tensor is accounted for
- :mod:`.tokenizer` - the tokenizer, stand-alone (no remote code), image token id read from it
- :mod:`.convert` - reads the source, writes the destination, records ``conversion.json``

Django-free, like the rest of :mod:`modeling.hae`.
"""

from __future__ import annotations

from .convert import (
    CONVERSION_NAME,
    OFFICIAL_HEADS_NAME,
    ConversionReport,
    convert_checkpoint,
    load_regression_head,
)
from .weights import UnknownKeysError

__all__ = [
    "CONVERSION_NAME",
    "OFFICIAL_HEADS_NAME",
    "ConversionReport",
    "UnknownKeysError",
    "convert_checkpoint",
    "load_regression_head",
]
