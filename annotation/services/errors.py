"""The refusals of the annotation services, each with the HTTP status and code it answers."""

from __future__ import annotations

from humanbeauty.errors import DomainError


class WorkflowError(DomainError):
    """A request the rating workflow refuses."""


class InvalidRating(WorkflowError):
    code = "invalid_rating"


class NotAMember(WorkflowError):
    status = 403
    code = "not_a_member"


class LeaseNotFound(WorkflowError):
    status = 404
    code = "not_found"


class ProjectNotFound(WorkflowError):
    status = 404
    code = "not_found"


class Conflict(WorkflowError):
    status = 409
    code = "conflict"


class NotCertified(WorkflowError):
    """The rater may not take production tasks now (candidate who failed, paused, revoked)."""

    status = 403
    code = "not_certified"


class ManagerNotAllowed(WorkflowError):
    """A manager's decision about a rater that is not theirs to take."""

    status = 403
    code = "permission_denied"
