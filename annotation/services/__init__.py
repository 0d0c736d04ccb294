"""Writes for the annotation app, one module per concern; the names callers use are here."""

from .errors import (
    Conflict,
    InvalidRating,
    LeaseNotFound,
    NotAMember,
    NotCertified,
    ProjectNotFound,
    WorkflowError,
)
from .members import add_member
from .workflow import (
    MAX_LIVE_LEASES,
    SubmitResult,
    add_images,
    get_or_create_project,
    next_task,
    reclaim_expired,
    release_leases,
    skip_assignment,
    submit_rating,
)

__all__ = [
    "MAX_LIVE_LEASES",
    "Conflict",
    "InvalidRating",
    "LeaseNotFound",
    "NotAMember",
    "NotCertified",
    "ProjectNotFound",
    "SubmitResult",
    "WorkflowError",
    "add_images",
    "add_member",
    "get_or_create_project",
    "next_task",
    "reclaim_expired",
    "release_leases",
    "skip_assignment",
    "submit_rating",
]
