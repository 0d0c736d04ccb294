"""A real S3 server for the storage tests: moto in server mode, in its own process on a free
port, spoken to over HTTP by boto3 (nothing in this process is mocked). Each test gets a fresh
private bucket and the settings (and, for worker processes, the environment) pointed at it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import redis

from config.settings import s3_storage

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of a moto S3 server process (stopped after the session)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert proc.poll() is None, "the moto server did not start"
            assert time.monotonic() < deadline, "the moto server did not answer in 60 s"
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@dataclass
class Bucket:
    name: str
    env: dict[str, str]  # MEDIA_STORAGE and AWS_* for a worker process
    client: object  # a boto3 S3 client on the same server

    def names(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture
def s3_bucket(s3_server, settings, tmp_path) -> Bucket:
    """A fresh private bucket, the media storage (settings.STORAGES["default"]) on it, and the
    scratch cache in this test's own folder."""
    name = f"hb-test-{uuid.uuid4().hex[:12]}"
    env = {
        "MEDIA_STORAGE": "s3",
        "AWS_S3_ENDPOINT_URL": s3_server,
        "AWS_STORAGE_BUCKET_NAME": name,
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_S3_REGION_NAME": "us-east-1",
    }
    client = boto3.client(
        "s3", endpoint_url=s3_server, aws_access_key_id="test-key",
        aws_secret_access_key="test-secret", region_name="us-east-1",
    )
    client.create_bucket(Bucket=name)
    settings.STORAGES = {**settings.STORAGES, "default": s3_storage(env)}
    settings.MEDIA_STORAGE = "s3"
    settings.SCRATCH_DIR = tmp_path / "scratch"
    yield Bucket(name, env, client)
    for key in Bucket(name, env, client).names():
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)


@pytest.fixture
def empty_queues(settings):
    """The broker, its task queues emptied before and after the test: the workers a test
    starts find only its own tasks."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for queue in settings.WORKER_QUEUES:
        broker.delete(queue)
    yield broker
    for queue in settings.WORKER_QUEUES:
        broker.delete(queue)


def no_local_media(media_root: Path) -> list[str]:
    """Files under a MEDIA_ROOT (none may be written there when the storage is S3)."""
    if not media_root.exists():
        return []
    return sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())


os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
