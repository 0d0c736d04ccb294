"""What the management commands share: their base class, which turns a service's refusal into
a command error, and the check of the numbers they are given."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from humanbeauty.errors import DomainError


class Command(BaseCommand):
    """The base of every command of the project. A service's refusal (`DomainError`) ends the
    command as a `CommandError` with the refusal's message (exit status 1, no traceback), after
    its item-by-item errors, if any, on stderr: one rule, so no command shows a user a
    traceback for input a service refused."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except DomainError as exc:
            for error in exc.errors or ():
                self.stderr.write(error)
            raise CommandError(exc.message) from None


def require_positive(**numbers: int | None) -> None:
    """Refuse any given number under 1 as `--NAME must be at least 1` (None: not given).
    Checked in `handle`, not by an argparse type, so that `call_command(..., NAME=0)` is
    refused too."""
    for name, value in numbers.items():
        if value is not None and value < 1:
            raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
