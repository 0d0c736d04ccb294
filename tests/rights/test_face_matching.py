"""Takedown matching by face (TAKEDOWN_FACE_MODEL), with a tiny random ONNX model that has the
OpenCV Zoo SFace interface (1x3x112x112 face crop in, 128-d embedding out), written here byte
by byte as ONNX protobuf (no exporter, nothing downloaded). A random model recognises no one,
but it maps the same face pixels to the same embedding and different faces apart, which is
what proves the wiring: detector -> crop -> model -> index -> cosine -> match. A deployment
configures the real SFace file (face_recognition_sface_2021dec.onnx) and its threshold 0.363.

The person's photo is skimage's astronaut; the pool holds her face cut out, scaled and pasted
onto another photo at another place (its pHash is nowhere near: only the face can find it), a
different person's face pasted the same way, and an image with no face."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from PIL import Image as PILImage

from curation.imaging.hashing import from_signed64, hamming, inspect_and_hash
from curation.models import Image
from curation.services import import_directory
from rights import selectors
from rights.faces import EMBEDDING_DIM
from rights.models import AuditEvent, FaceEmbedding, Match, SuppliedPhoto, TakedownRequest
from tests.conftest import client_for, image_bytes, make_user
from tests.curation_jobs.conftest import astronaut

from .conftest import jpeg, photo

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"person": "A. Person", "contact": "a@example.org", "reason": "Please remove me."}
TEST_THRESHOLD = 0.9  # the random model's: the same face gives ~0.99, other faces < 0.65


# --- a random model with SFace's interface, as ONNX bytes ------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _msg(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _str(field: int, text: str) -> bytes:
    return _msg(field, text.encode())


def _attr_ints(name: str, values: list[int]) -> bytes:  # AttributeProto, type INTS (7)
    return _str(1, name) + b"".join(_int(8, v) for v in values) + _int(20, 7)


def _attr_int(name: str, value: int) -> bytes:  # AttributeProto, type INT (2)
    return _str(1, name) + _int(3, value) + _int(20, 2)


def _node(op: str, inputs: list[str], outputs: list[str], attrs: tuple[bytes, ...] = ()) -> bytes:
    return b"".join([*(_str(1, i) for i in inputs), *(_str(2, o) for o in outputs),
                     _str(3, op.lower()), _str(4, op), *(_msg(5, a) for a in attrs)])


def _value_info(name: str, dims: list[int]) -> bytes:  # a float tensor of this shape
    shape = b"".join(_msg(1, _int(1, d)) for d in dims)
    return _str(1, name) + _msg(2, _msg(1, _int(1, 1) + _msg(2, shape)))


def _tensor(name: str, arr: np.ndarray) -> bytes:  # TensorProto, FLOAT (1), raw little-endian
    arr = np.ascontiguousarray(arr, dtype="<f4")
    return b"".join([*(_int(1, d) for d in arr.shape), _int(2, 1), _str(8, name),
                     _msg(9, arr.tobytes())])


def sface_like_onnx(seed: int = 0, dim: int = EMBEDDING_DIM) -> bytes:
    """input `data` 1x3x112x112 -> 14x14 average pooling -> flatten (192) -> a random
    projection to `dim` (centred, so the embedding follows the crop's pattern, not its
    brightness) -> output `fc1` 1 x dim. Opset 13."""
    rng = np.random.default_rng(seed)
    n = 3 * 8 * 8
    weights = (np.eye(n) - 1.0 / n) @ rng.standard_normal((n, dim))
    graph = b"".join([
        _msg(1, _node("AveragePool", ["data"], ["pooled"],
                      (_attr_ints("kernel_shape", [14, 14]), _attr_ints("strides", [14, 14])))),
        _msg(1, _node("Flatten", ["pooled"], ["flat"], (_attr_int("axis", 1),))),
        _msg(1, _node("MatMul", ["flat", "w"], ["fc1"])),
        _str(2, "sface_like"),
        _msg(5, _tensor("w", weights)),
        _msg(11, _value_info("data", [1, 3, 112, 112])),
        _msg(12, _value_info("fc1", [1, dim])),
    ])
    return _int(1, 7) + _str(2, "hb-test") + _msg(7, graph) + _msg(8, _str(1, "") + _int(2, 13))


# --- images ----------------------------------------------------------------------------------

def _background() -> PILImage.Image:
    from skimage import data

    return PILImage.fromarray(data.coffee()).resize((800, 600), PILImage.Resampling.LANCZOS)


def pasted_face() -> bytes:
    """The astronaut's face and hair cut from her photo, scaled by 1.5 and pasted onto a cup
    of coffee, lower right."""
    face = astronaut(640).crop((185, 45, 385, 245)).resize((300, 300),
                                                            PILImage.Resampling.BICUBIC)
    img = _background()
    img.paste(face, (420, 150))
    return jpeg(img, quality=88)


def other_face() -> bytes:
    """Another person (an LFW face from scikit-image), pasted the same way."""
    from skimage import data

    crop = (data.lfw_subset()[1] * 255).astype(np.uint8)
    face = PILImage.fromarray(crop).convert("RGB").resize((250, 250), PILImage.Resampling.BICUBIC)
    img = _background()
    img.paste(face, (100, 100))
    return jpeg(img, quality=88)


def upload(client, rid: int, data: bytes, name: str):
    f = io.BytesIO(data)
    f.name = name
    return client.post(f"/api/takedowns/{rid}/photos/", {"photos": [f]}, format="multipart")


def filed(client, **extra) -> int:
    r = client.post("/api/takedowns/", {**BODY, **extra}, format="json")
    assert r.status_code == 201, r.content
    return r.json()["id"]


def snapshot() -> tuple:
    return (
        list(TakedownRequest.objects.order_by("id").values_list("id", "status")),
        list(Match.objects.order_by("id").values_list("id", "decision")),
        list(SuppliedPhoto.objects.order_by("id").values_list("id", "face_model")),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def admin(db):
    return client_for(make_user("boss", "admin"))


@pytest.fixture
def pool(tmp_path):
    folder = tmp_path / "pool"
    folder.mkdir()
    (folder / "pasted.jpg").write_bytes(pasted_face())
    (folder / "other_face.jpg").write_bytes(other_face())
    (folder / "noise.jpg").write_bytes(image_bytes(size=(160, 120), seed=7, fmt="JPEG"))
    import_directory(folder)
    return {i.original_path: i for i in Image.objects.all()}


@pytest.fixture
def face_model(tmp_path, settings):
    path = tmp_path / "sface_like.onnx"
    path.write_bytes(sface_like_onnx())
    settings.TAKEDOWN_FACE_MODEL = str(path)
    settings.TAKEDOWN_FACE_THRESHOLD = TEST_THRESHOLD
    return path


# --- tests -----------------------------------------------------------------------------------

def test_a_photo_finds_the_pool_image_with_the_same_face_where_phash_cannot(
        admin, pool, face_model, settings):
    pasted, other, noise = pool["pasted.jpg"], pool["other_face.jpg"], pool["noise.jpg"]
    # The pasted image is no near-duplicate of the photo: only the face can find it.
    info = inspect_and_hash(io.BytesIO(photo()))
    assert hamming(info.phash, from_signed64(pasted.phash)) > selectors.pool_threshold()

    answer = admin.get("/api/takedowns/face-matching/").json()
    assert answer["available"] is True and answer["model"] == "sface_like.onnx"
    assert answer["threshold"] == TEST_THRESHOLD and answer["indexed"] == 0
    assert answer["pool"] == 3

    rid = filed(admin)
    assert upload(admin, rid, photo(), "me.jpg").status_code == 201
    kept = SuppliedPhoto.objects.get(request_id=rid)
    assert kept.faces == 1 and len(bytes(kept.face_vectors)) == 4 * EMBEDDING_DIM

    # By hashes alone, nothing.
    r = admin.post(f"/api/takedowns/{rid}/match/", {}, format="json")
    assert r.status_code == 200 and r.json() == []

    r = admin.post(f"/api/takedowns/{rid}/match/", {"faces": True}, format="json")
    assert r.status_code == 200, r.content
    found = r.json()
    assert [m["image_id"] for m in found] == [pasted.pk]
    assert found[0]["how"] == "same_face"
    assert "same face as photo me.jpg" in found[0]["evidence"]
    match = Match.objects.get(pk=found[0]["id"])
    assert match.similarity >= TEST_THRESHOLD
    # The whole pool was indexed on the way, each image once: its faces and the model's sha.
    rows = {e.image_id: e for e in FaceEmbedding.objects.all()}
    assert set(rows) == {pasted.pk, other.pk, noise.pk}
    assert rows[pasted.pk].faces == 1 and rows[other.pk].faces == 1 and rows[noise.pk].faces == 0
    assert {e.model_sha256 for e in rows.values()} == {answer["sha256"]}
    event = AuditEvent.objects.filter(request_id=rid, action="matched").latest("id")
    assert event.details["faces"]["threshold"] == TEST_THRESHOLD
    assert event.details["faces"]["faces_searched"] == 1
    assert event.details["matches"][0]["similarity"] == pytest.approx(match.similarity)
    assert admin.get("/api/takedowns/face-matching/").json()["indexed"] == 3

    # The same admin confirmation as every other match.
    r = admin.post(f"/api/takedowns/{rid}/decide/", {"decisions": [
        {"match": match.pk, "decision": "confirmed", "note": "her face"}]}, format="json")
    assert r.status_code == 200 and r.json()[0]["decision"] == "confirmed"

    # The threshold is the setting's: lowered under the other face's similarity, it matches
    # too (a random model tells no one apart; SFace's own threshold is 0.363).
    settings.TAKEDOWN_FACE_THRESHOLD = 0.3
    rid2 = filed(admin)
    assert upload(admin, rid2, photo(), "me.jpg").status_code == 201
    found2 = admin.post(f"/api/takedowns/{rid2}/match/", {"faces": True}, format="json").json()
    assert sorted(m["image_id"] for m in found2) == sorted([pasted.pk, other.pk])
    assert FaceEmbedding.objects.count() == 3  # nothing indexed twice


def test_a_named_image_finds_its_face_elsewhere_in_the_pool(admin, pool, face_model, tmp_path):
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "portrait.jpg").write_bytes(photo())
    import_directory(folder)
    portrait = Image.objects.get(original_path="portrait.jpg")
    rid = filed(admin, image_ids=[portrait.pk])
    found = admin.post(f"/api/takedowns/{rid}/match/", {"faces": True}, format="json").json()
    assert {(m["image_id"], m["how"]) for m in found} == {
        (portrait.pk, "named_id"), (pool["pasted.jpg"].pk, "same_face")}
    face = next(m for m in found if m["how"] == "same_face")
    assert f"same face as image {portrait.pk}" in face["evidence"]


def test_without_the_setting_face_matching_is_not_available(admin, pool, settings):
    settings.TAKEDOWN_FACE_MODEL = ""
    answer = admin.get("/api/takedowns/face-matching/").json()
    assert answer["available"] is False and "no face recognition model" in answer["why"]
    assert "TAKEDOWN_FACE_MODEL" in answer["why"]
    rid = filed(admin)
    assert upload(admin, rid, photo(), "me.jpg").status_code == 201
    assert SuppliedPhoto.objects.get(request_id=rid).face_model == ""
    before = snapshot()
    r = admin.post(f"/api/takedowns/{rid}/match/", {"faces": True}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "face_matching_unavailable"
    assert snapshot() == before
    assert not FaceEmbedding.objects.exists()


@pytest.mark.parametrize("broken,says", [
    ("missing", "does not exist"),
    ("corrupt", "is not a usable ONNX model"),
    ("wrong_shape", f"not the {EMBEDDING_DIM}-d embedding"),
])
def test_a_model_that_cannot_be_used_is_a_clear_configuration_error(
        admin, pool, settings, tmp_path, broken, says):
    path = tmp_path / "model.onnx"
    if broken == "corrupt":
        path.write_bytes(b"this is not an onnx file" * 10)
    elif broken == "wrong_shape":
        path.write_bytes(sface_like_onnx(dim=64))
    settings.TAKEDOWN_FACE_MODEL = str(path)
    answer = admin.get("/api/takedowns/face-matching/").json()
    assert answer["available"] is False and answer["configuration_error"] is True
    assert says in answer["why"] and str(path) in answer["why"]
    page = Client()
    page.force_login(get_user_model().objects.get(username="boss"))
    r = page.get("/takedowns/")  # the page still opens, and says why
    assert r.status_code == 200 and "face matching is misconfigured" in r.content.decode()
    rid = filed(admin, image_ids=[pool["pasted.jpg"].pk])
    before = snapshot()
    r = admin.post(f"/api/takedowns/{rid}/match/", {"faces": True}, format="json")
    assert r.status_code == 503, r.content
    assert r.json()["code"] == "face_model_unusable" and says in r.json()["detail"]
    # A photo cannot be added either: its faces could not be kept, and its bytes are not.
    r = upload(admin, rid, photo(), "me.jpg")
    assert r.status_code == 503 and r.json()["code"] == "face_model_unusable"
    assert snapshot() == before and not SuppliedPhoto.objects.exists()
    assert not FaceEmbedding.objects.exists()
    # Matching without faces still works.
    r = admin.post(f"/api/takedowns/{rid}/match/", {}, format="json")
    assert r.status_code == 200 and [m["how"] for m in r.json()] == ["named_id"]


@pytest.mark.parametrize("name,value", [
    ("TAKEDOWN_FACE_THRESHOLD", 2), ("TAKEDOWN_FACE_THRESHOLD", "high"),
    ("TAKEDOWN_FACE_INDEX_LIMIT", 0), ("TAKEDOWN_FACE_INDEX_LIMIT", "many"),
])
def test_a_bad_face_setting_is_a_configuration_error(admin, pool, face_model, settings, name,
                                                     value):
    setattr(settings, name, value)
    answer = admin.get("/api/takedowns/face-matching/").json()
    assert answer["available"] is False and name in answer["why"]
    rid = filed(admin, image_ids=[pool["pasted.jpg"].pk])
    r = admin.post(f"/api/takedowns/{rid}/match/", {"faces": True}, format="json")
    assert r.status_code == 503 and name in r.json()["detail"]


def test_face_settings_may_come_as_text_from_the_environment(admin, pool, face_model, settings):
    settings.TAKEDOWN_FACE_THRESHOLD, settings.TAKEDOWN_FACE_INDEX_LIMIT = "0.9", "5"
    answer = admin.get("/api/takedowns/face-matching/").json()
    assert (answer["threshold"], answer["index_limit"]) == (0.9, 5)


def test_matching_indexes_a_bounded_number_and_the_command_indexes_the_rest(
        admin, pool, face_model, settings, capsys):
    settings.TAKEDOWN_FACE_INDEX_LIMIT = 2
    rid = filed(admin)
    assert upload(admin, rid, photo(), "me.jpg").status_code == 201
    before = snapshot()
    r = admin.post(f"/api/takedowns/{rid}/match/", {"faces": True}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "face_index_incomplete"
    assert "1 pool image(s) are not indexed" in r.json()["detail"]
    assert "index_faces" in r.json()["detail"]
    assert FaceEmbedding.objects.count() == 2  # the work done is kept
    assert snapshot() == before

    with pytest.raises(CommandError, match="--batch must be at least 1"):
        call_command("index_faces", batch=0)
    call_command("index_faces", batch=1)
    out = capsys.readouterr().out
    assert "1 image(s) indexed, 1 face(s) found" in out and "0 left" in out
    assert FaceEmbedding.objects.count() == 3
    call_command("index_faces")
    assert "0 image(s) indexed" in capsys.readouterr().out

    r = admin.post(f"/api/takedowns/{rid}/match/", {"faces": True}, format="json")
    assert r.status_code == 200 and [m["how"] for m in r.json()] == ["same_face"]

    settings.TAKEDOWN_FACE_MODEL = ""
    with pytest.raises(CommandError, match="TAKEDOWN_FACE_MODEL"):
        call_command("index_faces")


def test_a_photo_added_before_the_model_must_be_added_again(admin, pool, settings, tmp_path):
    settings.TAKEDOWN_FACE_MODEL = ""
    rid = filed(admin)
    assert upload(admin, rid, photo(), "me.jpg").status_code == 201
    path = tmp_path / "m.onnx"
    path.write_bytes(sface_like_onnx())
    settings.TAKEDOWN_FACE_MODEL = str(path)
    settings.TAKEDOWN_FACE_THRESHOLD = TEST_THRESHOLD
    before = snapshot()
    r = admin.post(f"/api/takedowns/{rid}/match/", {"faces": True}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "photo_faces_missing"
    assert "me.jpg" in r.json()["detail"] and "add them again" in r.json()["detail"]
    assert snapshot() == before
    assert upload(admin, rid, photo(), "me.jpg").status_code == 201  # the same bytes again
    assert SuppliedPhoto.objects.get(request_id=rid).faces == 1
    found = admin.post(f"/api/takedowns/{rid}/match/", {"faces": True}, format="json").json()
    assert [m["image_id"] for m in found] == [pool["pasted.jpg"].pk]


def test_the_face_index_goes_with_the_image(pool, face_model):
    from rights.services.faces import index_faces

    outcome = index_faces(batch=2)
    assert (outcome.images, outcome.faces, outcome.left) == (3, 2, 0)
    pool["pasted.jpg"].delete()
    assert set(FaceEmbedding.objects.values_list("image_id", flat=True)) == {
        pool["other_face.jpg"].pk, pool["noise.jpg"].pk}
