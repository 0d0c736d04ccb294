"""Users by role, API clients and the import roots, as the curation API tests have them."""

from tests.curation_api.conftest import client_as, users  # noqa: F401
from tests.curation_jobs.conftest import import_root  # noqa: F401
