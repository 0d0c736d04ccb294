"""Users with each role and the import roots, for the provenance and terms tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import client_as, users_by_role, write_image  # noqa: F401 (a fixture here)
from tests.curation_jobs import conftest as jobs

# The import roots of the job tests, as a fixture here too.
import_root = jobs.import_root

ROLES = ("curator", "researcher", "admin", "annotator")
# Filter settings that decide on validation and terms alone (no face model, no CLIP weights).
NO_MODELS = {"faces": {"enabled": False}, "clip": {"enabled": False}}


@pytest.fixture
def users(db):
    return users_by_role(ROLES, password="pw-123456")


def photo_folder(folder: Path, names: list[str], *, seed: int = 0) -> Path:
    """Random-noise photos big enough to pass validation, and a manifest scoring them."""
    for i, name in enumerate(names):
        write_image(folder / name, size=(400, 300), seed=seed + i)
    manifest = folder / "manifest.csv"
    manifest.write_text("path,score\n" + "".join(f"{n},{3 + i}\n" for i, n in enumerate(names)))
    return manifest
