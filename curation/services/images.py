"""Writes to the image pool."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from ..imaging.validate import InvalidImage, inspect_image
from ..models import Image, Source, image_upload_to

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


@dataclass
class ImportReport:
    created: list[Image] = field(default_factory=list)
    existing: list[Image] = field(default_factory=list)
    # (path, reason, message) for every file that was refused; the import goes on past them.
    bad: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def images(self) -> list[Image]:
        return self.created + self.existing


def get_or_create_source(name: str, kind: str = "folder") -> Source:
    source, _ = Source.objects.get_or_create(name=name, defaults={"kind": kind})
    return source


def register_image(
    fileobj: BinaryIO, *, source: Source | None = None, original_path: str = ""
) -> tuple[Image, bool]:
    """Validate a file fully and store it once by content; returns (image, created).

    Raises InvalidImage (with a reason and a message saying what was wrong) and stores nothing
    when the file is not a sound image.
    """
    info = inspect_image(fileobj, max_pixels=settings.MAX_IMAGE_PIXELS)
    existing = Image.objects.filter(sha256=info.sha256).first()
    if existing is not None:
        return existing, False
    image = Image(
        sha256=info.sha256,
        width=info.width,
        height=info.height,
        format=info.format,
        source=source,
        original_path=original_path[:1000],
    )
    name = image_upload_to(image, "")
    if default_storage.exists(name):
        # Content-addressed: a file already at this name holds these very bytes (left by an
        # earlier import whose transaction lost a race or failed), so reuse it.
        image.file.name = name
    else:
        fileobj.seek(0)
        image.file.save(name, File(fileobj), save=False)
    try:
        with transaction.atomic():
            image.save()
    except IntegrityError:
        # Another importer stored the same bytes at the same moment: theirs wins, and the file
        # we wrote has the same content-addressed name, so nothing is left behind.
        return Image.objects.get(sha256=info.sha256), False
    return image, True


def check_upload_size(size: int) -> None:
    if size > settings.MAX_UPLOAD_BYTES:
        raise InvalidImage(
            "too_large",
            f"the file is {size:,} bytes; the limit is {settings.MAX_UPLOAD_BYTES:,} bytes",
        )


def iter_image_files(directory: Path) -> Iterator[Path]:
    """Every file under `directory` (recursively, sorted), image suffix or not.

    Files with other suffixes are still offered so that a mislabelled file is reported as
    bad rather than silently ignored; hidden files and directories are skipped.
    """
    for path in sorted(directory.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(directory).parts)
        if path.is_file() and not hidden:
            yield path


def import_directory(
    directory: Path,
    *,
    source: Source | None = None,
    progress: bool = False,
) -> ImportReport:
    """Register every image under `directory`; bad files are reported by name, never fatal."""
    from tqdm import tqdm

    report = ImportReport()
    paths = list(iter_image_files(directory))
    for path in tqdm(paths, desc="import", unit="img", disable=not progress):
        rel = str(path.relative_to(directory))
        try:
            with path.open("rb") as fh:
                check_upload_size(path.stat().st_size)
                image, created = register_image(fh, source=source, original_path=rel)
        except InvalidImage as exc:
            report.bad.append((rel, exc.reason, str(exc)))
            continue
        except OSError as exc:
            report.bad.append((rel, "unreadable", str(exc)))
            continue
        (report.created if created else report.existing).append(image)
    return report
