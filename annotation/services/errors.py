"""The refusals of the annotation services, each with the HTTP status and code it answers."""

from __future__ import annotations

from humanbeauty.dimension_guides import GuideError
from humanbeauty.errors import DomainError


class WorkflowError(DomainError):
    """A request the rating workflow refuses."""


class InvalidRating(WorkflowError, code="invalid_rating"):
    """Scores the standard refuses, a request_id that is not a UUID, a time out of range."""


class NotAMember(WorkflowError, status=403, code="not_a_member"):
    """The user's role in the project does not allow the request."""


class LeaseNotFound(WorkflowError, status=404, code="not_found"):
    """No such assignment, or another rater's (the same 404)."""


class ProjectNotFound(WorkflowError, status=404, code="not_found"):
    """No such project, or one the user may not see (the same 404)."""


class Conflict(WorkflowError, status=409, code="conflict"):
    """The request clashes with what is already recorded (rated, skipped, decided)."""


class NotCertified(WorkflowError, status=403, code="not_certified"):
    """The rater may not take production tasks now (candidate who failed, paused, revoked)."""


class ManagerNotAllowed(WorkflowError, status=403, code="permission_denied"):
    """A manager's decision about a rater that is not theirs to take."""


class NoSuchUser(WorkflowError, status=404, code="not_found"):
    """No account of that name (to add to a project)."""


class InvitationInvalid(WorkflowError, status=410, code="invitation_invalid"):
    """A link that was never issued, was revoked, has expired or was used already."""


class NotAnExampleItem(GuideError, code="not_an_example_item"):
    """An example image that is not one of the project's gold or training items."""


class ExampleNotFound(GuideError, status=404, code="not_found"):
    """No such pinned example in this project."""
