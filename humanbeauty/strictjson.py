"""Strict JSON: what Python's `json` accepts but nothing after it can store or handle.

Nesting deep enough to exhaust the interpreter's stack, integers of hundreds of digits (no
column or float holds them), `1e400` and `NaN`/`Infinity` (not JSON; non-finite in a score or
a setting), NUL characters and lone surrogates (PostgreSQL stores neither). Pure Python: the
API's parser (config/parsers.py) and the JSON Lines manifests (curation/sources) both use it.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
# Integers beyond 64 bits fit no column; a JSON number longer than this is refused outright
# (Python would otherwise spend quadratic time converting a huge literal).
MAX_INT_DIGITS = 19


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"the integer {text[:12]}… has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:24]} does not fit a double")
    return value


def _parse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def check_value(data: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise ValueError if `data` nests deeper than `max_depth` or holds a string with a NUL
    or a lone surrogate. Iterative, so a hostile value cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > max_depth:
            raise ValueError(f"the JSON nests deeper than {max_depth} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("a string holds a NUL character (\\u0000), which is not allowed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone surrogate (not valid Unicode)") from None


def loads_strict(text: str | bytes) -> Any:
    """`json.loads` with the refusals above; raises ValueError with a readable message."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"the JSON is not valid UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
    try:
        data = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except RecursionError:
        raise ValueError(f"the JSON nests deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    check_value(data)
    return data
