"""A filter job excludes images whose terms lack a permission it requires: on a real Celery
worker, recorded as a rejection reason like the other stages'."""

import io
import time

import pytest
from django.conf import settings

from config.celery import app as celery_app
from curation.models import Decision, FilterJob, JobStatus, Source
from curation.services.sources import import_source
from tests.celery_worker import start_worker, stop_worker, worker_env

from .conftest import NO_MODELS, photo_folder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_job_requiring_redistribution_rejects_what_its_terms_do_not_allow(
        import_root, client_as):
    assert settings.CELERY_BROKER_URL, "run the suite with a broker: `make test` sets one"
    manifest = photo_folder(import_root / "mix", ["a.jpg", "b.jpg", "c.jpg", "d.jpg"], seed=50)
    source = import_source("manifest", manifest, "mix", scale=(1, 10)).source
    curator = client_as("curator")
    # the source's terms (a curator's), and one photo uploaded before with terms of its own
    r = curator.patch(f"/api/sources/{source.pk}/",
                      {"licence": "research-only", "consent_basis": "public_dataset_terms"},
                      format="json")
    assert r.status_code == 200, r.content
    fh = io.BytesIO((import_root / "mix" / "c.jpg").read_bytes())
    fh.name = "c.jpg"
    r = curator.post("/api/images/", {"file": fh, "licence": "CC-BY-4.0",
                                      "consent_basis": "explicit_consent",
                                      "consent_reference": "form 9"}, format="multipart")
    assert r.status_code == 201, r.content

    # bad settings are a clear 400 and start nothing
    for bad in ({"terms": {"require": ["sharing"]}}, {"terms": {"require": "commercial"}},
                {"terms": {"allow": []}}):
        r = curator.post("/api/jobs/", {"source": source.pk, "config": {**NO_MODELS, **bad}},
                         format="json")
        assert r.status_code == 400, r.content
        assert "terms" in r.json()["detail"], r.content
    assert not FilterJob.objects.exists()

    celery_app.control.purge()
    worker = start_worker(worker_env())
    try:
        r = curator.post("/api/jobs/", {"source": source.pk, "config": {
            **NO_MODELS, "chunk_size": 2, "terms": {"require": ["redistribution"]}}},
            format="json")
        assert r.status_code == 201, r.content
        job_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while FilterJob.objects.get(pk=job_id).status != JobStatus.DONE:
            assert time.monotonic() < deadline, FilterJob.objects.get(pk=job_id).progress
            assert worker.poll() is None, worker.stdout.read().decode()
            time.sleep(0.1)
    finally:
        stop_worker(worker)

    decisions = {d.item.path: d for d in Decision.objects.filter(job_id=job_id)
                 .select_related("item")}
    assert {p: (d.decision, d.reasons) for p, d in decisions.items()} == {
        "a.jpg": ("rejected", ["terms_no_redistribution"]),
        "b.jpg": ("rejected", ["terms_no_redistribution"]),
        "c.jpg": ("accepted", []),  # its own CC-BY-4.0 over the source's research-only
        "d.jpg": ("rejected", ["terms_no_redistribution"]),
    }
    assert decisions["a.jpg"].measurements["licence"] == "research-only"
    assert decisions["c.jpg"].measurements["licence"] == "CC-BY-4.0"
    assert decisions["c.jpg"].measurements["consent_basis"] == "explicit_consent"
    report = curator.get(f"/api/jobs/{job_id}/").json()
    assert report["summary"]["reasons"] == {"terms_no_redistribution": 3}
    assert report["config"]["terms"] == {"require": ["redistribution"]}
    # the images the job stored carry the source's terms (they have none of their own)
    images = curator.get("/api/images/", {"source__name": "mix"}).json()["results"]
    terms = {i["original_path"]: i["terms"]["licence"] for i in images}
    assert terms == {"a.jpg": "research-only", "b.jpg": "research-only",
                     "d.jpg": "research-only"}
    assert Source.objects.get(pk=source.pk).licence == "research-only"
