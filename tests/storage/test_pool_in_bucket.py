"""Every pool file goes through the storage: with MEDIA_STORAGE=s3 (a real S3 server, moto, over
HTTP) uploads, folder imports, re-hashing and contact sheets write to and read from the bucket,
nothing lands under MEDIA_ROOT, and images reach only the users who may see them, streamed
through the app (no bucket URL ever leaves it)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from PIL import Image as PILImage

from curation.models import Decision, FilterJob, Image, JobStatus, Source, SourceItem
from curation.services import ensure_hashed
from curation.services.contact_sheets import contact_sheet
from curation.services.images import PoolError, register_image
from tests.conftest import client_for, image_bytes, make_user, write_image

from .conftest import no_local_media

pytestmark = pytest.mark.django_db


def _photo(seed: int, colour=None) -> bytes:
    if colour is not None:
        buf = io.BytesIO()
        PILImage.new("RGB", (320, 240), colour).save(buf, format="PNG")
        return buf.getvalue()
    return image_bytes(size=(96, 72), seed=seed)


def test_an_upload_is_stored_in_the_bucket_and_streamed_to_allowed_users_only(s3_bucket):
    curator = make_user("cur", "curator")
    data = _photo(1)
    upload = io.BytesIO(data)
    upload.name = "one.png"
    response = client_for(curator).post("/api/images/", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    image = Image.objects.get(pk=response.json()["id"])
    assert s3_bucket.names("images/") == [image.file.name]
    assert s3_bucket.get(image.file.name) == data
    assert no_local_media(settings.MEDIA_ROOT) == []

    served = client_for(curator).get(f"/media/images/{image.pk}/")
    assert served.status_code == 200
    body = b"".join(served.streaming_content)
    assert body == data
    headers = " ".join(f"{k}: {v}" for k, v in served.headers.items())
    # Streamed by the app: no redirect, no signed or public URL of the bucket in the answer.
    assert s3_bucket.name not in headers and "X-Amz" not in headers and "127.0.0.1:" not in headers

    stranger = make_user("nobody")  # no role, no project: may not see it
    assert client_for(stranger).get(f"/media/images/{image.pk}/").status_code == 404
    assert client_for(None).get(f"/media/images/{image.pk}/").status_code == 401


def test_a_folder_import_stores_every_file_in_the_bucket(s3_bucket, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(20):  # enough for the hashing processes (forked, each with its own client)
        write_image(folder / f"p{i:02d}.jpg", size=(80, 60), seed=i)
    (folder / "broken.jpg").write_bytes(b"not an image")
    call_command("import_images", str(folder), "--project", "P", "--verbosity", "0")
    stored = Image.objects.order_by("id")
    assert stored.count() == 20
    assert s3_bucket.names("images/") == sorted(i.file.name for i in stored)
    assert all(i.phash is not None and i.clustered_at is not None for i in stored)
    assert no_local_media(settings.MEDIA_ROOT) == []


def test_rehashing_reads_the_stored_files_through_the_storage(s3_bucket):
    images = [register_image(io.BytesIO(_photo(i)))[0] for i in range(3)]
    expected = {i.pk: (i.phash, i.dhash) for i in images}
    Image.objects.filter(pk__in=expected).update(phash=None, dhash=None, clustered_at=None)
    assert ensure_hashed(list(expected)) == 3
    again = {i.pk: (i.phash, i.dhash) for i in Image.objects.filter(pk__in=expected)}
    assert again == expected
    assert no_local_media(settings.MEDIA_ROOT) == []

    gone, changed = images[0], images[1]
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=gone.file.name)
    s3_bucket.put(changed.file.name, _photo(99))  # other bytes under its name
    Image.objects.filter(pk__in=[gone.pk, changed.pk]).update(phash=None, clustered_at=None)
    scratch = settings.SCRATCH_DIR
    for copy in scratch.rglob("*"):  # the cache must not hide what the bucket now holds
        if copy.is_file():
            copy.unlink()
    with pytest.raises(PoolError) as refused:
        ensure_hashed([gone.pk, changed.pk])
    message = str(refused.value)
    assert f"image {gone.pk}:" in message and "unreadable" in message
    assert f"image {changed.pk}:" in message and "no longer matches" in message


def test_contact_sheets_are_drawn_from_the_bucket_and_kept_there(s3_bucket):
    red = register_image(io.BytesIO(_photo(0, colour=(220, 20, 20))))[0]
    source = Source.objects.create(name="s", kind="manifest", location="/nowhere")
    job = FilterJob.objects.create(source=source, status=JobStatus.DONE)
    item = SourceItem.objects.create(source=source, path="red.png", image=red)
    Decision.objects.create(job=job, item=item, decision="accepted", reasons=[])

    sheet = contact_sheet(job, "accepted")
    assert s3_bucket.names("contact_sheets/") == [sheet.name]
    assert no_local_media(settings.MEDIA_ROOT) == []
    with sheet.open() as fh:
        drawn = PILImage.open(io.BytesIO(fh.read())).convert("RGB")
    # The thumbnail came from the stored image (through the scratch cache): a red tile.
    px = np.asarray(drawn)
    reds = int(((px[..., 0] > 180) & (px[..., 1] < 60) & (px[..., 2] < 60)).sum())
    assert reds > 2000
    assert contact_sheet(job, "accepted").name == sheet.name  # cached in the bucket

    served = client_for(make_user("cur", "curator")).get(
        f"/api/jobs/{job.pk}/contact-sheet/?group=accepted"
    )
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == s3_bucket.get(sheet.name)
