"""The scoring API and the registry: who may call them, bad images, unknown and missing
models, a real Lite model registered from a directory and scored end to end."""

from __future__ import annotations

import io
import os
import shutil

import pytest

from humanbeauty.standard import DIMENSION_KEYS, LEVELS, score_to_level
from modeling.models import ModelVersion
from modeling.services import registry
from tests.conftest import image_bytes
from tests.modeling_api.conftest import upload

pytestmark = pytest.mark.django_db


def test_who_may_call_the_model_api(client_as, active_model):
    calls = [
        ("get", "/api/models/", None),
        ("get", f"/api/models/{active_model.version}/", None),
        ("post", f"/api/models/{active_model.version}/activate/", None),
        ("get", "/api/scoring-jobs/", None),
        ("get", "/api/training-runs/", None),
    ]
    for method, path, body in calls:
        assert getattr(client_as(None), method)(path, body).status_code == 401, path
        for role in ("annotator", "curator"):
            assert getattr(client_as(role), method)(path, body).status_code == 403, (role, path)
        for role in ("researcher", "admin"):
            assert getattr(client_as(role), method)(path, body).status_code == 200, (role, path)

    assert client_as(None).post("/api/score/", {"image": upload()}).status_code == 401
    for role in ("annotator", "curator"):
        response = client_as(role).post("/api/score/", {"image": upload()})
        assert response.status_code == 403
        assert "researcher" in response.json()["detail"]
    for role in ("researcher", "admin"):
        assert client_as(role).post("/api/score/", {"image": upload()}).status_code == 200


def _truncated_jpeg() -> bytes:
    data = image_bytes(size=(200, 150), seed=1, fmt="JPEG")
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "limits", "status", "code", "words"),
    [
        (_truncated_jpeg(), {}, 400, "corrupt", "truncated"),
        (b"this is a text file, not a picture\n" * 10, {}, 400, "corrupt", "not an image"),
        (image_bytes(size=(80, 60)), {"MAX_IMAGE_PIXELS": 1000}, 400, "decompression_bomb",
         "exceeds the limit"),
        (image_bytes(size=(80, 60)), {"MAX_UPLOAD_BYTES": 100}, 413, "too_large", "limit"),
    ],
    ids=["corrupt", "not-an-image", "bomb", "too-large"],
)
def test_bad_images_are_refused_with_the_reason(
    client_as, settings, active_model, data, limits, status, code, words
):
    for name, value in limits.items():
        setattr(settings, name, value)
    registry.clear_cache()
    response = client_as("researcher").post("/api/score/", {"image": upload(data)})
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and words in body["detail"]
    assert registry.cache_info()["loads"] == 0, "a bad image must not reach the model"


def test_an_upload_without_an_image_is_a_400(client_as, active_model):
    response = client_as("researcher").post("/api/score/", {"model": active_model.version})
    body = response.json()
    assert response.status_code == 400 and "image" in body.get("errors", body)


def test_an_unknown_model_version_is_a_404_that_names_it(client_as, active_model):
    response = client_as("researcher").post("/api/score/", {"image": upload(), "model": "v404"})
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "model_not_found"
    assert "'v404'" in body["detail"] and active_model.version in body["detail"]
    assert client_as("researcher").get("/api/models/v404/").status_code == 404
    assert client_as("researcher").post("/api/models/v404/activate/").status_code == 404


def test_no_active_model_is_a_409_that_says_how_to_get_one(client_as, lite_model):
    response = client_as("researcher").post("/api/score/", {"image": upload()})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "no_active_model"
    assert "register_model" in body["detail"] and "activate" in body["detail"]

    registry.register_version("inactive", lite_model)  # registered, not active: still 409
    assert client_as("researcher").post("/api/score/", {"image": upload()}).status_code == 409
    named = client_as("researcher").post("/api/score/", {"image": upload(), "model": "inactive"})
    assert named.status_code == 200 and named.json()["model"] == "inactive"


def test_register_activate_and_score_a_real_model_end_to_end(client_as, lite_model, workspace):
    client = client_as("researcher")
    created = client.post(
        "/api/models/",
        {"version": "lite-2.0", "checkpoint_path": str(lite_model)},
        format="json",
    )
    assert created.status_code == 201, created.content
    model = created.json()
    assert model["is_active"] is False and model["backbone"].startswith("lite")
    assert model["checkpoint_path"] == str(lite_model.resolve())
    # the run's evaluation beside the model is summarised into the registry
    assert model["metrics"]["n_images"] == 4
    assert "srcc" in model["metrics"]["overall"]["metavoter"]

    activated = client.post("/api/models/lite-2.0/activate/")
    assert activated.status_code == 200 and activated.json()["is_active"] is True
    listed = client.get("/api/models/").json()["results"]
    assert [m["version"] for m in listed if m["is_active"]] == ["lite-2.0"]

    image = image_bytes(size=(96, 72), seed=11)
    first = client.post("/api/score/", {"image": upload(image)})
    assert first.status_code == 200, first.content
    result = first.json()
    assert result["model"] == "lite-2.0"
    assert list(result["scores"]) == list(DIMENSION_KEYS)
    for key, value in result["scores"].items():
        assert 0.0 <= value <= 1.0
        assert result["levels"][key] == score_to_level(value)
    assert 0.0 <= result["overall"] <= 1.0
    assert result["overall_level"] == score_to_level(result["overall"])
    assert set(result["levels"].values()) <= set(LEVELS)
    assert set(result["heads"]) == {"regression", "expert"}
    assert result["heads"]["expert"] == pytest.approx(result["scores"]["comprehensive_aesthetic"])

    # the same image again: the same answer, from the model loaded once
    assert client.post("/api/score/", {"image": upload(image)}).json() == result
    named = client.post("/api/score/", {"image": upload(image), "model": "lite-2.0"}).json()
    assert named == result
    info = registry.cache_info()
    assert info["loads"] == 1 and info["hits"] >= 2, info

    # the model directly, with no HTTP in between, agrees
    from modeling.hae import load_model
    from modeling.services.scoring import decode_image

    direct = load_model(lite_model).score([decode_image(io.BytesIO(image))])[0]
    assert direct.overall == pytest.approx(result["overall"], abs=1e-6)


