"""Users with each role and the import roots, for the provenance and terms tests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from curation.models import JobStatus
from curation.services.jobs import start_job
from curation.services.provenance import set_source_terms
from curation.services.sources import import_source
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


@pytest.fixture
def mixed(import_root, eager_celery, client_as):  # noqa: F811 (the fixture)
    """Two curated sources: "open" (CC-BY-4.0, 2 images) and "closed" (research-only, 3
    images, one uploaded before with its own CC0-1.0 and explicit consent)."""
    open_ = import_source("manifest", photo_folder(import_root / "open", ["o1.jpg", "o2.jpg"],
                                                   seed=60), "open", scale=(1, 10)).source
    set_source_terms(open_, licence="CC-BY-4.0", consent_basis="public_dataset_terms")
    closed = import_source("manifest", photo_folder(
        import_root / "closed", ["c1.jpg", "c2.jpg", "c3.jpg"], seed=70), "closed",
        scale=(1, 10)).source
    set_source_terms(closed, licence="research-only", consent_basis="public_dataset_terms")
    fh = io.BytesIO((import_root / "closed" / "c3.jpg").read_bytes())
    fh.name = "c3.jpg"
    r = client_as("curator").post("/api/images/", {
        "file": fh, "licence": "CC0-1.0", "consent_basis": "explicit_consent"},
        format="multipart")
    assert r.status_code == 201, r.content
    for source in (open_, closed):
        job = start_job(source, overrides=NO_MODELS)
        job.refresh_from_db()
        assert job.status == JobStatus.DONE, job.progress
    return open_, closed
