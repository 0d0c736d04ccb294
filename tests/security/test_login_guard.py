"""Brute force (#11.4): every login path counts failures in one store shared by all processes,
per account and per client; X-Forwarded-For is believed only behind a configured proxy."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("victim", password="right-pass-123")


@pytest.fixture
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def token(client, password, ip="10.1.1.1", username="victim", **extra):
    return client.post(
        "/api/auth/token/",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=ip,
        **extra,
    )


def test_api_token_locks_the_account_even_with_the_right_password(user, limit):
    client = APIClient()
    for _ in range(limit - 1):
        assert token(client, "wrong").status_code == 400
    # The failure that reaches the limit is answered with the lockout itself.
    assert token(client, "wrong").status_code == 429
    locked = token(client, "right-pass-123")
    assert locked.status_code == 429
    assert locked.json()["code"] == "locked_out"


def test_changing_x_forwarded_for_does_not_reset_the_count(user, limit, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
    client = APIClient()
    for i in range(limit):
        token(client, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    # The same machine (REMOTE_ADDR) is locked out whatever header it sends, for any account.
    other = token(client, "right-pass-123", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert other.status_code == 429


def test_lockout_per_client_covers_other_accounts(user, limit, django_user_model):
    django_user_model.objects.create_user("other", password="other-pass-123")
    client = APIClient()
    for i in range(limit):
        token(client, "x", "10.9.9.9", username=f"guess{i}")
    from_there = token(client, "other-pass-123", "10.9.9.9", username="other")
    assert from_there.status_code == 429
    elsewhere = token(client, "other-pass-123", "10.8.8.8", username="other")
    assert elsewhere.status_code == 200


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_login_pages_are_guarded_too(user, limit, url):
    client = Client(REMOTE_ADDR="10.2.2.2")
    for _ in range(limit - 1):
        assert client.post(url, {"username": "victim", "password": "nope"}).status_code == 200
    assert client.post(url, {"username": "victim", "password": "nope"}).status_code == 429
    locked = client.post(url, {"username": "victim", "password": "right-pass-123"})
    assert locked.status_code == 429


def test_a_success_before_the_limit_resets_the_account(user, limit):
    client = APIClient()
    for _ in range(limit - 1):
        token(client, "wrong")
    assert token(client, "right-pass-123").status_code == 200
    for _ in range(limit - 1):
        token(client, "wrong")
    assert token(client, "right-pass-123").status_code == 200


def test_behind_a_proxy_the_forwarded_address_counts(settings):
    from django.test import RequestFactory

    from config.login_guard import client_ip

    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5, 10.0.0.2"
    )
    settings.PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.1"
    settings.PROXY_COUNT = 1
    assert client_ip(request) == "10.0.0.2"
    settings.PROXY_COUNT = 2
    assert client_ip(request) == "203.0.113.5"
