"""docker-compose.yml names only what exists: queues the routes use, settings the app reads,
health endpoints it serves; no media folder shared between containers. (Docker itself does not
run here; the deploy check of the file's environment is tests/test_cli.py's.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SETTINGS_SOURCE = (ROOT / "config" / "settings.py").read_text()


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _queues(service: dict) -> set[str]:
    found = re.search(r"-Q\s+(\S+)", _command(service))
    return set(found.group(1).split(",")) if found else set()


WORKERS = {name: s for name, s in SERVICES.items() if " worker " in f" {_command(s)} "}


def test_the_stack_has_every_part():
    assert {"postgres", "redis", "minio", "minio-init", "web", "proxy", "worker-cpu",
            "worker-io", "worker-gpu", "beat", "flower"} <= set(SERVICES)
    assert set(WORKERS) == {"worker-cpu", "worker-io", "worker-gpu"}
    assert "gunicorn config.wsgi:application" in _command(SERVICES["web"])
    assert SERVICES["worker-gpu"]["profiles"] == ["gpu"]
    assert SERVICES["worker-gpu"]["build"]["args"]["EXTRAS"] == "[modeling]"
    assert "ARG EXTRAS" in (ROOT / "Dockerfile").read_text()
    assert "celery -A config beat" in _command(SERVICES["beat"])


def test_workers_take_the_queues_the_routes_use_and_together_all_of_them():
    for name, worker in WORKERS.items():
        queues = _queues(worker)
        assert queues and queues <= set(settings.WORKER_QUEUES), name
        # Its node name is its queue's (so Flower, the admin and its healthcheck can tell).
        node = re.search(r"-n\s+(\w+)@%h", _command(worker)).group(1)
        assert node in queues and f"-d {node}@$$HOSTNAME" in " ".join(
            worker["healthcheck"]["test"]
        )
    assert set().union(*(_queues(w) for w in WORKERS.values())) == set(settings.WORKER_QUEUES)
    routes = settings.CELERY_TASK_ROUTES
    assert {route["queue"] for route in routes.values()} <= set(settings.WORKER_QUEUES)


@pytest.mark.parametrize("name", ["web", "worker-cpu", "worker-io", "worker-gpu", "beat"])
def test_app_containers_read_files_from_the_bucket_and_share_no_media_folder(name):
    service = SERVICES[name]
    env = service["environment"]
    assert env["MEDIA_STORAGE"] == "s3" and env["AWS_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "MEDIA_ROOT" not in env
    mounts = [str(v) for v in service.get("volumes", [])]
    assert not any("media" in m for m in mounts), mounts
    # Every variable the app is given is one config/settings.py reads.
    for key in env:
        assert re.search(rf"[\"']{key}[\"']", SETTINGS_SOURCE), f"{key} is read nowhere"
    assert service["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_healthchecks_use_the_health_endpoints():
    web = " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert "/readyz" in web
    assert resolve("/readyz").url_name == "readyz" and resolve("/healthz").url_name == "healthz"
    assert "/healthz" in (ROOT / "Dockerfile").read_text()
    assert SERVICES["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert all("healthcheck" in SERVICES[s] for s in ("postgres", "redis", "minio"))
    # The probes speak plain HTTP to the app itself: neither redirected to HTTPS nor refused as
    # an unknown host.
    assert {r"^healthz$", r"^readyz$"} <= set(settings.SECURE_REDIRECT_EXEMPT)
    assert "127.0.0.1" in SERVICES["web"]["environment"]["ALLOWED_HOSTS"]


def test_secrets_come_from_the_environment_and_monitoring_stays_private():
    flower = SERVICES["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].endswith(
        "${FLOWER_PASSWORD:?set FLOWER_PASSWORD}"
    )
    assert all(str(p).startswith("127.0.0.1:") for p in flower["ports"])
    assert "ports" not in SERVICES["minio"]  # the bucket is not published
    env = SERVICES["web"]["environment"]
    for key in ("SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key].startswith("${") and ":?" in env[key], key
    init = SERVICES["minio-init"]["entrypoint"]
    assert "mc anonymous set none" in init  # a private bucket


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MEDIA_STORAGE": "ftp"}, "MEDIA_STORAGE"),
        ({"MEDIA_STORAGE": "s3"}, "AWS_STORAGE_BUCKET_NAME"),
    ],
)
def test_nonsense_storage_settings_stop_the_app_with_their_name(tmp_path, env, named):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "SECRET_KEY": "x", "VAR_DIR": str(tmp_path),
             "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", **env},
    )
    assert done.returncode != 0 and "ImproperlyConfigured" in done.stderr
    assert named in done.stderr.splitlines()[-1]
