"""Releases from the database: selection, CLI contract, stable test set, permissions, download."""

import io
import json
import tarfile

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError
from rest_framework.test import APIClient

from annotation import services
from modeling.models import Release, ReleaseItem, ReleaseStatus

from .conftest import run

pytestmark = pytest.mark.django_db(transaction=True)


def test_build_list_show_and_official_layout(data, tmp_path):
    project, images = data
    out = tmp_path / "rel1"
    run("release", "build", "hb", "--version", "1", "--projects", project.name, "--sources",
        "src", "--seed", "3", "--formats", "official,parquet,csv", "--images", "copy",
        "--out", str(out), "--wait")
    release = Release.objects.get(name="hb", version="1")
    assert release.status == ReleaseStatus.READY
    # 12 rated images + the 2 accepted source images
    assert ReleaseItem.objects.filter(release=release).count() == 14
    root = out / "HumanBeauty"
    expert = [json.loads(x) for x in (root / "HumanBeauty-50K" / "label.jsonl").read_text()
              .splitlines()]
    overall = [json.loads(x) for x in (root / "HumanBeauty-58K" / "label.jsonl").read_text()
               .splitlines()]
    assert len(expert) == 12 and len(overall) == 2
    assert all(len(x["score"]) == 12 for x in expert)
    assert all(isinstance(x["score"], float) and "text_level" in x for x in overall)
    assert (out / "parquet" / "train.parquet").is_file() and (out / "manifest.json").is_file()
    assert "hb\t1\tready" in run("release", "list")
    shown = json.loads(run("release", "show", "hb", "1"))
    assert shown["config"]["seed"] == 3 and shown["manifest_sha256"] == release.manifest_sha256


def test_the_licence_and_shard_size_reach_the_card_and_the_shards(data, tmp_path):
    project, _ = data
    out = tmp_path / "lic"
    run("release", "build", "lic", "--version", "1", "--projects", project.name, "--sources",
        "src", "--formats", "parquet,webdataset", "--license", "cc-by-4.0", "--shard-size",
        "5", "--out", str(out), "--wait")
    card = (out / "README.md").read_text()
    assert "license: cc-by-4.0" in card
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["license"] == "cc-by-4.0"
    assert manifest["config"]["shard_size"] == 5
    shards = sorted((out / "webdataset").rglob("*.tar"))
    assert len(shards) >= 3  # 14 images in shards of at most 5, per split
    with pytest.raises(CommandError, match="license must be a licence identifier"):
        run("release", "build", "lic", "--version", "2", "--sources", "src",
            "--license", "CC BY 4.0!", "--out", str(tmp_path / "bad"))


def test_a_new_version_keeps_the_old_test_set(data, tmp_path, make_project):
    project, _ = data
    run("release", "build", "hb", "--version", "1", "--projects", project.name,
        "--images", "none", "--split", "train=0.5,val=0.1,test=0.4", "--out",
        str(tmp_path / "v1"), "--wait")
    old_test = set(ReleaseItem.objects.filter(release__version="1", split="test")
                   .values_list("image_id", flat=True))
    assert old_test
    run("release", "build", "hb", "--version", "2", "--projects", project.name, "--sources",
        "src", "--seed", "99", "--images", "none", "--out", str(tmp_path / "v2"), "--wait")
    new_test = set(ReleaseItem.objects.filter(release__version="2", split="test")
                   .values_list("image_id", flat=True))
    assert old_test <= new_test


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--projects", "nope"], "unknown project"),
        (["--sources", "src", "--split", "train=0.8,test=0.1"], "sum to"),
        (["--sources", "src", "--split", "train=0.8,holdout=0.2"], "unknown split"),
        (["--sources", "src", "--formats", "official,xml"], "unknown format"),
        (["--sources", "src", "--images", "none", "--max-side", "100"], "max_side"),
        ([], "at least one"),
        (["--sources", "src", "--split", "train=0.9,val=0.1"], "official layout needs a test"),
        (["--sources", "src", "--na", "zero"], "na must be one of fill, drop, overall"),
    ],
)
def test_bad_configurations_get_clear_errors(data, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        run("release", "build", "bad", "--version", "1", "--out", str(tmp_path / "x"), *args)
    assert not Release.objects.filter(name="bad").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"images": "none", "max_side": 100}, "max_side resizes copied images"),
        ({"split": {"train": 0.5, "test": 0.1}}, "sum to 1"),
        ({"split": {"train": 1.2, "test": -0.2}}, "must be a number >= 0"),
        ({"formats": []}, "at least one format"),
        ({"split": {"train": 0.9, "val": 0.1}}, "official layout needs a test split"),
        ({"split": {"train": 0.9, "val": 0.1, "test": 0.0}}, "official layout needs a test"),
        ({"na": "zero"}, "na must be one of fill, drop, overall"),
    ],
)
def test_the_api_refuses_what_the_worker_would_refuse(data, tmp_path, settings, fields, message):
    """One validator, at the edge: a configuration the build would refuse is a 400 and never
    becomes a queued release."""
    project, _ = data
    settings.RELEASE_ROOT = tmp_path.resolve()
    services.add_member(project, "res", "researcher")
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="res"))
    body = {"name": "edge", "version": "1", "out": "edge", "projects": [project.name], **fields}
    response = client.post("/api/releases/", body, format="json")
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    assert not Release.objects.filter(name="edge").exists()
    assert not (tmp_path / "edge").exists()


