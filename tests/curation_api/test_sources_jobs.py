"""The curation REST API: roles, imports, jobs, reports, decisions and overrides."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from curation.models import Decision, FilterJob, JobStatus, Source
from curation.selectors import job_summary
from curation.services.jobs import STAGES

from .conftest import EXPECTED, write_dataset

pytestmark = pytest.mark.django_db(transaction=True)


def command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def decision_of(job: FilterJob, path: str) -> Decision:
    return Decision.objects.get(job=job, item__path=path)


# --- who may do what --------------------------------------------------------------------------


def test_roles_curators_and_admins_write_researchers_read_annotators_nothing(
    client_as, finished_job
, eager_celery):
    job = finished_job
    d = decision_of(job, "gradient.png")
    reads = [
        "/api/sources/",
        f"/api/sources/{job.source_id}/",
        "/api/jobs/",
        f"/api/jobs/{job.pk}/",
        f"/api/jobs/{job.pk}/report/?format=json",
        f"/api/jobs/{job.pk}/decisions/",
        f"/api/decisions/{d.pk}/",
    ]
    writes = [
        ("/api/sources/", {"kind": "manifest", "path": "/nowhere.csv", "name": "x"}),
        ("/api/jobs/", {"source": job.source_id, "config": {"chunk_size": 0}}),
        (f"/api/jobs/{job.pk}/cancel/", {}),
        (f"/api/decisions/{d.pk}/override/", {"decision": "accepted", "reason": "r"}),
        (f"/api/jobs/{job.pk}/project/", {"name": ""}),
        (f"/api/sources/{job.source_id}/project/", {"name": ""}),
    ]
    for url in reads:
        assert client_as(None).get(url).status_code == 401, url
        assert client_as("annotator").get(url).status_code == 403, url
        for role in ("researcher", "curator", "admin"):
            assert client_as(role).get(url).status_code == 200, (role, url)
    for url, body in writes:
        assert client_as(None).post(url, body, format="json").status_code == 401, url
        for role in ("annotator", "researcher"):
            response = client_as(role).post(url, body, format="json")
            assert response.status_code == 403, (role, url, response.content)
        # curators and admins get past the permission check (then the bad input is refused,
        # or the action happens)
        for role in ("curator", "admin"):
            assert client_as(role).post(url, body, format="json").status_code != 403, (role, url)
    sheet = f"/api/jobs/{job.pk}/contact-sheet/?group=accepted"
    assert client_as("annotator").get(sheet).status_code == 403
    assert client_as("researcher").get(sheet).status_code == 200


# --- sources --------------------------------------------------------------------------------


def test_import_a_manifest_and_read_its_counts(client_as, import_root, eager_celery):
    manifest = write_dataset(import_root / "set2")
    curator = client_as("curator")
    body = {"kind": "manifest", "path": str(manifest), "name": "set2", "scale": [1, 10]}
    created = curator.post("/api/sources/", body, format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["created"], data["updated"], data["refused"]) == (len(EXPECTED), 0, 0)
    source = data["source"]
    assert source["name"] == "set2" and source["kind"] == "manifest"
    assert source["scale"] == [1.0, 10.0] and source["location"] == str(manifest.parent)
    detail = curator.get(f"/api/sources/{source['id']}/").json()
    assert (detail["items"], detail["scored"], detail["linked"], detail["jobs"]) == (9, 9, 0, 0)
    assert detail["latest_job"] is None
    # a re-import updates, duplicates nothing, and answers 200
    again = curator.post("/api/sources/", body, format="json")
    assert again.status_code == 200 and again.json()["updated"] == 9
    listing = curator.get("/api/sources/").json()
    assert [s["name"] for s in listing["results"]] == ["set2"]
    assert listing["results"][0]["items"] == 9


def test_imports_outside_the_import_roots_are_refused_with_the_reason(
    client_as, import_root, tmp_path
, eager_celery):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "m.csv").write_text("path\na.jpg\n")
    curator = client_as("curator")

    def post(**body):
        return curator.post(
            "/api/sources/", {"kind": "manifest", "name": "x", **body}, format="json"
        )

    for path in (str(outside / "m.csv"), str(import_root / ".." / "elsewhere" / "m.csv")):
        response = post(path=path)
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "outside_import_roots"
        assert "outside" in response.json()["detail"] or "import roots" in response.json()["detail"]
    (import_root / "link.csv").symlink_to(outside / "m.csv")
    assert post(path=str(import_root / "link.csv")).json()["code"] == "outside_import_roots"
    relative = post(path="m.csv")
    assert relative.status_code == 400 and "relative path" in relative.json()["detail"]
    missing = post(path=str(import_root / "none.csv"))
    assert missing.status_code == 400 and "none.csv" in missing.json()["detail"]
    assert post(path=str(outside / "m.csv"), kind="nope").status_code == 400
    (import_root / "some.csv").write_text("path,score\na.jpg,3\n")
    bad_scale = post(path=str(import_root / "some.csv"), scale=[5, 1])
    assert bad_scale.status_code == 400 and "below its maximum" in bad_scale.json()["detail"]
    assert not Source.objects.exists()
    # records inside a good manifest that point outside are refused one by one, and listed
    folder = import_root / "m"
    folder.mkdir()
    (folder / "m.csv").write_text(f"path\nok.jpg\n{outside / 'secret.jpg'}\n")
    partly = post(path=str(folder / "m.csv"), name="partly")
    assert partly.status_code == 201
    assert partly.json()["created"] == 1 and partly.json()["refused"] == 1
    assert "import roots" in partly.json()["errors"][0]


# --- jobs -------------------------------------------------------------------------------------


def test_start_a_job_and_follow_it_to_its_summary(client_as, dataset_source, eager_celery):
    curator = client_as("curator")
    response = curator.post(
        "/api/jobs/",
        {"source": dataset_source.pk, "config": {"clip": {"enabled": False}, "chunk_size": 4}},
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    job = FilterJob.objects.get(pk=job_id)
    assert job.created_by.username == "curator" and job.config["chunk_size"] == 4
    detail = curator.get(f"/api/jobs/{job_id}/").json()
    assert detail["status"] == "done" and detail["source_name"] == "set1"
    progress = detail["progress"]
    assert progress["total"] == progress["decided"] == len(EXPECTED)
    assert progress["chunks"] == {"total": 3, "done": 3}
    stages = {s["name"]: s for s in progress["stages"]}
    assert list(stages) == list(STAGES)
    assert stages["validate"] == {"name": "validate", "enabled": True, "done": 9}
    # the two corrupt files stop after validating: the later stages see the other seven
    assert stages["hash"]["done"] == stages["dedup"]["done"] == stages["faces"]["done"] == 7
    assert stages["clip"] == {"name": "clip", "enabled": False, "done": 0}
    assert detail["counts"] == {"accepted": 2, "rejected": 7, "error": 0}
    summary = detail["summary"]
    assert summary == {
        "job": job_id,
        "status": "done",
        "counts": {"accepted": 2, "rejected": 7, "error": 0},
        "reasons": job_summary(job)["reasons"],
        "cluster_changes": 0,  # no representative displaced after its decision
    }
    assert summary["reasons"]["no_face"] == 3 and summary["reasons"]["corrupt"] == 2
    groups = {g["group"]: g["count"] for g in detail["groups"]}
    assert groups["accepted"] == 2 and groups["no_face"] == 3 and "error" not in groups
    # the lists: the source's latest job, the job list filtered by source
    source = curator.get(f"/api/sources/{dataset_source.pk}/").json()
    assert source["latest_job"] == {"id": job_id, "status": "done"}
    assert source["linked"] == 7  # the corrupt files were never stored
    jobs = curator.get(f"/api/jobs/?source={dataset_source.pk}").json()["results"]
    assert [(j["id"], j["decided"], j["counts"]["accepted"]) for j in jobs] == [(job_id, 9, 2)]
    assert jobs[0]["created_by"] == "curator" and jobs[0]["total"] == 9


def test_bad_settings_and_clip_without_a_checkpoint_are_refused(
    client_as, dataset_source, settings
):
    settings.CLIP_CHECKPOINT = ""
    curator = client_as("curator")

    def start(config):
        return curator.post(
            "/api/jobs/", {"source": dataset_source.pk, "config": config}, format="json"
        )

    clip = start({})
    assert clip.status_code == 400
    assert "CLIP filter needs a checkpoint" in clip.json()["detail"]
    missing = start({"clip": {"checkpoint": "/no/such/file.pt"}})
    assert missing.status_code == 400 and "/no/such/file.pt" in missing.json()["detail"]
    for bad, words in (
        ({"chunk_size": 0}, "chunk_size"),
        ({"colour": 1}, "unknown job setting"),
        ({"clip": {"enabled": False, "size": 3}}, "unknown clip setting"),
        ({"near_dup_k": 40}, "near_dup_k"),
    ):
        response = start({"clip": {"enabled": False}, **bad} if "clip" not in bad else bad)
        assert response.status_code == 400 and words in response.json()["detail"], bad
    nowhere = curator.post("/api/jobs/", {"source": 999999, "config": {}}, format="json")
    assert nowhere.status_code == 400 and "source" in nowhere.json()["errors"]
    assert not FilterJob.objects.exists()


def test_cancel_a_queued_job_once(client_as, dataset_source):
    # Created directly: a queued job that no worker has taken yet.
    job = FilterJob.objects.create(
        source=dataset_source, config={}, progress={"total": 9, "stages": {}}
    )
    curator = client_as("curator")
    response = curator.post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None
    again = curator.post(f"/api/jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


def test_the_report_matches_the_command_line(client_as, finished_job):
    job = finished_job
    client = client_as("researcher")
    summary = client.get(f"/api/jobs/{job.pk}/report/?format=json")
    assert summary.status_code == 200
    assert summary.json() == json.loads(command("job_report", str(job.pk), "--format", "json"))
    assert client.get(f"/api/jobs/{job.pk}/report/").json() == summary.json()

    lines = client.get(f"/api/jobs/{job.pk}/report/?format=jsonl")
    assert lines.status_code == 200 and lines.streaming
    assert lines["Content-Type"] == "application/x-ndjson"
    assert f"job-{job.pk}.jsonl" in lines["Content-Disposition"]
    body = b"".join(lines.streaming_content).decode()
    expected = command("job_report", str(job.pk), "--format", "jsonl")
    assert [json.loads(x) for x in body.splitlines()] == [
        json.loads(x) for x in expected.splitlines()
    ]
    got = {
        x["path"]: (x["decision"], sorted(x["reasons"]))
        for x in map(json.loads, body.split("\n")[:-1])
    }
    assert got == {k: (d, sorted(r)) for k, (d, r) in EXPECTED.items()}
    bad = client.get(f"/api/jobs/{job.pk}/report/?format=csv")
    assert bad.status_code == 400 and "json or jsonl" in bad.json()["detail"]
    assert client.get("/api/jobs/999999/report/?format=jsonl").status_code == 404


def test_decisions_are_listed_with_images_and_measurements(client_as, finished_job):
    job = finished_job
    client = client_as("researcher")
    url = f"/api/jobs/{job.pk}/decisions/"
    everything = client.get(url).json()
    assert everything["count"] == 9
    assert [d["item"]["path"] for d in everything["results"]] == list(EXPECTED)
    person = everything["results"][0]
    assert person["final"] == person["decision"] == "accepted" and person["reasons"] == []
    assert person["image"]["url"].endswith(f"/media/images/{person['image']['id']}/")
    assert person["image"]["width"] == 1024 and person["image"]["cluster"] is not None
    assert person["measurements"]["faces"] >= 1 and person["item"]["score"] == pytest.approx(2 / 9)
    corrupt = next(d for d in everything["results"] if d["item"]["path"] == "corrupt.jpg")
    assert corrupt["image"] is None and corrupt["reasons"] == ["corrupt"]

    def paths(query):
        response = client.get(url + query)
        assert response.status_code == 200, response.content
        return sorted(d["item"]["path"] for d in response.json()["results"])

    assert paths("?decision=accepted") == ["person.jpg", "person_mirror.jpg"]
    assert paths("?reason=no_face") == ["gradient.png", "strip.png", "tiny.png"]
    assert paths("?decision=rejected&reason=corrupt") == ["corrupt.jpg", "truncated.jpg"]
    assert paths("?decision=error") == []
    assert client.get(url + "?decision=maybe").status_code == 400
    assert client.get(url + "?reason=Robert');DROP").status_code == 400
    page = client.get(url + "?page=2").json()  # 50 a page: one page only
    assert page.get("detail") or page.get("results") == []


def test_override_keeps_the_reason_and_counts_in_the_summary(client_as, finished_job, users):
    job = finished_job
    gradient = decision_of(job, "gradient.png")
    curator = client_as("curator")
    url = f"/api/decisions/{gradient.pk}/override/"
    assert curator.post(url, {"decision": "accepted"}, format="json").status_code == 400
    blank = curator.post(url, {"decision": "accepted", "reason": "   "}, format="json")
    assert blank.status_code == 400 and "reason" in blank.json()["errors"]
    wrong = curator.post(url, {"decision": "error", "reason": "x"}, format="json")
    assert wrong.status_code == 400 and "decision" in wrong.json()["errors"]

    response = curator.post(
        url, {"decision": "accepted", "reason": " a person seen from behind "}, format="json"
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["final"] == data["override"] == "accepted"
    assert data["decision"] == "rejected" and data["reasons"] == ["no_face"]  # kept as computed
    assert data["override_reason"] == "a person seen from behind"
    assert data["overridden_by"] == "curator" and data["overridden_at"]
    gradient.refresh_from_db()
    assert gradient.override_reason == "a person seen from behind"
    assert gradient.overridden_by == users["curator"]

    summary = job_summary(job)
    assert summary["counts"] == {"accepted": 3, "rejected": 6, "error": 0}
    assert summary["reasons"]["no_face"] == 2
    detail = curator.get(f"/api/jobs/{job.pk}/").json()
    assert detail["summary"]["counts"]["accepted"] == 3 and detail["overridden"] == 1
    assert detail["counts"]["accepted"] == 3
    listed = curator.get(f"/api/jobs/{job.pk}/decisions/?decision=accepted").json()
    assert "gradient.png" in [d["item"]["path"] for d in listed["results"]]
    lines = b"".join(
        curator.get(f"/api/jobs/{job.pk}/report/?format=jsonl").streaming_content
    ).decode()
    by_path = {x["path"]: x for x in map(json.loads, lines.splitlines())}
    assert by_path["gradient.png"]["decision"] == "accepted"

    # and back: a rejection of an accepted image
    mirror = decision_of(job, "person_mirror.jpg")
    curator.post(
        f"/api/decisions/{mirror.pk}/override/",
        {"decision": "rejected", "reason": "the same shoot as person.jpg"},
        format="json",
    )
    assert job_summary(job)["counts"] == {"accepted": 2, "rejected": 7, "error": 0}


def test_the_schema_documents_the_curation_api(client_as):
    schema = client_as("curator").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path, method in (
        ("/api/sources/", "post"),
        ("/api/sources/{id}/", "get"),
        ("/api/jobs/", "post"),
        ("/api/jobs/{id}/", "get"),
        ("/api/jobs/{id}/cancel/", "post"),
        ("/api/jobs/{id}/report/", "get"),
        ("/api/jobs/{id}/decisions/", "get"),
        ("/api/jobs/{id}/contact-sheet/", "get"),
        ("/api/jobs/{id}/project/", "post"),
        ("/api/sources/{id}/project/", "post"),
        ("/api/decisions/{id}/override/", "post"),
    ):
        assert method in paths.get(path, {}), path
    sheet = paths["/api/jobs/{id}/contact-sheet/"]["get"]["responses"]["200"]["content"]
    assert "image/png" in sheet
    report = paths["/api/jobs/{id}/report/"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "application/x-ndjson"} <= set(report)
