"""The refusals of the takedown services, each with the HTTP status and code it answers."""

from __future__ import annotations

from humanbeauty.errors import DomainError


class TakedownError(DomainError, code="invalid_takedown"):
    """A request, photo or decision the takedown services refuse as given."""


class FaceMatchingUnavailable(TakedownError, code="face_matching_unavailable"):
    """Matching by face was asked for, and the platform has no face recognition model."""


class TakedownConflict(TakedownError, status=409, code="conflict"):
    """The step does not fit the request's state (decided, rejected, removal under way)."""


class TakedownNotFound(TakedownError, status=404, code="not_found"):
    """No such request, or no such match of it."""
