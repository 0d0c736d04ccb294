"""What the management commands share: their checks of the numbers they are given."""

from __future__ import annotations

from django.core.management.base import CommandError


def require_positive(**numbers: int | None) -> None:
    """Refuse any given number under 1 as `--NAME must be at least 1` (None: not given).
    Checked in `handle`, not by an argparse type, so that `call_command(..., NAME=0)` is
    refused too."""
    for name, value in numbers.items():
        if value is not None and value < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
