"""A rated project and a curated source in PostgreSQL, and the release command, for the
release tests."""

import io

import pytest
from django.core.management import call_command

from annotation.services.quality import refresh_statistics
from curation.models import Source
from curation.services.jobs import start_job
from curation.services.sources import import_source
from tests.curation_jobs import conftest as jobs
from tests.curation_jobs.conftest import write_dataset
from tests.quality.conftest import SimRater, rate_until_done

# The import roots of the job tests, as a fixture here too.
import_root = jobs.import_root


@pytest.fixture
def data(make_project, import_root, eager_celery):
    """A rated project (12-dim consensus) and a curated source (overall scores)."""
    project, images, users = make_project(12, overlap=2, raters=["a", "b", "c"])
    for i, name in enumerate(users):
        rate_until_done(project, users[name], SimRater("careful", seed=i))
    refresh_statistics(project)
    manifest = write_dataset(import_root / "src")
    import_source("manifest", manifest, "src", scale=(1, 10))
    start_job(Source.objects.get(name="src"), overrides={"clip": {"enabled": False}})
    return project, images


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()
