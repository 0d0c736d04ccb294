"""Strict JSON for everything the platform stores or sends: NaN and infinities become null.

A statistic over too little data (a correlation of one image, the spread of a single rating)
is NaN. Python's `json` writes it as the bare token `NaN`, which is not JSON: PostgreSQL
refuses it (the whole row is lost) and browsers cannot parse it. Every model `JSONField` takes
`encoder=FiniteJSONEncoder` (a test walks the models to keep it so), so a non-finite number is
stored as null, with a warning that says where it was, instead of failing the write.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

log = logging.getLogger(__name__)


def finite(value: Any, *, where: str = "value") -> Any:
    """`value` with every NaN or infinite float (at any depth) replaced by None; logs a
    warning naming the first such place. Containers are copied, other values returned as is."""
    found: list[str] = []

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, float):
            if math.isfinite(v):
                return v
            found.append(path)
            return None
        if isinstance(v, dict):
            return {k: walk(x, f"{path}.{k}") for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x, f"{path}[{i}]") for i, x in enumerate(v)]
        # numpy scalars and the like: anything float-convertible that is not finite
        if hasattr(v, "dtype") and getattr(v, "ndim", None) == 0:
            x = v.item()
            return walk(x, path) if isinstance(x, float) else x
        return v

    out = walk(value, where)
    if found:
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        log.warning("non-finite number stored as null at %s%s", found[0], more)
    return out


class FiniteJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder that writes non-finite floats as null (see the module docstring)."""

    # `encode` goes through `iterencode` too, so this one override covers both.
    def iterencode(self, o: Any, _one_shot: bool = False):
        return super().iterencode(finite(o, where="json"), _one_shot)
