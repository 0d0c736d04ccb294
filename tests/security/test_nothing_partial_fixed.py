"""Refusals the sweep found leaving something behind (#11, "nothing partial"), each fixed where
the fault lay. Same world and checks as tests/security/test_nothing_partial.py."""

from __future__ import annotations

import pytest

from tests.security import test_nothing_partial as sweep
from tests.security.test_nothing_partial import (
    LOGIN_GUARD,
    MISSING,
    Req,
    _html_client,
    check_refused,
    reference_csv,
    report,
    score_row,
)

pytestmark = pytest.mark.django_db
world = sweep.world  # the fixture


@pytest.mark.parametrize("scale", [[5, 5], [10, 1], [0, 1e12]])
def test_a_scale_that_flattens_every_score_is_refused_before_an_import_is_queued(world, scale):
    """An import always runs on a worker; what the request alone can tell (the path, the scale)
    is checked before a SourceImport is recorded or a task queued: a 400 with nothing done."""
    body = {"kind": "manifest", "path": str(world.import_root / "manifest.csv"), "name": "n",
            "scale": scale}
    reqs = [Req(f"scale {scale}", "cora", "/api/sources/", body, statuses=(400,))]
    problems = check_refused(world, reqs)
    assert not problems, report(problems, reqs)


def test_a_reference_upload_whose_every_row_is_refused_is_a_refusal(world):
    """A reference file of which no row can be used is refused whole: a 400 with the rows'
    errors, and no audit event (it set nothing), like every other refused manager decision."""
    url = f"/api/projects/{world.ids['project']}/references/"
    rows = [score_row(MISSING), score_row(world.ids["other_image"]),
            score_row(world.ids["image"], "1.5"), score_row("../../etc/passwd")]
    reqs = [
        Req("every row refused", "rita", url, {"file": reference_csv(rows), "kind": "gold"}),
        Req("a leased image only", "rita", url,
            {"file": reference_csv([score_row(world.ids["leased_image"])]), "kind": "gold"}),
    ]
    problems = check_refused(world, reqs)
    assert not problems, report(problems, reqs)


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_a_login_form_with_a_very_long_username_is_a_form_error(world, url):
    """django-axes stores the username of a failed login in a varchar(255); the login pages
    take any length: the name is cut to the column (AXES_USERNAME_CALLABLE), no 500."""
    reqs = [
        Req(f"a {n}-character username", None, url, f"username={'u' * n}&password=wrong",
            content_type="application/x-www-form-urlencoded", statuses=(200,),
            allowed=LOGIN_GUARD, client=_html_client())
        for n in (256, 10_000)
    ]
    problems = check_refused(world, reqs)
    assert not problems, report(problems, reqs)
