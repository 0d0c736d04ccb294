"""Every door into the pool asks the admission checks (curation.admission) before it stores a
byte: import_images (in its hashing processes), the upload API and register_image (which
filter jobs use). A refused file gets the reason `blocked`; every other file goes in."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from curation import admission
from curation.imaging.validate import InvalidImage
from curation.models import Image
from curation.services import import_directory, register_image
from tests.conftest import client_for, image_bytes, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class BlockSha:
    """A picklable check, as the hashing processes need."""

    shas: frozenset[str]

    def __call__(self, info) -> str | None:
        return "taken down on request 7" if info.sha256 in self.shas else None


@pytest.fixture
def block():
    blocked: set[str] = set()

    def loader():
        return BlockSha(frozenset(blocked)) if blocked else None

    admission.register(loader)
    yield blocked
    admission.unregister(loader)


def stored_files() -> list[str]:
    root = Path(default_storage.location) / "images"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_import_images_refuses_a_blocked_file_in_its_hashing_processes(tmp_path, block):
    folder = tmp_path / "photos"
    folder.mkdir()
    files = {f"p{i}.png": image_bytes(size=(80, 60), seed=i) for i in range(6)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    block.add(hashlib.sha256(files["p3.png"]).hexdigest())
    report = import_directory(folder, processes=2)
    assert [(path, reason) for path, reason, _ in report.bad] == [("p3.png", "blocked")]
    assert Image.objects.count() == 5
    assert not Image.objects.filter(sha256__in=block).exists()
    # nothing of the refused file reached the store; the five others did
    assert len(stored_files()) == 5
    assert not any(s in f for f in stored_files() for s in block)


def test_import_images_command_names_the_blocked_file(tmp_path, block):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"q{i}.png").write_bytes(image_bytes(size=(80, 60), seed=10 + i))
    block.add(hashlib.sha256((folder / "q1.png").read_bytes()).hexdigest())
    err = io.StringIO()
    call_command("import_images", str(folder), "--project", "p", stdout=io.StringIO(),
                 stderr=err, verbosity=0)
    assert "bad file q1.png: [blocked] taken down on request 7" in err.getvalue()
    assert Image.objects.count() == 2


def test_upload_api_refuses_a_blocked_file_with_its_reason(block):
    data = image_bytes(size=(80, 60), seed=42)
    block.add(hashlib.sha256(data).hexdigest())
    client = client_for(make_user("cur", "curator"))
    upload = io.BytesIO(data)
    upload.name = "me.png"
    r = client.post("/api/images/", {"file": upload}, format="multipart")
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "blocked"
    assert "request 7" in r.json()["detail"]
    assert not Image.objects.exists() and stored_files() == []
    # an unblocked file still goes in
    other = io.BytesIO(image_bytes(size=(80, 60), seed=43))
    other.name = "other.png"
    assert client.post("/api/images/", {"file": other}, format="multipart").status_code == 201


def test_register_image_refuses_before_storing(block):
    data = image_bytes(size=(80, 60), seed=5)
    block.add(hashlib.sha256(data).hexdigest())
    with pytest.raises(InvalidImage) as caught:
        register_image(io.BytesIO(data), original_path="x.png")
    assert caught.value.reason == admission.BLOCKED
    assert stored_files() == []
    block.clear()
    image, created = register_image(io.BytesIO(data), original_path="x.png")
    assert created and image.sha256 == hashlib.sha256(data).hexdigest()