def test_without_a_bucket_a_release_needs_its_folder(data, tmp_path, settings):
    """`out` may be left out only where releases go to the bucket (tests/storage)."""
    project, _ = data
    settings.RELEASE_ROOT = tmp_path.resolve()
    services.add_member(project, "res", "researcher")
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="res"))
    body = {"name": "nowhere", "version": "1", "projects": [project.name]}
    response = client.post("/api/releases/", body, format="json")
    assert response.status_code == 400, response.content
    assert "name the new folder the release is written into" in response.json()["detail"]
    assert not Release.objects.filter(name="nowhere").exists()


def test_the_api_takes_the_takedown_contact_for_the_datasheet(
    data, tmp_path, settings, eager_celery
):
    project, _ = data
    settings.RELEASE_ROOT = tmp_path.resolve()
    services.add_member(project, "res", "researcher")
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="res"))
    body = {"name": "c", "version": "1", "out": "c", "projects": [project.name],
            "formats": ["csv"]}
    too_long = client.post("/api/releases/", {**body, "contact": "x" * 301}, format="json")
    assert too_long.status_code == 400 and "contact" in too_long.json()["detail"]
    made = client.post(
        "/api/releases/", {**body, "contact": " takedown@example.org "}, format="json"
    )
    assert made.status_code == 202, made.content
    release = Release.objects.get(name="c")
    assert release.config["contact"] == "takedown@example.org"
    sheet = (tmp_path / "c" / "datasheet.md").read_text()
    assert "takedown@example.org" in sheet


def test_empty_selection_is_refused(make_project, tmp_path):
    project, _, _ = make_project(2, raters=["a"])
    with pytest.raises(CommandError, match="selection is empty"):
        run("release", "build", "e", "--version", "1", "--projects", project.name,
            "--out", str(tmp_path / "e"))


def test_only_researchers_and_admins_build_and_download(data, tmp_path, settings):
    project, _ = data
    settings.RELEASE_ROOT = tmp_path.resolve()
    User = get_user_model()
    annotator = User.objects.get(username="a")
    services.add_member(project, "res", "researcher")
    researcher = User.objects.get(username="res")
    body = {"name": "api", "version": "1", "out": "api",  # a folder under RELEASE_ROOT
            "projects": [project.name], "images": "copy", "formats": ["official"]}
    denied = APIClient()
    denied.force_authenticate(annotator)
    assert denied.post("/api/releases/", body, format="json").status_code == 403
    assert denied.get("/api/releases/").status_code == 403
    client = APIClient()
    client.force_authenticate(researcher)
    created = client.post("/api/releases/", body, format="json")
    assert created.status_code == 202
    release_id = created.json()["id"]
    assert client.get(f"/api/releases/{release_id}/").json()["status"] == "ready"
    assert denied.get(f"/api/releases/{release_id}/download/").status_code == 403
    response = client.get(f"/api/releases/{release_id}/download/")
    assert response.status_code == 200 and response.streaming
    data_bytes = b"".join(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(data_bytes)) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("api/manifest.json").read())
        label = tar.extractfile("api/HumanBeauty/HumanBeauty-50K/label.jsonl").read()
    assert "api/HumanBeauty/HumanBeauty-50K/label.jsonl" in names
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert {f"api/{p}" for p in listed} <= set(names)
    import hashlib

    assert listed["HumanBeauty/HumanBeauty-50K/label.jsonl"] == hashlib.sha256(label).hexdigest()


def test_releases_page_lists_releases_for_researchers_only(data, tmp_path, client):
    project, _ = data
    run("release", "build", "page", "--version", "1", "--projects", project.name,
        "--images", "none", "--out", str(tmp_path / "p"), "--wait")
    services.add_member(project, "res", "researcher", password="pw-123456")
    assert client.login(username="a", password="pw-123456")
    assert client.get("/releases/").status_code == 403
    client.logout()
    assert client.login(username="res", password="pw-123456")
    page = client.get("/releases/")
    assert page.status_code == 200
    assert b"page" in page.content and b"Datasheet" in page.content


def test_a_selected_project_that_gives_nothing_is_said_not_passed_over(
    data, tmp_path, make_project
):
    unrated, _, _ = make_project(3, raters=["z"])
    # Two images: no official layout, which would need one of them in test.
    out = run("release", "build", "quiet", "--version", "1", "--projects", unrated.name,
              "--sources", "src", "--images", "none", "--formats", "parquet,csv",
              "--out", str(tmp_path / "q"), "--wait")
    release = Release.objects.get(name="quiet")
    assert release.counts["kinds"] == {"12dim": 0, "overall": 2}
    expected = f"project {unrated.name} contributed no image"
    assert any(w.startswith(expected) for w in release.warnings)
    assert f"warning: {expected}" in out
    manifest = json.loads((tmp_path / "q" / "manifest.json").read_text())
    assert manifest["warnings"] == release.warnings
    assert expected in (tmp_path / "q" / "datasheet.md").read_text()


