"""Training runs on a release kept in the bucket (MEDIA_STORAGE=s3, a real moto S3 server): the
full model streams the release's WebDataset shards by `s3://` URL (the trainer reaches the
bucket with the media storage's own connection settings), Lite trains from a copy of the
release fetched to the worker; a stored release without what the backbone reads is refused
when the run is asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeling.models import ReleaseStatus, RunStatus
from modeling.services.releases import create_release
from modeling.services.training import TrainingError, create_training_run

from .test_release_in_bucket import _rated_project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def stored_release(s3_bucket, make_project, eager_celery, settings, tmp_path):
    settings.RELEASE_ROOT = (tmp_path / "releases").resolve()
    settings.TRAINING_RUNS_DIR = tmp_path / "runs"
    settings.TRAINING_POLL_SECONDS = 0.2
    settings.MODEL_DEVICE = "cpu"
    project, _, _ = _rated_project(make_project, 12)
    release = create_release("hb", "1", None, projects=[project.name],
                             formats=["official", "webdataset"], shard_size=2)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.READY, release.error
    assert release.out_dir == f"storage:releases/{release.pk}"
    assert s3_bucket.names(f"releases/{release.pk}/webdataset/")
    return release


def test_the_full_model_streams_a_stored_release_and_lite_trains_from_a_fetched_copy(
    stored_release, s3_bucket
):
    streamed = create_training_run(release=stored_release, backbone="tiny", max_steps=1)
    streamed.refresh_from_db()
    assert streamed.status == RunStatus.DONE, streamed.error or streamed.log_tail
    log = (Path(streamed.run_dir) / "train.log").read_text()
    assert f"--data s3://{s3_bucket.name}/releases/{stored_release.pk}/" in log
    assert s3_bucket.env["AWS_SECRET_ACCESS_KEY"] not in log  # reached through the environment
    assert not (Path(streamed.run_dir) / "release").exists(), "streamed, not copied"
    model = streamed.model_version
    assert model.checkpoint_path == f"storage:models/{model.version}"

    lite = create_training_run(release=stored_release, backbone="lite", clip_model="tiny",
                               max_steps=1)
    lite.refresh_from_db()
    assert lite.status == RunStatus.DONE, lite.error or lite.log_tail
    copy = Path(lite.run_dir) / "release"
    assert (copy / "manifest.json").read_bytes() == s3_bucket.get(
        f"releases/{stored_release.pk}/manifest.json"
    )


def test_a_stored_release_without_what_the_backbone_reads_is_refused(
    s3_bucket, make_project, eager_celery, settings, tmp_path
):
    settings.RELEASE_ROOT = (tmp_path / "releases").resolve()
    project, _, _ = _rated_project(make_project, 4)
    parquet_only = create_release("pq", "1", None, projects=[project.name], formats=["parquet"])
    parquet_only.refresh_from_db()
    assert parquet_only.status == ReleaseStatus.READY, parquet_only.error
    with pytest.raises(TrainingError, match="without WebDataset shards"):
        create_training_run(release=parquet_only, backbone="tiny", max_steps=1)
    with pytest.raises(TrainingError, match="no official layout"):
        create_training_run(release=parquet_only, backbone="lite", clip_model="tiny",
                            max_steps=1)
