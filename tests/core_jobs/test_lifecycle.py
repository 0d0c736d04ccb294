"""One lifecycle for every long job (core.jobs): each kind is cancelled the same way over the
API, a cancel always stands against the worker, and a job's end is written once."""

from __future__ import annotations

import pytest

from core import jobs
from curation.models import FilterJob, Source, SourceImport, SourceItem
from curation.services import jobs as filter_jobs
from curation.services.sources import run_import
from modeling.models import Release, ScoringJob, TrainingRun
from modeling.services import releases, scoring, training
from rights.models import Removal, TakedownRequest
from rights.services.removal import remove_confirmed

pytestmark = pytest.mark.django_db(transaction=True)


def _import(import_root) -> SourceImport:
    manifest = import_root / "m.csv"
    manifest.write_text("path,score\na.jpg,1\nb.jpg,2\n")
    return SourceImport.objects.create(kind="manifest", path=str(manifest), name="m",
                                       scale=[1, 10])


def _filter_job(import_root) -> FilterJob:
    source = Source.objects.create(name="s", location=str(import_root))
    SourceItem.objects.create(source=source, path="a.jpg")
    return FilterJob.objects.create(source=source, config=filter_jobs.merged_config(
        {"clip": {"enabled": False}, "faces": {"enabled": False}}))


def _release(import_root) -> Release:
    return Release.objects.create(name="r", version="1", out_dir=str(import_root / "out"),
                                  config={"projects": [], "sources": ["s"]})


def _scoring(import_root) -> ScoringJob:
    return ScoringJob.objects.create(scope=ScoringJob.Scope.POOL, config={"chunk_size": 4})


def _training(import_root) -> TrainingRun:
    return TrainingRun.objects.create(data_dir=str(import_root), backbone="tiny",
                                      run_dir=str(import_root / "run"))


def _removal(import_root) -> Removal:
    request = TakedownRequest.objects.create(person="p", contact="c", reason="r")
    return Removal.objects.create(request=request)


# kind: (make a queued row, its API, who may cancel it, run its task's work in-process)
KINDS = {
    "source import": (_import, "source-imports", "curator", run_import),
    "filter job": (_filter_job, "jobs", "curator", filter_jobs.chunks_to_run),
    "release": (_release, "releases", "researcher", releases.build),
    "scoring job": (_scoring, "scoring-jobs", "researcher", scoring.run_scoring_job),
    "training run": (_training, "training-runs", "researcher", training.run_training),
    "takedown removal": (_removal, "takedown-removals", "admin", remove_confirmed),
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_job_is_cancelled_the_same_way(kind, client_as, import_root):
    make, api, role, work = KINDS[kind]
    row = make(import_root)
    model = type(row)
    url = f"/api/{api}/{row.pk}/cancel/"
    assert client_as("annotator").post(url).status_code in (403, 404)
    assert model.objects.get(pk=row.pk).status == "queued"

    cancelled = client_as(role).post(url)
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["id"] == row.pk
    again = client_as(role).post(url)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]

    # A delivery of its task after the cancel does nothing: no worker takes the row.
    work(row.pk)
    row = model.objects.get(pk=row.pk)
    assert row.status == "cancelled" and not row.worker and row.started_at is None
    assert row.error == f"cancelled by {role}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancel_while_running_stops_the_worker_and_stands(kind, client_as, import_root):
    make, api, role, _ = KINDS[kind]
    row = make(import_root)
    model = type(row)
    state, claimed = jobs.claim(model, row.pk)
    assert state is jobs.Claim.CLAIMED and claimed.status == model.STATES.running
    jobs.beat(model, row.pk, progress={"done": 1, "total": 2})
    shown = client_as(role).get(f"/api/{api}/{row.pk}/").json()
    assert shown["status"] == model.STATES.running
    assert shown["progress"]["total"] == 2  # every kind shows its progress (in its own shape)

    assert client_as(role).post(f"/api/{api}/{row.pk}/cancel/").status_code == 200
    with pytest.raises(jobs.JobCancelled):  # the worker's next progress write
        jobs.beat(model, row.pk, progress={"done": 2, "total": 2})
    assert not jobs.finish(model, row.pk)  # its end does not overwrite the cancel
    assert not jobs.fail(model, row.pk, "late error")
    row = model.objects.get(pk=row.pk)
    assert row.status == "cancelled" and row.progress == {"done": 1, "total": 2}
    assert row.error == f"cancelled by {role}"


def test_a_release_uses_its_own_words_for_the_states(import_root):
    release = _release(import_root)
    assert jobs.claim(Release, release.pk)[0] is jobs.Claim.CLAIMED
    assert Release.objects.get(pk=release.pk).status == "building"
    assert jobs.finish(Release, release.pk, counts={"images": 0})
    release = Release.objects.get(pk=release.pk)
    assert release.status == "ready" and release.is_over and release.finished_at
    assert jobs.claim(Release, release.pk)[0] is jobs.Claim.FINISHED


def test_a_job_whose_holder_lives_is_not_claimed_twice(import_root):
    job = _import(import_root)
    assert jobs.claim(SourceImport, job.pk)[0] is jobs.Claim.CLAIMED
    # This process holds it, and a holder that is this very process has returned or died: a
    # second claim takes it over. A holder elsewhere with a fresh heartbeat keeps it.
    SourceImport.objects.filter(pk=job.pk).update(worker="elsewhere:1")
    assert jobs.claim(SourceImport, job.pk)[0] is jobs.Claim.BUSY
    with pytest.raises(jobs.JobCancelled):  # and this process may no longer write for it
        jobs.beat(SourceImport, job.pk, progress={"done": 1, "total": 2})


def test_a_holder_thread_keeps_its_job_while_it_lives(import_root):
    """Tasks may run in threads of one process (a threads pool, the quick start's background
    jobs): each thread is its own holder, and a thread that ended has let its job go."""
    import threading

    from django.db import connection

    job = _import(import_root)
    claimed, release = threading.Event(), threading.Event()

    def holder() -> None:
        try:
            jobs.claim(SourceImport, job.pk)
            claimed.set()
            release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    assert claimed.wait(30)
    assert jobs.claim(SourceImport, job.pk)[0] is jobs.Claim.BUSY  # same process, live thread
    release.set()
    thread.join()
    assert jobs.claim(SourceImport, job.pk)[0] is jobs.Claim.CLAIMED  # its thread has ended
