"""The CLIP stage inside a job: a tiny random CLIP loaded from a local file through the job's
configuration (this checks the wiring, not accuracy)."""

import pytest

from curation.models import Decision, Source
from curation.services.jobs import start_job
from curation.services.sources import import_source
from tests.curation_imaging.tiny_clip import TINY_MODEL, write_tiny_clip

from .conftest import EXPECTED, write_dataset

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(("person_threshold", "adds_no_person"), [(0.0, False), (1.0, True)])
def test_clip_scores_and_reasons_reach_the_decisions(
    import_root, eager_celery, tmp_path, person_threshold, adds_no_person, settings
):
    checkpoint = write_tiny_clip(tmp_path / "clip")
    settings.MODEL_ROOTS = [(tmp_path / "clip").resolve()]
    manifest = write_dataset(import_root / "clip")
    import_source("manifest", manifest, "clip", scale=(1, 10))
    job = start_job(
        Source.objects.get(name="clip"),
        overrides={"clip": {"model": TINY_MODEL, "checkpoint": str(checkpoint),
                  "person_threshold": person_threshold, "inappropriate_threshold": 1.0}},
    )
    assert job.config["clip"]["checkpoint"] == str(checkpoint)
    for d in Decision.objects.filter(job=job).select_related("item"):
        decodable = "corrupt" not in d.reasons
        if not decodable:
            assert "clip_person" not in d.measurements
            continue
        assert 0.0 <= d.measurements["clip_person"] <= 1.0
        assert 0.0 <= d.measurements["clip_inappropriate"] <= 1.0
        expected = set(EXPECTED[d.item.path][1]) | ({"no_person"} if adds_no_person else set())
        assert set(d.reasons) == expected, d.item.path
