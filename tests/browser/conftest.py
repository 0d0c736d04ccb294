"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, real photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser_support import PASSWORD, login

__all__ = ["PASSWORD", "login"]
GUIDELINES = """\
# How to rate

Rate what you see on the **12 dimensions**. Use **N** when a dimension cannot be judged
(a face hidden by a back view or a mask). Flag images that show no person.
"""


def write_photos(folder: Path, n: int) -> None:
    """`n` distinct real photos of people (scikit-image's astronaut and cameraman, varied)."""
    from PIL import Image, ImageEnhance, ImageOps
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    bases = [Image.fromarray(data.astronaut()), Image.fromarray(data.camera()).convert("RGB")]
    edits = [
        lambda im: im,
        ImageOps.mirror,
        lambda im: im.crop((im.width // 8, 0, im.width - im.width // 8, im.height)),
        lambda im: ImageEnhance.Brightness(im).enhance(0.7),
        lambda im: ImageEnhance.Contrast(im).enhance(1.3),
    ]
    for i in range(n):
        img = edits[(i // len(bases)) % len(edits)](bases[i % len(bases)])
        if i >= len(bases) * len(edits):
            img = img.rotate(i, expand=False)
        img.save(folder / f"photo_{i:03d}.jpg", quality=88)


@pytest.fixture
def photo_project(transactional_db, tmp_path):
    """photo_project(n_images, raters=(...)) -> (project, images, users by name)."""
    from django.contrib.auth import get_user_model

    from annotation import services
    from curation.services import import_directory

    def factory(n_images: int = 5, *, raters=("rita",), overlap: int = 2, role="annotator"):
        folder = tmp_path / "photos"
        shutil.rmtree(folder, ignore_errors=True)
        write_photos(folder, n_images)
        report = import_directory(folder)
        assert not report.bad, report.bad
        project, _ = services.get_or_create_project(
            "Portraits 2025", overlap=overlap, guidelines=GUIDELINES
        )
        services.add_images(project, report.images)
        users = {}
        for name in raters:
            services.add_member(project, name, role, password=PASSWORD)
            users[name] = get_user_model().objects.get(username=name)
        return project, report.images, users

    return factory
