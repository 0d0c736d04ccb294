"""Users with each role, a dataset imported as a source, and a finished filter job."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from curation.models import FilterJob, JobStatus, Source
from curation.services.jobs import start_job
from curation.services.sources import import_source
from humanbeauty.roles import Role
from tests.curation_jobs import conftest as jobs

EXPECTED = jobs.EXPECTED
write_dataset = jobs.write_dataset
# The import roots of the job tests, as a fixture here too.
import_root = jobs.import_root

ROLES = ("curator", "researcher", "admin", "annotator")


@pytest.fixture
def users(db):
    """One user per role (curator, researcher and admin are groups; an annotator has none)."""
    User = get_user_model()
    out = {}
    for name in ROLES:
        user = User.objects.create_user(name, password="pw-123456")
        if Role(name) in (Role.CURATOR, Role.RESEARCHER, Role.ADMIN):
            user.groups.add(Group.objects.get_or_create(name=name)[0])
        out[name] = user
    return out


@pytest.fixture
def client_as(users):
    def make(role: str | None) -> APIClient:
        client = APIClient()
        if role is not None:
            client.force_authenticate(users[role])
        return client

    return make


@pytest.fixture
def dataset_source(import_root) -> Source:
    """The planted dataset of tests/curation_jobs (EXPECTED says what each file must give)."""
    manifest = write_dataset(import_root / "set1")
    return import_source("manifest", manifest, "set1", scale=(1, 10)).source


@pytest.fixture
def finished_job(dataset_source, eager_celery, users) -> FilterJob:
    """A job run to its end in-process (CLIP off: no checkpoint on these machines)."""
    job = start_job(
        dataset_source, {"clip": {"enabled": False}, "chunk_size": 4}, user=users["curator"]
    )
    job.refresh_from_db()
    assert job.status == JobStatus.DONE, job.progress
    return job
