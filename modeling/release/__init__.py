"""Dataset releases, the Django-free core: leakage-free splits and the release files.

    plan = plan_splits(rows, config, SplitHistory(test=..., trained=...))
    manifest = build_release(rows, plan, config, out_dir, platform_version=..., extra_config=...)

Pure Python (numpy, pyarrow, PIL): the Django side selects rows and runs this in a Celery task.
The 12 dimensions and levels come from ``humanbeauty.standard``.
"""

from .build import build_release, check_official_test, layout_lines
from .config import FORMATS, IMAGE_MODES, NA_POLICIES, SPLITS, ReleaseConfig, ReleaseRow
from .diff import diff_splits
from .errors import ReleaseConfigError, ReleaseDataError
from .records import COLUMN_NAMES
from .splits import SplitHistory, SplitPlan, assign_splits, plan_splits

__all__ = [
    "COLUMN_NAMES",
    "FORMATS",
    "IMAGE_MODES",
    "NA_POLICIES",
    "SPLITS",
    "ReleaseConfig",
    "ReleaseConfigError",
    "ReleaseDataError",
    "ReleaseRow",
    "SplitHistory",
    "SplitPlan",
    "assign_splits",
    "build_release",
    "check_official_test",
    "diff_splits",
    "layout_lines",
    "plan_splits",
]
