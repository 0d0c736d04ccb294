"""Writes for takedown requests, one module per concern; the names callers use are here."""

from .errors import FaceMatchingUnavailable, TakedownConflict, TakedownError, TakedownNotFound
from .removal import RATINGS_SETTING, rating_policy, remove_confirmed
from .requests import (
    add_photo,
    add_photos,
    decide_matches,
    file_request,
    find_matches,
    reject_request,
    start_removal,
)

__all__ = [
    "RATINGS_SETTING",
    "FaceMatchingUnavailable",
    "TakedownConflict",
    "TakedownError",
    "TakedownNotFound",
    "add_photo",
    "add_photos",
    "decide_matches",
    "file_request",
    "find_matches",
    "rating_policy",
    "reject_request",
    "remove_confirmed",
    "start_removal",
]
