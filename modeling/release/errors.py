"""Errors a release build raises; each message says what was wrong and how to fix it.

All are ``DomainError``s, so the API and the CLI report them like every other refusal.
"""

from __future__ import annotations

from humanbeauty.errors import DomainError


class ReleaseConfigError(DomainError, code="release_config"):
    """A configuration that cannot be built: bad ratios, unknown split or format, empty
    selection, an output directory that already holds a release."""


class ReleaseDataError(DomainError, code="release_data"):
    """A row that cannot be released as given: a score outside [0, 1], a missing or changed
    image file, a duplicate image id, an image absent from the split assignment."""


class ReleaseError(DomainError, code="release_error"):
    """A release request or read that cannot be answered: an unknown project, an existing
    version, a comparison with a release that is not ready."""
