"""API tokens expire and can be revoked, one per device (#11.9)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("dev", password="dev-pass-123")


def login(device: str = "") -> str:
    body = {"username": "dev", "password": "dev-pass-123"}
    if device:
        body["device"] = device
    response = APIClient().post("/api/auth/token/", body, format="json")
    assert response.status_code == 200 and set(response.json()) == {"token"}
    return response.json()["token"]


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_each_login_is_its_own_token_stored_as_a_hash(user):
    laptop, phone = login("laptop"), login("phone")
    assert laptop != phone
    rows = ApiToken.objects.filter(user=user)
    assert rows.count() == 2
    assert not rows.filter(key_hash__in=[laptop, phone]).exists()  # keys are not stored
    listed = client_with(laptop).get("/api/auth/tokens/").json()
    assert [t["device"] for t in listed] == ["phone", "laptop"]
    assert [t["current"] for t in listed] == [False, True]
    assert listed[1]["prefix"] == laptop[:8]


def test_revoking_one_device_leaves_the_others(user):
    laptop, phone = login("laptop"), login("phone")
    phone_id = ApiToken.objects.get(device="phone").pk
    assert client_with(laptop).delete(f"/api/auth/tokens/{phone_id}/").status_code == 204
    refused = client_with(phone).get("/api/me/")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert client_with(laptop).get("/api/me/").status_code == 200


def test_logout_revokes_the_token_in_use(user):
    key = login()
    client = client_with(key)
    assert client.post("/api/auth/logout/").status_code == 204
    assert client.get("/api/me/").status_code == 401


def test_a_token_expires(user, settings):
    key = login()
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client_with(key).get("/api/me/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_lifetime_comes_from_the_setting(user, settings):
    settings.API_TOKEN_DAYS = 2
    login()
    token = ApiToken.objects.get()
    assert timedelta(days=2) - (token.expires_at - token.created_at) < timedelta(seconds=5)


def test_someone_elses_token_cannot_be_revoked(user, django_user_model):
    django_user_model.objects.create_user("other", password="other-pass-123")
    other = APIClient().post(
        "/api/auth/token/", {"username": "other", "password": "other-pass-123"}, format="json"
    ).json()["token"]
    mine = login()
    other_id = ApiToken.objects.get(user__username="other").pk
    assert client_with(mine).delete(f"/api/auth/tokens/{other_id}/").status_code == 404
    assert client_with(other).get("/api/me/").status_code == 200


def test_a_disabled_account_is_refused(user):
    key = login()
    user.is_active = False
    user.save()
    assert client_with(key).get("/api/me/").status_code == 401


def test_last_use_is_recorded_without_a_write_per_request(user):
    key = login()
    client = client_with(key)
    client.get("/api/me/")
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    client.get("/api/me/")
    assert ApiToken.objects.get().last_used_at == first  # not rewritten within 5 minutes
