"""Nonsense settings are refused with their name, not accepted silently (#11.8)."""

import pytest

from curation.models import FilterJob, Source, SourceImport

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"min_short_side": -5}, "min_short_side"),
        ({"max_pixels": 1e23}, "max_pixels"),
        ({"max_pixels": 10**12}, "max_pixels"),
        ({"max_aspect_ratio": 0.5}, "max_aspect_ratio"),
        ({"chunk_size": "ten"}, "chunk_size"),
        ({"faces": {"min_faces": -1}}, "faces.min_faces"),
        ({"clip": {"enabled": False, "person_threshold": 7}}, "clip.person_threshold"),
        ({"faces": {"enabled": "yes"}}, "enabled"),
    ],
)
def test_job_settings_out_of_range_are_refused(root_client, config, named):
    source = Source.objects.create(name="s")
    source.items.create(path="a.jpg")
    body = {"source": source.pk, "config": {"clip": {"enabled": False}, **config}}
    if "clip" in config:
        body["config"] = config
    response = root_client.post("/api/jobs/", body, format="json")
    assert response.status_code == 400, response.json()
    assert named in response.json()["detail"]
    assert not FilterJob.objects.exists()


@pytest.mark.django_db(transaction=True)  # the import runs on a worker once committed
@pytest.mark.parametrize("scale", [[-1e308, 1e308], [0, 1e12], [5, 5]])
def test_a_scale_that_would_flatten_every_score_is_refused(
    root_client, settings, tmp_path, scale, eager_celery
):
    settings.IMPORT_ROOTS = [tmp_path.resolve()]
    (tmp_path / "m.csv").write_text("path,score\na.jpg,3\nb.jpg,7\n")
    response = root_client.post(
        "/api/sources/",
        {"kind": "manifest", "path": str(tmp_path / "m.csv"), "name": "flat", "scale": scale},
        format="json",
    )
    assert response.status_code == 400, response.json()
    assert "scale" in response.json()["detail"]
    assert not Source.objects.filter(name="flat").exists()


@pytest.mark.django_db(transaction=True)
def test_a_mostly_garbage_manifest_is_no_success(root_client, settings, tmp_path, eager_celery):
    settings.IMPORT_ROOTS = [tmp_path.resolve()]
    lines = ["path,score", "good.jpg,3"] + [f"bad{i}.jpg,not-a-number" for i in range(13)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    response = root_client.post(
        "/api/sources/",
        {"kind": "manifest", "path": str(tmp_path / "m.csv"), "name": "junk", "scale": [1, 10]},
        format="json",
    )
    body = response.json()
    assert body["refused"] == 13 and body["created"] == 1  # the good record is kept
    assert body["status"] == "failed" and "13 of 14 records were refused" in body["error"]
    assert SourceImport.objects.get(name="junk").status == "failed"