def test_na_reaches_the_manifest_and_the_cli_says_what_the_official_layout_holds(data, tmp_path):
    project, _ = data
    out = run("release", "build", "na", "--version", "1", "--projects", project.name,
              "--sources", "src", "--formats", "official,parquet", "--images", "none",
              "--na", "drop", "--out", str(tmp_path / "na"), "--wait")
    release = Release.objects.get(name="na")
    official = release.counts["official"]
    manifest = json.loads((tmp_path / "na" / "manifest.json").read_text())
    assert manifest["config"]["na"] == "drop" and release.config["na"] == "drop"
    assert official == manifest["counts"]["official"] and official["na"] == "drop"
    lines = {s: len((tmp_path / "na" / "HumanBeauty" / f"{s}_label.jsonl").read_text()
                    .splitlines()) for s in ("train", "val", "test")}
    assert official["lines"] == lines and sum(lines.values()) == 14 - official["dropped"]
    assert (f"official layout (--na drop): {official['with_na']} 12-dim image(s) with a "
            f"not-applicable dimension: 0 filled, {official['dropped']} dropped, 0 as "
            f"overall-only; train {lines['train']}, val {lines['val']}, test {lines['test']} "
            "label line(s)") in out


def test_a_release_recorded_before_na_existed_is_read_as_fill():
    from modeling.services.releases import release_config

    old = {"seed": 1, "split": {"train": 0.8, "val": 0.1, "test": 0.1},
           "formats": ["official"], "images": "none", "max_side": None}
    assert release_config("old", "1", old).na == "fill"
    assert release_config("new", "1", {**old, "na": "overall"}).na == "overall"


def test_an_official_build_whose_test_split_comes_out_empty_fails_with_the_reason(
    data, tmp_path
):
    """Known only once split: two source images, a test share too small for either: the
    build fails, says why, and releases nothing."""
    with pytest.raises(CommandError, match="the official layout's test split is empty: none "
                                           "of the 2 image"):
        run("release", "build", "tiny", "--version", "1", "--sources", "src", "--split",
            "train=0.98,val=0.01,test=0.01", "--images", "none", "--out",
            str(tmp_path / "tiny"), "--wait")
    release = Release.objects.get(name="tiny")
    assert release.status == ReleaseStatus.FAILED and "test split is empty" in release.error
    assert not (tmp_path / "tiny").exists()
    assert not ReleaseItem.objects.filter(release=release).exists()


def test_release_diff_by_command_and_api(data, tmp_path, settings):
    project, _ = data
    for version, extra in (("1", []), ("2", ["--sources", "src", "--seed", "99"])):
        run("release", "build", "d", "--version", version, "--projects", project.name,
            "--images", "none", "--formats", "parquet", "--split",
            "train=0.5,val=0.1,test=0.4", "--out", str(tmp_path / f"d{version}"), "--wait",
            *extra)
    v1, v2 = (dict(ReleaseItem.objects.filter(release__name="d", release__version=v)
                   .values_list("image_id", "split")) for v in ("1", "2"))
    added = sorted(set(v2) - set(v1))
    moved = sorted(i for i in v1 if i in v2 and v1[i] != v2[i])
    assert len(added) == 2 and set(v1) <= set(v2)  # the source's two images
    out = run("release", "diff", "d", "1", "2")
    head, _, body = out.partition("\n")
    assert head == (f"d 2 against 1: 2 added, 0 removed, 0 withheld, {len(moved)} moved, "
                    f"{len(v1) - len(moved)} unchanged")
    diff = json.loads(body)
    assert diff["added"] == added and diff["removed"] == [] and diff["withheld"] == []
    assert [m["image_id"] for m in diff["moved"]] == moved
    assert all(m["from"] == v1[m["image_id"]] and m["to"] == v2[m["image_id"]]
               for m in diff["moved"])
    with pytest.raises(CommandError, match="no release d 3"):
        run("release", "diff", "d", "1", "3")

    services.add_member(project, "res", "researcher")
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="res"))
    r1, r2 = (Release.objects.get(name="d", version=v).pk for v in ("1", "2"))
    response = client.get(f"/api/releases/{r2}/diff/?against={r1}")
    assert response.status_code == 200
    assert {k: v for k, v in response.json().items() if k not in ("release", "against")} == {
        k: v for k, v in diff.items() if k not in ("release", "against")}
    back = client.get(f"/api/releases/{r1}/diff/?against={r2}").json()
    assert back["removed"] == added and back["added"] == []
    assert client.get(f"/api/releases/{r2}/diff/").status_code == 400
    assert client.get(f"/api/releases/{r2}/diff/?against=999999").status_code == 404
