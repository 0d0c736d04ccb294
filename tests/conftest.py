"""Shared fixtures: real files, real users, a project with images (PostgreSQL in `make test`)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image as PILImage

from humanbeauty.standard import DIMENSIONS, level_to_score

if TYPE_CHECKING:
    from rest_framework.test import APIClient

# One Playwright and one Chromium for every folder's browser tests.
pytest_plugins = ["tests.browser_support"]


def write_image(path: Path, size=(64, 48), seed: int = 0, fmt: str = "JPEG") -> Path:
    """A small random-noise image: every seed gives different bytes (and a different sha256)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(arr).save(path, format=fmt)
    return path


def image_bytes(size=(64, 48), seed: int = 0, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def full_scores(level: int = 4, **overrides) -> dict[str, float | None]:
    scores = {d.key: level_to_score(level) for d in DIMENSIONS}
    scores.update(overrides)
    return scores


def new_request_id() -> str:
    return str(uuid.uuid4())


def client_for(user=None) -> APIClient:
    """A DRF test client authenticated as `user` (anonymous without one)."""
    from rest_framework.test import APIClient

    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def make_user(name: str, group: str | None = None, *, password: str | None = None):
    """A user in the platform group `group` (curator, researcher, admin; None: no group, as an
    annotator). Without a password the user cannot log in with one (tests then use
    force_authenticate / force_login)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(name, password=password)
    if group is not None:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


def users_by_role(roles: tuple[str, ...], *, password: str | None = None) -> dict:
    """One user per role name, named after it, in that role's platform group if it has one."""
    from humanbeauty.roles import Role

    groups = {Role.CURATOR, Role.RESEARCHER, Role.ADMIN}
    return {
        name: make_user(name, name if Role(name) in groups else None, password=password)
        for name in roles
    }


@pytest.fixture
def root_client(db) -> APIClient:
    """An API client as a superuser, "root"."""
    from django.contrib.auth import get_user_model

    return client_for(get_user_model().objects.create_superuser("root", password="p-1"))


@pytest.fixture
def client_as(users):
    """client_as(role): an API client as the `users` fixture's user of that role (None: anonymous).
    `users` is the folder's own fixture."""

    def make(role: str | None) -> APIClient:
        return client_for(None if role is None else users[role])

    return make


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counts and other cached marks do not leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def eager_celery():
    """No broker, as in the quick start: Celery runs tasks in-process, at once (for tests that
    are not about the workers; those start real ones, tests/celery_worker.py)."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def make_project(db, tmp_path):
    """make_project(n_images, overlap=3, raters=[...]) -> (project, images, users by name)."""
    from annotation import services
    from curation.services import import_directory

    counter = iter(range(10**6))

    def factory(n_images: int = 5, *, overlap: int = 3, raters=("r1", "r2", "r3"), name=None,
                lease_minutes: int = 30, role: str = "annotator"):
        from django.contrib.auth import get_user_model

        tag = next(counter)
        folder = tmp_path / f"imgs{tag}"
        for i in range(n_images):
            write_image(folder / f"img_{i:04d}.jpg", seed=tag * 100_000 + i)
        report = import_directory(folder)
        project, _ = services.get_or_create_project(name or f"project-{tag}", overlap=overlap)
        project.lease_minutes = lease_minutes
        project.save()
        services.add_images(project, report.images)
        users = {}
        for r in raters:
            services.add_member(project, r, role, password="pw-123456")
            users[r] = get_user_model().objects.get(username=r)
        return project, report.images, users

    return factory
