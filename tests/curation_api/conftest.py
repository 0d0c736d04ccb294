"""Users with each role, a dataset imported as a source, and a finished filter job."""

from __future__ import annotations

import pytest

from curation.models import FilterJob, JobStatus, Source
from curation.services.jobs import start_job
from curation.services.sources import import_source
from tests.conftest import client_as, users_by_role  # noqa: F401 (client_as: a fixture here too)
from tests.curation_jobs import conftest as jobs

EXPECTED = jobs.EXPECTED
write_dataset = jobs.write_dataset
# The import roots of the job tests, as a fixture here too.
import_root = jobs.import_root

ROLES = ("curator", "researcher", "admin", "annotator")


@pytest.fixture
def users(db):
    """One user per role (curator, researcher and admin are groups; an annotator has none)."""
    return users_by_role(ROLES, password="pw-123456")


@pytest.fixture
def dataset_source(import_root) -> Source:
    """The planted dataset of tests/curation_jobs (EXPECTED says what each file must give)."""
    manifest = write_dataset(import_root / "set1")
    return import_source("manifest", manifest, "set1", scale=(1, 10)).source


@pytest.fixture
def finished_job(dataset_source, eager_celery, users) -> FilterJob:
    """A job run to its end in-process (CLIP off: no checkpoint on these machines)."""
    job = start_job(
        dataset_source,
        overrides={"clip": {"enabled": False}, "chunk_size": 4},
        user=users["curator"],
    )
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.progress
    return job
