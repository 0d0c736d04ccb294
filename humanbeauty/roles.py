"""Roles on the platform. Pure Python so every layer (and the CLI) shares one spelling."""

from enum import StrEnum


class Role(StrEnum):
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    CURATOR = "curator"
    RESEARCHER = "researcher"
    ADMIN = "admin"


# Project roles whose holders rate images in the project's queue.
RATING_ROLES = frozenset({Role.ANNOTATOR, Role.REVIEWER, Role.ADMIN})
# Project roles that see every image and every rating of the project.
OVERSIGHT_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})
# Roles that also hold platform-wide (not per-project) powers; kept as Django groups.
GLOBAL_ROLES = frozenset({Role.CURATOR, Role.RESEARCHER, Role.ADMIN})
