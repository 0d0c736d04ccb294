"""Releases state the licences they contain (per image in the split files, per licence and
source in the manifest, on the card) and a declared licence refuses images whose terms it
does not allow: at the edge (a 400 via the API) and in the build itself."""

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.models import Image, Source
from modeling.models import Release, ReleaseStatus
from modeling.release import ReleaseConfig, ReleaseConfigError, ReleaseRow, build_release

pytestmark = pytest.mark.django_db(transaction=True)
FORMATS = ["parquet", "csv", "webdataset"]


def post_release(client, settings, tmp_path, name: str, **fields):
    settings.RELEASE_ROOT = tmp_path.resolve()
    body = {"name": name, "version": "1", "out": name, "sources": ["open", "closed"],
            "formats": FORMATS, **fields}
    return client.post("/api/releases/", body, format="json")


def test_a_release_states_its_licences_per_image_source_and_in_the_manifest(
        mixed, client_as, settings, tmp_path):
    made = post_release(client_as("researcher"), settings, tmp_path, "mix")
    assert made.status_code == 202, made.content
    release = Release.objects.get(name="mix")
    assert release.status == ReleaseStatus.READY, release.error
    out = Path(release.out_dir)
    want = {"o1.jpg": ("CC-BY-4.0", "public_dataset_terms"),
            "o2.jpg": ("CC-BY-4.0", "public_dataset_terms"),
            "c1.jpg": ("research-only", "public_dataset_terms"),
            "c2.jpg": ("research-only", "public_dataset_terms"),
            "c3.jpg": ("CC0-1.0", "explicit_consent")}
    paths = dict(Image.objects.values_list("id", "original_path"))
    rows = [r for f in sorted((out / "parquet").glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()]
    assert {paths[r["image_id"]]: (r["licence"], r["consent_basis"]) for r in rows} == want
    csv_rows = [r for f in sorted((out / "csv").glob("*.csv"))
                for r in csv.DictReader(f.open())]
    assert {paths[int(r["image_id"])]: (r["licence"], r["consent_basis"])
            for r in csv_rows} == want

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["terms"] == {
        "declared": None,
        "licences": {"CC-BY-4.0": 2, "CC0-1.0": 1, "research-only": 2},
        "consent_bases": {"explicit_consent": 1, "public_dataset_terms": 4},
        "by_source": {"closed": {"CC0-1.0": 1, "research-only": 2},
                      "open": {"CC-BY-4.0": 2}},
    }
    card = (out / "README.md").read_text()
    assert "Licence: unknown (no licence declared)." in card
    assert ("The images' own terms: CC-BY-4.0 (2 images), CC0-1.0 (1 image), research-only "
            "(2 images)") in card
    assert "license: unknown" in card
    sheet = (out / "datasheet.md").read_text()
    assert ("Images per licence, as this build counted them: CC-BY-4.0 (2), CC0-1.0 (1), "
            "research-only (2)") in sheet
    assert "No licence declared (build option --licence)" in sheet
    assert ("Consent basis of the images, as recorded for them or their source: "
            "explicit_consent (1), public_dataset_terms (4).") in sheet
    assert "The platform does not record whether" not in sheet


def test_a_declared_licence_refuses_a_research_only_image_with_a_clear_400(
        mixed, client_as, settings, tmp_path):
    researcher = client_as("researcher")
    refused = post_release(researcher, settings, tmp_path, "open-rel", licence="cc-by-4.0")
    assert refused.status_code == 400, refused.content
    detail = refused.json()["detail"]
    assert refused.json()["code"] == "release_config"
    assert "declares CC-BY-4.0" in detail and "for 2 image(s)" in detail
    assert "research-only (2 image(s)): does not allow redistributing the images" in detail
    assert "CC0-1.0" not in detail  # allowed: the uploaded image's own terms
    assert not Release.objects.exists() and not (tmp_path / "open-rel").exists()

    # a licence the platform does not know, or a malformed one: a 400 naming the field
    for bad in ("unknown", "CC BY!", "Apache-2.0"):
        r = post_release(researcher, settings, tmp_path, "bad", licence=bad)
        assert r.status_code == 400 and "a release's licence must be one" in r.json()[
            "detail"], r.content
    assert not Release.objects.exists()

    # the sources whose terms allow it build, and say so
    made = post_release(researcher, settings, tmp_path, "open-rel", licence="CC-BY-4.0",
                        sources=["open"])
    assert made.status_code == 202, made.content
    release = Release.objects.get(name="open-rel")
    assert release.status == ReleaseStatus.READY, release.error
    assert release.config["licence"] == "CC-BY-4.0"
    out = Path(release.out_dir)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["terms"]["declared"] == "CC-BY-4.0"
    assert manifest["config"]["licence"] == "CC-BY-4.0"
    card = (out / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "Licence: CC-BY-4.0." in card
    sheet = (out / "datasheet.md").read_text()
    assert "Licence declared: CC-BY-4.0; the build refused any image" in sheet
    assert "Images per licence, as this build counted them: CC-BY-4.0 (2)" in sheet
    # scores only (images=none) under research-only: the images are not shared, so allowed
    scores = post_release(researcher, settings, tmp_path, "scores", licence="research-only",
                          images="none")
    assert scores.status_code == 202, scores.content
    assert Release.objects.get(name="scores").status == ReleaseStatus.READY


def test_the_build_itself_refuses_a_mix_its_licence_does_not_allow(tmp_path):
    """The worker's check (the Django-free build), over the rows it writes: nothing is left."""
    from PIL import Image as PILImage

    rows = []
    for i, lic in enumerate(("CC-BY-4.0", "research-only", "unknown")):
        f = tmp_path / f"{i}.png"
        PILImage.new("RGB", (32, 32), (i * 60, 10, 10)).save(f)
        import hashlib

        rows.append(ReleaseRow(image_id=i + 1, file=str(f),
                               sha256=hashlib.sha256(f.read_bytes()).hexdigest(), phash=None,
                               cluster=None, source="s", width=32, height=32, format="PNG",
                               overall=0.5, licence=lic, consent_basis="unknown"))
    config = ReleaseConfig(name="r", version="1", formats=("parquet",), licence="CC-BY-4.0",
                           split={"train": 1.0})
    with pytest.raises(ReleaseConfigError) as caught:
        build_release(rows, {r.image_id: "train" for r in rows}, config, tmp_path / "out",
                      platform_version="t", extra_config={})
    message = caught.value.message
    assert "for 2 image(s)" in message and "research-only (1 image(s))" in message
    assert "unknown (1 image(s))" in message and message.endswith("nothing was released")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.building").exists()
    with pytest.raises(ReleaseConfigError, match="a release's licence must be one"):
        ReleaseConfig(name="r", version="1", licence="CC BY")


def test_the_release_records_sources_provenance_for_the_datasheet(mixed):
    from modeling.selectors import source_facts

    facts = source_facts(Source.objects.get(name="closed"))
    assert (facts["licence"], facts["consent_basis"]) == ("research-only",
                                                          "public_dataset_terms")
