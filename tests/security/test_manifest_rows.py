"""Manifest rows that crashed an import (#11.3) are each that line's refusal: the good records
are kept, the import succeeds, nothing partial or raw SQL is left behind."""

import pytest
from django.contrib.auth import get_user_model

from curation.models import Source, SourceImport, SourceItem
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)

BAD_JSONL_ROWS = [
    '{"path": "a\\u0000b.jpg", "score": 3}',
    '{"path": "n.jpg", "score": 3, "note": "x\\u0000y"}',
    '{"path": "nan.jpg", "score": NaN}',
    '{"path": "inf.jpg", "score": 1e400}',
    '{"path": "\\ud800.jpg", "score": 3}',
    '{"path": "deep.jpg", "score": 3, "extra": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"path": "big.jpg", "score": ' + "9" * 5000 + "}",
    '{"path": "big2.jpg", "score": 3, "n": ' + "9" * 40 + "}",
]


def import_manifest(path):
    """POST /api/sources/ of the manifest at `path` (scale 1-10), as a superuser."""
    client = client_for(get_user_model().objects.create_superuser("r", password="p-1"))
    return client.post(
        "/api/sources/",
        {"kind": "manifest", "path": str(path), "name": "m", "scale": [1, 10]},
        format="json",
    )


@pytest.mark.parametrize("row", BAD_JSONL_ROWS)
def test_a_bad_jsonl_row_is_refused_alone(tmp_path, settings, row, eager_celery):
    settings.IMPORT_ROOTS = [tmp_path.resolve()]
    good = ['{"path": "good1.jpg", "score": 5}', '{"path": "good2.jpg", "score": 7}']
    (tmp_path / "m.jsonl").write_text("\n".join([good[0], row, good[1]]) + "\n")
    response = import_manifest(tmp_path / "m.jsonl")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["created"] == 2 and body["refused"] == 1, body
    assert "line 2" in body["errors"][0] or ":2:" in body["errors"][0]
    assert sorted(SourceItem.objects.values_list("path", flat=True)) == ["good1.jpg", "good2.jpg"]
    assert SourceImport.objects.get().status == "done"
    assert Source.objects.count() == 1


@pytest.mark.parametrize("bad", ["a\x00b.jpg,3", "c.jpg,3\x00", "d.jpg," + "9" * 5000])
def test_a_bad_csv_row_is_refused_alone(tmp_path, settings, bad, eager_celery):
    settings.IMPORT_ROOTS = [tmp_path.resolve()]
    (tmp_path / "m.csv").write_text("path,score\ngood1.jpg,5\n" + bad + "\ngood2.jpg,7\n")
    response = import_manifest(tmp_path / "m.csv")
    assert response.status_code == 201, response.json()
    assert response.json()["created"] == 2 and response.json()["refused"] == 1
    assert sorted(SourceItem.objects.values_list("path", flat=True)) == ["good1.jpg", "good2.jpg"]


def test_a_reference_csv_with_a_nul_is_a_clean_refusal(make_project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from annotation import services
    from tests.conftest import full_scores
    from tests.quality.test_review_and_api import csv_text

    project, images, _ = make_project(2, raters=["a"])
    services.add_member(project, "boss", "admin")
    client = client_for(get_user_model().objects.get(username="boss"))
    text = csv_text([(images[0].pk, full_scores(3)), (images[1].pk, full_scores(3))])
    lines = text.splitlines()
    lines[1] = "\x00" + lines[1]  # in the image cell, which is looked up in the database
    upload = SimpleUploadedFile("g.csv", ("\n".join(lines) + "\n").encode())
    response = client.post(
        f"/api/projects/{project.pk}/references/", {"file": upload, "kind": "gold"},
        format="multipart",
    )
    assert response.status_code in (207, 400), response.content[:300]
    body = response.json()
    if response.status_code == 207:
        assert body["set"] == 1 and "NUL" in body["errors"][0]
    else:
        assert "NUL" in body["detail"]
