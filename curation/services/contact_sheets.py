"""Contact sheets of a job's groups (accepted, each reason, errors), cached as PNG files.

The picture is drawn by the pure `curation.imaging.contact_sheet`; this module picks the
decisions, captions them and keeps the result in the media storage (the file system or the
bucket: settings.MEDIA_STORAGE) as contact_sheets/job_<id>/<group>-p<page>-<key>.png; thumbnails
are read from local copies of the stored images (`core.scratch`), so any worker or web process
draws a sheet without a shared disk. The cache key holds the job, the group, the page and the
decisions' latest change (how many there are and the newest decided_at / overridden_at), so a
sheet is drawn again only after a decision was added or overridden; the file it replaces is
removed.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from core import scratch
from humanbeauty.errors import DomainError

from ..imaging.contact_sheet import Layout, Tile, write_contact_sheet
from ..models import Decision, FilterJob
from ..selectors import group_decisions, last_change
from ..sources import PathOutsideRoots
from .sources import item_file

SHEET_LIMIT = 60  # thumbnails per sheet
LAYOUT_VERSION = 1  # bump when the drawing changes, so cached sheets are redrawn
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class ContactSheetError(DomainError, code="invalid_group"):
    """A contact sheet asked for an unknown group or a page out of range."""


@dataclass(frozen=True)
class ContactSheet:
    name: str  # in the media storage
    etag: str
    group: str
    page: int
    pages: int
    count: int

    @property
    def path(self) -> Path:
        """A local file with the sheet (the stored file itself on the file system, else a copy
        in the scratch cache)."""
        return scratch.local_copy(self.name)

    def open(self):
        """The stored PNG, opened for reading (streamed from the bucket where there is one)."""
        return default_storage.open(self.name, "rb")


def sheet_folder(job: FilterJob) -> str:
    """The storage folder of a job's sheets."""
    return f"contact_sheets/job_{job.pk}"


def sheet_dir(job: FilterJob) -> Path:
    """sheet_folder on the file-system storage (under MEDIA_ROOT)."""
    return Path(settings.MEDIA_ROOT) / sheet_folder(job)


def _file_of(decision: Decision) -> Path | None:
    """A local copy of the stored image where there is one, else the source's own file (inside
    the roots)."""
    image = decision.item.image
    if image is not None and image.file:
        try:
            return scratch.local_copy(image.file.name)
        except (OSError, ValueError):
            pass
    try:
        return item_file(decision.item)
    except PathOutsideRoots:
        return None


def _tile(decision: Decision, group: str) -> Tile:
    m = decision.measurements or {}
    final = decision.final
    if final == "accepted":
        bits = []
        if m.get("width") and m.get("height"):
            bits.append(f"{m['width']}\N{MULTIPLICATION SIGN}{m['height']}")
        if "faces" in m:
            bits.append(f"{m['faces']} face{'' if m['faces'] == 1 else 's'}")
        detail = " · ".join(bits)
    elif final == "error":
        detail = str(m.get("error", "error")).split(":")[0]
    else:
        detail = ", ".join(decision.reasons) or "rejected by a curator"
    tone = {"accepted": "ok", "rejected": "bad", "error": "warn"}[final]
    badge = f"override: {decision.override}" if decision.override else ""
    return Tile(_file_of(decision), decision.item.path, detail, tone=tone, badge=badge)


def contact_sheet(job: FilterJob, group: str, *, page: int = 1) -> ContactSheet:
    """The PNG for one page of a group, drawn now or taken from the cache."""
    if not GROUP_NAME.match(group or ""):
        raise ContactSheetError(
            f"unknown group {group!r}: use accepted, rejected, error or a reason name"
        )
    decisions = group_decisions(job, group)
    count = decisions.count()
    pages = max(1, -(-count // SHEET_LIMIT))
    if not 1 <= page <= pages:
        raise ContactSheetError(f"page {page} is out of range 1..{pages}")
    change = last_change(job)
    stamp = change["at"].isoformat() if change["at"] else "-"
    key = hashlib.sha256(
        f"{job.pk}|{group}|{page}|{SHEET_LIMIT}|{count}|{change['count']}|{stamp}|"
        f"{LAYOUT_VERSION}".encode()
    ).hexdigest()[:20]
    folder = sheet_folder(job)
    name = f"{folder}/{group}-p{page}-{key}.png"
    if not default_storage.exists(name):
        chosen = list(decisions[(page - 1) * SHEET_LIMIT : page * SHEET_LIMIT])
        what = group if group in ("accepted", "rejected", "error") else f"rejected: {group}"
        first = (page - 1) * SHEET_LIMIT + 1
        shown = (
            f" · showing {first}\N{EN DASH}{first + len(chosen) - 1} of {count}" if chosen else ""
        )
        with tempfile.TemporaryDirectory(prefix="sheet-") as tmp:
            drawn = write_contact_sheet(
                Path(tmp) / posixpath.basename(name),
                [_tile(d, group) for d in chosen],
                title=f"Job {job.pk} · {job.source.name} · {what}",
                subtitle=f"{count} image{'' if count == 1 else 's'}{shown}"
                + (f" · page {page} of {pages}" if pages > 1 else ""),
                layout=Layout(),
                max_pixels=settings.MAX_IMAGE_PIXELS,
            )
            with drawn.open("rb") as fh:
                saved = default_storage.save(name, File(fh))
        if saved != name:  # drawn at the same moment by another process: the same picture
            default_storage.delete(saved)
        _remove_stale(folder, f"{group}-p{page}-", keep=posixpath.basename(name))
    return ContactSheet(name, key, group, page, pages, count)


def _remove_stale(folder: str, prefix: str, *, keep: str) -> None:
    try:
        _, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for file in files:
        if file.startswith(prefix) and file.endswith(".png") and file != keep:
            default_storage.delete(f"{folder}/{file}")
