"""Every door into the pool records terms: the upload API, import_images, a source import
(the terms its dataset publishes) and a curator's change of a source's provenance."""

import io
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from annotation.models import Project
from curation.models import Image, Source
from curation.services.sources import import_source
from tests.conftest import image_bytes, write_image

pytestmark = pytest.mark.django_db(transaction=True)


def stored_files() -> list[str]:
    root = Path(default_storage.location) / "images"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def upload(client, data: bytes, name: str = "me.png", **fields):
    fh = io.BytesIO(data)
    fh.name = name
    return client.post("/api/images/", {"file": fh, **fields}, format="multipart")


def test_an_upload_records_its_own_terms_over_its_source(client_as):
    curator = client_as("curator")
    Source.objects.create(name="studio", kind="upload", licence="research-only",
                          consent_basis="other")
    r = upload(curator, image_bytes(size=(80, 60), seed=1), source="studio",
               licence="cc-by-4.0", consent_basis="explicit_consent",
               consent_reference="form 2026-117")
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["licence"], body["consent_basis"], body["consent_reference"]) == (
        "CC-BY-4.0", "explicit_consent", "form 2026-117")
    assert body["terms"] == {"licence": "CC-BY-4.0", "consent_basis": "explicit_consent",
                             "consent_reference": "form 2026-117"}
    image = Image.objects.get(pk=body["id"])
    assert (image.licence, image.consent_basis) == ("CC-BY-4.0", "explicit_consent")
    # without terms of its own, an image takes its source's
    plain = upload(curator, image_bytes(size=(80, 60), seed=2), source="studio").json()
    assert plain["licence"] == "" and plain["terms"]["licence"] == "research-only"
    assert plain["terms"]["consent_basis"] == "other"
    # the same file again with other terms: refused, its terms kept
    again = upload(curator, image_bytes(size=(80, 60), seed=1), licence="CC0-1.0")
    assert again.status_code == 409, again.content
    assert "kept" in again.json()["detail"]
    image.refresh_from_db()
    assert image.licence == "CC-BY-4.0"


@pytest.mark.parametrize("fields, word", [
    ({"licence": "CC BY 4.0!"}, "licence"),
    ({"consent_basis": "they said yes"}, "consent_basis"),
    ({"licence": "CC-BY-4.0", "consent_reference": "x" * 501}, "consent_reference"),
])
def test_an_upload_with_bad_terms_is_a_clear_400_that_stores_nothing(client_as, fields, word):
    r = upload(client_as("curator"), image_bytes(size=(80, 60), seed=3), **fields)
    assert r.status_code == 400, r.content
    assert word in r.content.decode()
    assert not Image.objects.exists() and stored_files() == []


def test_import_images_records_the_terms_it_is_given(tmp_path):
    folder = tmp_path / "consented"
    for i in range(3):
        write_image(folder / f"p{i}.jpg", size=(80, 60), seed=10 + i)
    out = io.StringIO()
    call_command("import_images", str(folder), "--project", "consented", "--licence",
                 "cc-by-nc-4.0", "--consent-basis", "explicit_consent",
                 "--consent-reference", "forms 2026-A", stdout=out, stderr=io.StringIO(),
                 verbosity=0)
    assert "3 new images" in out.getvalue()
    assert set(Image.objects.values_list("licence", "consent_basis", "consent_reference")) == {
        ("CC-BY-NC-4.0", "explicit_consent", "forms 2026-A")}


def test_import_images_refuses_bad_terms_before_importing(tmp_path):
    folder = tmp_path / "photos"
    write_image(folder / "p.jpg", size=(80, 60), seed=20)
    with pytest.raises(CommandError, match="consent basis 'maybe' is not one of"):
        call_command("import_images", str(folder), "--project", "p", "--consent-basis",
                     "maybe", stdout=io.StringIO(), stderr=io.StringIO(), verbosity=0)
    with pytest.raises(CommandError, match="is not a licence identifier"):
        call_command("import_images", str(folder), "--project", "p", "--licence", "a b",
                     stdout=io.StringIO(), stderr=io.StringIO(), verbosity=0)
    assert not Image.objects.exists() and not Project.objects.exists()


def baid_folder(root: Path) -> Path:
    folder = root / "BAID"
    (folder / "dataset").mkdir(parents=True)
    for i in range(2):
        write_image(folder / "images" / f"{i}.jpg", size=(400, 300), seed=30 + i)
    (folder / "dataset" / "train_set.csv").write_text("image,score\n0.jpg,4.5\n1.jpg,7.25\n")
    return folder


def test_a_source_import_records_the_terms_its_dataset_publishes(client_as, import_root,
                                                                  eager_celery):
    curator = client_as("curator")
    body = {"kind": "baid", "path": str(baid_folder(import_root)), "name": "baid"}
    created = curator.post("/api/sources/", body, format="json")
    assert created.status_code == 201, created.content
    source = created.json()["source"]
    assert source["licence"] == "CC-BY-NC-ND-4.0"
    assert source["consent_basis"] == "public_dataset_terms"
    assert "github.com/Dreemurr-T/BAID" in source["origin"]
    assert source["allows"] == ["redistribution"]
    # a manifest publishes nothing: nothing is recorded
    (import_root / "m").mkdir()
    write_image(import_root / "m" / "a.jpg", size=(400, 300), seed=40)
    (import_root / "m" / "m.csv").write_text("path\na.jpg\n")
    manifest = import_source("manifest", import_root / "m" / "m.csv", "m").source
    assert (manifest.licence, manifest.consent_basis, manifest.origin) == ("", "", "")


def test_curators_set_a_source_s_provenance_and_bad_input_changes_nothing(
        client_as, import_root, eager_celery):
    source = import_source("baid", baid_folder(import_root), "baid").source
    url = f"/api/sources/{source.pk}/"
    curator = client_as("curator")
    r = curator.patch(url, {"licence": "cc-by-4.0", "origin": "https://example.org/baid"},
                      format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["licence"], r.json()["origin"]) == ("CC-BY-4.0", "https://example.org/baid")
    assert r.json()["consent_basis"] == "public_dataset_terms"  # left out: kept
    assert r.json()["allows"] == ["commercial", "redistribution", "derivatives"]
    for bad, word in (({"licence": "CC BY!"}, "licence"),
                      ({"consent_basis": "nope"}, "consent_basis"),
                      ({"licence": ["CC-BY-4.0"]}, "licence")):
        r = curator.patch(url, bad, format="json")
        assert r.status_code == 400 and word in r.content.decode(), r.content
    assert client_as("researcher").patch(url, {"licence": "MIT"}, format="json"
                                         ).status_code == 403
    assert client_as("annotator").patch(url, {"licence": "MIT"}, format="json"
                                        ).status_code == 403
    assert client_as(None).patch(url, {"licence": "MIT"}, format="json").status_code in (401,
                                                                                        403)
    assert client_as("admin").patch(url, {"consent_basis": "other"}, format="json"
                                    ).status_code == 200
    source.refresh_from_db()
    assert (source.licence, source.consent_basis) == ("CC-BY-4.0", "other")
    # a re-import does not overwrite what a curator recorded
    import_source("baid", source.location, "baid")
    source.refresh_from_db()
    assert source.licence == "CC-BY-4.0"
