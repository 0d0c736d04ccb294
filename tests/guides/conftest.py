"""Fixtures of the guides' browser tests: a photo project whose managers pinned examples."""

from __future__ import annotations

import pytest

from tests.browser.conftest import GUIDELINES, PASSWORD, write_photos
from tests.browser.test_small_screens import touch_context


@pytest.fixture
def guided_photos(transactional_db, tmp_path):
    """A photo project: raters rita and ola (certified), admin boss; image 0 is a training item
    pinned as an example of "poor" Environment; Looks has the project's own definition."""
    from django.contrib.auth import get_user_model

    from annotation import services
    from annotation.models import ItemKind, RaterStatus
    from annotation.services import guides
    from annotation.services.quality import set_rater_status, set_references
    from curation.services import import_directory
    from tests.conftest import full_scores

    folder = tmp_path / "photos"
    write_photos(folder, 5)
    report = import_directory(folder)
    assert not report.bad, report.bad
    project, _ = services.get_or_create_project("Guided", overlap=2, guidelines=GUIDELINES)
    services.add_images(project, report.images)
    users = {}
    for name, role in (("rita", "annotator"), ("ola", "annotator"), ("boss", "admin")):
        services.add_member(project, name, role, password=PASSWORD)
        users[name] = get_user_model().objects.get(username=name)
    # A training item makes joiners candidates; the manager certifies rita and ola by hand.
    set_references(project, [(report.images[0], full_scores(2))], ItemKind.TRAINING)
    for name in ("rita", "ola"):
        set_rater_status(project, users[name], RaterStatus.CERTIFIED, actor=users["boss"])
    guides.pin_example(
        project, dimension="environment", level="poor", image=report.images[0].pk,
        actor=users["boss"],
    )
    guides.update_guides(
        project, {"looks": {"definition": "Grooming and expression, as the house style says."}}
    )
    return project, report.images, users


@pytest.fixture
def phone(browser, live_server):
    """A 390x844 touch page; JavaScript errors fail the test."""
    context = touch_context(browser, live_server, {"width": 390, "height": 844})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    pg.wait_for_load_state("networkidle")
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
