"""Import a manifest and filter it: the decisions and reasons are exactly the expected ones."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from curation.models import Decision, FilterJob, JobStatus, Source, SourceItem
from curation.services.jobs import JobError, start_job
from curation.services.sources import import_source
from curation.sources import PathOutsideRoots

from .conftest import EXPECTED, write_dataset

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_import_and_curate_give_exactly_the_expected_decisions(import_root, eager_celery):
    manifest = write_dataset(import_root / "set1")
    out = run("import_source", "manifest", str(manifest), "--name", "set1", "--scale", "1", "10")
    assert "9 new records" in out
    item = SourceItem.objects.get(path="person.jpg")
    assert item.raw_score == 3 and item.score == pytest.approx(2 / 9)

    job_id = int(run("curate", "set1", "--no-clip", "--wait", "--verbosity", "0").strip())
    job = FilterJob.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE
    assert job.config["clip"]["enabled"] is False  # the snapshot
    lines = [
        json.loads(x) for x in run("job_report", str(job_id), "--format", "jsonl").splitlines()
    ]
    got = {x["path"]: (x["decision"], sorted(x["reasons"])) for x in lines}
    assert got == {k: (d, sorted(r)) for k, (d, r) in EXPECTED.items()}
    clusters = {x["path"]: x["cluster"] for x in lines}
    assert clusters["person.jpg"] is not None
    assert clusters["person_resized.jpg"] == clusters["person.jpg"]
    assert clusters["gradient.png"] is None

    summary = json.loads(run("job_report", str(job_id), "--format", "json"))
    assert summary["counts"] == {"accepted": 2, "rejected": 7, "error": 0}
    assert summary["reasons"]["no_face"] == 3 and summary["reasons"]["corrupt"] == 2
    person = Decision.objects.get(job=job, item__path="person.jpg")
    assert person.measurements["faces"] >= 1 and 0 < person.measurements["largest_face_share"] < 1

    # rerunning the job changes nothing already decided
    from curation.tasks import run_filter_job

    FilterJob.objects.filter(pk=job_id).update(status=JobStatus.RUNNING)
    before = list(Decision.objects.filter(job=job).values_list("id", "decision", "reasons"))
    run_filter_job.delay(job_id)
    assert list(Decision.objects.filter(job=job).values_list("id", "decision", "reasons")) == before


def test_near_duplicates_span_jobs_and_sources(import_root, eager_celery):
    manifest = write_dataset(import_root / "a")
    import_source("manifest", manifest, "a", scale=(1, 10))
    first = start_job(Source.objects.get(name="a"), overrides={"clip": {"enabled": False}})
    other = import_root / "b"
    other.mkdir()
    from PIL import Image

    Image.open(import_root / "a" / "person.jpg").resize((900, 900)).save(
        other / "p.jpg", quality=80
    )
    (other / "m.csv").write_text("path\np.jpg\n")
    import_source("manifest", other / "m.csv", "b")
    second = start_job(Source.objects.get(name="b"), overrides={"clip": {"enabled": False}})
    d = Decision.objects.get(job=second)
    assert d.reasons == ["near_duplicate"]
    original = Decision.objects.get(job=first, item__path="person.jpg")
    assert d.item.image.cluster_id == original.item.image.cluster_id is not None
    # the earlier, larger image stays the cluster's representative
    assert d.item.image.cluster.representative_id == original.item.image_id


def test_paths_outside_the_import_roots_are_refused(import_root, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    folder = import_root / "m"
    folder.mkdir()
    (folder / "evil.csv").write_text(
        f"path,score\n../../elsewhere/secret.jpg,1\n{outside / 'secret.jpg'},2\nok.jpg,3\n"
    )
    (folder / "link.jpg").symlink_to(outside / "secret.jpg")
    (folder / "evil.csv").write_text((folder / "evil.csv").read_text() + "link.jpg,4\n")
    report = import_source("manifest", folder / "evil.csv", "evil", scale=(1, 5))
    assert [i.path for i in SourceItem.objects.filter(source=report.source)] == ["ok.jpg"]
    assert len(report.errors) == 3 and all("import roots" in e for e in report.errors)
    (outside / "x.csv").write_text("path\nsecret.jpg\n")
    with pytest.raises(PathOutsideRoots):
        import_source("manifest", outside / "x.csv", "outside")
    with pytest.raises(CommandError, match="import roots"):
        run("import_source", "manifest", str(outside / "x.csv"), "--name", "o")


def test_clip_without_a_checkpoint_fails_at_once(import_root, settings):
    settings.CLIP_CHECKPOINT = ""
    manifest = write_dataset(import_root / "c")
    import_source("manifest", manifest, "c", scale=(1, 10))
    with pytest.raises(JobError, match="CLIP filter needs a checkpoint"):
        start_job(Source.objects.get(name="c"))
    with pytest.raises(CommandError, match="--no-clip"):
        run("curate", "c")
    assert not FilterJob.objects.exists()


def test_bad_job_settings_are_refused(import_root):
    manifest = write_dataset(import_root / "d")
    import_source("manifest", manifest, "d", scale=(1, 10))
    source = Source.objects.get(name="d")
    for bad in ({"chunk_size": 0}, {"nope": 1}, {"clip": {"colour": 1}}, {"near_dup_k": 40}):
        with pytest.raises(JobError):
            overrides = {**bad, "clip": {"enabled": False}} if "clip" not in bad else bad
            start_job(source, overrides=overrides)


def test_one_failing_image_is_an_error_and_the_job_goes_on(import_root, eager_celery,
                                                           monkeypatch):
    """A stage that blows up on one image (here the face detector) records an error for that
    image only; every other image is decided as usual."""
    from curation.imaging import faces

    real = faces.detect_faces

    def flaky(path, **kwargs):
        if str(path).endswith("gradient.png"):
            raise RuntimeError("detector crashed")
        return real(path, **kwargs)

    monkeypatch.setattr(faces, "detect_faces", flaky)
    manifest = write_dataset(import_root / "e")
    import_source("manifest", manifest, "e", scale=(1, 10))
    job = start_job(Source.objects.get(name="e"), overrides={"clip": {"enabled": False}})
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    decisions = {d.item.path: d for d in Decision.objects.filter(job=job).select_related("item")}
    assert len(decisions) == len(EXPECTED)
    broken = decisions.pop("gradient.png")
    assert broken.decision == "error" and "detector crashed" in broken.measurements["error"]
    for path, d in decisions.items():
        assert (d.decision, sorted(d.reasons)) == (EXPECTED[path][0], sorted(EXPECTED[path][1]))
