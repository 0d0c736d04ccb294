"""Uploads are refused on their declared size and while they stream, not after the whole body
reached the disk (#11.7): over a real socket, a 1.5 GB Content-Length is answered at once."""

import socket
import time
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from curation.models import Image, Source
from tests.conftest import image_bytes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def curator_token(db):
    from annotation import services

    project, _ = services.get_or_create_project("uploads")
    services.add_member(project, "cur", "curator")
    from accounts.services import issue_token

    return issue_token(get_user_model().objects.get(username="cur"))[1]


def _send_headers(url: str, token: str, length: int, body: bytes = b"") -> tuple[bytes, float]:
    parts = urlsplit(url)
    start = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            f"POST /api/images/ HTTP/1.1\r\nHost: {parts.hostname}\r\n"
            f"Authorization: Token {token}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
        ).encode()
        sock.sendall(head + body)
        answer = b""
        # The server may keep the connection open (it never read the body): read what came.
        while not answer.rstrip().endswith(b"}") and time.monotonic() - start < 5:
            answer += sock.recv(4096)
    return answer, time.monotonic() - start


def test_a_huge_declared_length_is_refused_before_the_body(live_server, curator_token):
    answer, seconds = _send_headers(live_server.url, curator_token, 1_500_000_000, b"--xyz\r\n")
    status_line = answer.split(b"\r\n", 1)[0]
    assert b" 413 " in status_line, answer[:300]
    assert b'"code":"too_large"' in answer.replace(b" ", b"")
    assert seconds < 5  # answered without waiting for 1.5 GB
    assert Image.objects.count() == 0 and Source.objects.count() == 0


def test_a_body_past_the_limit_is_stopped_while_streaming(settings, curator_token):
    settings.MAX_UPLOAD_BYTES = 2_000  # the declared length passes the envelope's room
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {curator_token}")
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = image_bytes(size=(200, 200), seed=3)
    assert len(data) > 2_000
    response = client.post(
        "/api/images/",
        {"file": SimpleUploadedFile("big.png", data, content_type="image/png")},
        format="multipart",
    )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert "limit of 2,000 bytes" in response.json()["detail"]
    assert Image.objects.count() == 0 and Source.objects.count() == 0


def test_a_refused_upload_leaves_no_source(curator_token):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {curator_token}")
    for name, data in [("bad.jpg", b"not an image"), ("cut.png", image_bytes(seed=4)[:200])]:
        response = client.post(
            "/api/images/",
            {"file": SimpleUploadedFile(name, data), "source": "field-upload"},
            format="multipart",
        )
        assert response.status_code == 400
    assert Image.objects.count() == 0 and Source.objects.count() == 0
    good = client.post(
        "/api/images/",
        {"file": SimpleUploadedFile("ok.png", image_bytes(seed=5)), "source": "field-upload"},
        format="multipart",
    )
    assert good.status_code == 201
    assert Image.objects.get().source.name == "field-upload"
