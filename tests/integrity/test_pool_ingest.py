"""One way into the pool: every door (import_images, the upload API, the demo) hashes and
clusters what it stores, so near-duplicates end in one cluster whichever door they used."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image as PILImage

from curation.imaging.hashing import hash_image
from curation.imaging.near_dup import DEFAULT_K, cluster_near_duplicates
from curation.models import Image

pytestmark = pytest.mark.django_db(transaction=True)


def astronaut() -> PILImage.Image:
    from skimage import data

    return PILImage.fromarray(data.astronaut())


def jpeg(img: PILImage.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def near_duplicates_of_astronaut() -> dict[str, bytes]:
    """A photo and its resize, crops and recompression: all within DEFAULT_K of each other
    (checked by `test_the_variants_are_near_duplicates`). tie_a / tie_b have the same size."""
    base = astronaut()
    w, h = base.size
    big = base.resize((1024, 1024), PILImage.LANCZOS)
    return {
        "full.jpg": jpeg(big, 92),
        "resized.jpg": jpeg(base.resize((640, 640), PILImage.BILINEAR), 80),
        "crop.jpg": jpeg(base.crop((w // 50, h // 50, w - w // 50, h - h // 50)).resize((700, 700)),
                         85),
        "crop_corner.jpg": jpeg(base.crop((0, 0, w - w // 25, h - h // 25)).resize((700, 700)),
                                85),
        "recompressed.jpg": jpeg(big, 40),
        "tie_a.jpg": jpeg(base.resize((600, 600)), 90),
        "tie_b.jpg": jpeg(base.resize((600, 600)), 70),
    }


def other_photos() -> dict[str, bytes]:
    from skimage import data

    return {
        "camera.jpg": jpeg(PILImage.fromarray(data.camera()).convert("RGB"), 90),
        "coffee.jpg": jpeg(PILImage.fromarray(data.coffee()), 90),
    }


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def pool_partition() -> set[frozenset[str]]:
    """The pool's clusters as sets of sha256 (singletons included)."""
    groups: dict[object, set[str]] = {}
    for pk, sha, cluster in Image.objects.values_list("id", "sha256", "cluster_id"):
        groups.setdefault(("c", cluster) if cluster else ("i", pk), set()).add(sha)
    return {frozenset(g) for g in groups.values()}


def expected_partition() -> set[frozenset[str]]:
    """Connected components of "pHash within DEFAULT_K", computed afresh from the stored files."""
    rows = list(Image.objects.order_by("id"))
    hashes = []
    for image in rows:
        with image.file.open("rb") as fh:
            hashes.append(hash_image(fh).phash)
    labels = cluster_near_duplicates(hashes, k=DEFAULT_K).labels
    groups: dict[int, set[str]] = {}
    for image, label in zip(rows, labels.tolist(), strict=True):
        groups.setdefault(label, set()).add(image.sha256)
    return {frozenset(g) for g in groups.values()}


def assert_pool_clustered() -> None:
    from curation.selectors import unverified_image_ids

    assert pool_partition() == expected_partition()
    assert unverified_image_ids(Image.objects.values_list("id", flat=True)) == []


def shas(files: dict[str, bytes]) -> frozenset[str]:
    import hashlib

    return frozenset(hashlib.sha256(d).hexdigest() for d in files.values())


def test_the_variants_are_near_duplicates():
    hashes = [hash_image(io.BytesIO(d)).phash for d in near_duplicates_of_astronaut().values()]
    assert max((a ^ b).bit_count() for a in hashes for b in hashes) <= DEFAULT_K
    other = [hash_image(io.BytesIO(d)).phash for d in other_photos().values()]
    assert min((a ^ b).bit_count() for a in hashes for b in other) > DEFAULT_K


def test_import_images_clusters_near_duplicates(tmp_path):
    dups = near_duplicates_of_astronaut()
    folder = write_files(tmp_path / "photos", {**dups, **other_photos()})
    out = io.StringIO()
    call_command("import_images", str(folder), "--project", "p", stdout=out,
                 stderr=io.StringIO(), verbosity=0)
    assert f"{len(dups)} in near-duplicate clusters" in out.getvalue()
    assert Image.objects.count() == len(dups) + 2
    assert shas(dups) in pool_partition()
    assert_pool_clustered()


def test_upload_api_clusters_near_duplicates_with_imported_ones(tmp_path):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.test import APIClient

    dups = near_duplicates_of_astronaut()
    names = list(dups)
    folder = write_files(tmp_path / "photos", {n: dups[n] for n in names[:2]})
    call_command("import_images", str(folder), "--project", "p", stdout=io.StringIO(),
                 stderr=io.StringIO(), verbosity=0)
    user = get_user_model().objects.create_user("cur", password="pw-123456")
    user.groups.add(Group.objects.get_or_create(name="curator")[0])
    client = APIClient()
    client.force_authenticate(user)
    for name in names[2:]:
        upload = io.BytesIO(dups[name])
        upload.name = name
        r = client.post("/api/images/", {"file": upload}, format="multipart")
        assert r.status_code == 201, r.content
    assert shas(dups) in pool_partition()
    assert_pool_clustered()


def test_demo_clusters_its_near_duplicate_photos(settings):
    call_command("demo", stdout=io.StringIO())
    partition = pool_partition()
    # the demo's astronaut variants (brightness, sharpness, colour) are near-duplicates
    assert max(len(g) for g in partition) >= 3
    assert_pool_clustered()


def test_small_batches_give_the_same_clusters_and_counts(tmp_path, monkeypatch):
    """Images alone in one batch are joined by near-duplicates of a later batch."""
    from curation.services import images

    monkeypatch.setattr(images, "BATCH", 2)
    dups = near_duplicates_of_astronaut()
    folder = write_files(tmp_path / "photos", {**other_photos(), **dups})
    out = io.StringIO()
    call_command("import_images", str(folder), "--project", "p", stdout=out,
                 stderr=io.StringIO(), verbosity=0)
    assert f"{len(dups)} in near-duplicate clusters" in out.getvalue()
    assert shas(dups) in pool_partition()
    assert_pool_clustered()