def test_a_rewritten_checkpoint_is_reloaded(active_model, lite_model, workspace):
    image = [registry_image()]
    registry.score_images(None, image)
    registry.score_images(None, image)
    assert registry.cache_info()["loads"] == 1
    copy = workspace / "rewritten"
    shutil.copytree(lite_model, copy, dirs_exist_ok=True)
    version = registry.register_version("rewritten", copy)
    registry.score_images(version, image)
    assert registry.cache_info()["loads"] == 2
    stat = (copy / "heads.safetensors").stat()
    os.utime(copy / "heads.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    registry.score_images("rewritten", image)
    assert registry.cache_info()["loads"] == 3, "a newer checkpoint file must be loaded again"


def registry_image():
    from modeling.services.scoring import decode_image

    return decode_image(io.BytesIO(image_bytes(size=(64, 64), seed=5)))


def test_registering_a_missing_or_incompatible_directory_is_a_clear_error(
    client_as, workspace, incompatible_model, lite_model, tmp_path
):
    client = client_as("admin")
    missing = client.post(
        "/api/models/", {"version": "m1", "checkpoint_path": str(workspace / "nope")},
        format="json",
    )
    assert missing.status_code == 400
    assert missing.json()["code"] == "invalid_model"
    assert "is not a directory" in missing.json()["detail"]

    (workspace / "empty").mkdir(exist_ok=True)
    empty = client.post(
        "/api/models/", {"version": "m2", "checkpoint_path": str(workspace / "empty")},
        format="json",
    )
    assert empty.status_code == 400
    assert "hae_config.json" in empty.json()["detail"]
    assert "python -m modeling.train" in empty.json()["detail"]

    bad = client.post(
        "/api/models/", {"version": "m3", "checkpoint_path": str(incompatible_model)},
        format="json",
    )
    assert bad.status_code == 400
    assert "dimensions" in bad.json()["detail"]

    outside = client.post(
        "/api/models/", {"version": "m4", "checkpoint_path": str(tmp_path)}, format="json"
    )
    assert outside.status_code == 400 and outside.json()["code"] == "outside_model_roots"
    assert "MODEL_ROOTS" in outside.json()["detail"]
    assert not ModelVersion.objects.exists(), "nothing is registered by a refused request"

    assert client.post(
        "/api/models/", {"version": "ok", "checkpoint_path": str(lite_model)}, format="json"
    ).status_code == 201
    again = client.post(
        "/api/models/", {"version": "ok", "checkpoint_path": str(lite_model)}, format="json"
    )
    assert again.status_code == 409 and again.json()["code"] == "version_exists"
    bad_name = client.post(
        "/api/models/", {"version": "a/b", "checkpoint_path": str(lite_model)}, format="json"
    )
    assert bad_name.status_code == 400


def test_the_service_refuses_the_same_directories(incompatible_model, workspace):
    with pytest.raises(registry.InvalidModelDirectory, match="is not a directory"):
        registry.register_version("x1", workspace / "absent")
    with pytest.raises(registry.InvalidModelDirectory, match="dimensions"):
        registry.register_version("x2", incompatible_model)


def test_a_registered_model_whose_files_are_gone_is_a_503(client_as, lite_model, workspace):
    copy = workspace / "doomed"
    shutil.copytree(lite_model, copy)
    registry.register_version("doomed", copy, activate=True)
    shutil.rmtree(copy)
    response = client_as("researcher").post("/api/score/", {"image": upload()})
    assert response.status_code == 503
    assert "doomed" in response.json()["detail"] and "hae_config.json" in response.json()["detail"]
    # and it cannot be activated again until its directory is back
    registry.register_version("spare", lite_model, activate=True)
    refused = client_as("researcher").post("/api/models/doomed/activate/")
    assert refused.status_code == 400 and "gone" in refused.json()["detail"]


def test_activation_leaves_exactly_one_active(lite_model):
    for name in ("a", "b", "c"):
        registry.register_version(name, lite_model)
    registry.activate_version("a")
    registry.activate_version("b")
    registry.activate_version("b")  # again: no change, no error
    assert list(ModelVersion.objects.filter(is_active=True).values_list("version", flat=True)) == [
        "b"
    ]


def test_the_api_is_in_the_openapi_schema(client_as):
    schema = client_as("researcher").get("/api/schema/?format=json").json()
    paths = schema["paths"]
    for path in ("/api/models/", "/api/models/{version}/activate/", "/api/score/",
                 "/api/scoring-jobs/", "/api/scoring-jobs/{id}/", "/api/training-runs/",
                 "/api/training-runs/{id}/"):
        assert path in paths, path
    score = paths["/api/score/"]["post"]
    assert "multipart/form-data" in score["requestBody"]["content"]
    assert {"200", "400", "404", "409", "413"} <= set(score["responses"])
