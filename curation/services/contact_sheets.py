"""Contact sheets of a job's groups (accepted, each reason, errors), cached as PNG files.

The picture is drawn by the pure `curation.imaging.contact_sheet`; this module picks the
decisions, captions them and keeps the result under MEDIA_ROOT/contact_sheets/job_<id>/. The
cache key holds the job, the group, the page and the decisions' latest change (how many there
are and the newest decided_at / overridden_at), so a sheet is drawn again only after a decision
was added or overridden; the file it replaces is removed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

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
    path: Path
    etag: str
    group: str
    page: int
    pages: int
    count: int


def sheet_dir(job: FilterJob) -> Path:
    return Path(settings.MEDIA_ROOT) / "contact_sheets" / f"job_{job.pk}"


def _file_of(decision: Decision) -> Path | None:
    """The stored copy where there is one, else the source's own file (inside the roots)."""
    image = decision.item.image
    if image is not None and image.file:
        try:
            return Path(image.file.path)
        except (NotImplementedError, ValueError):
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
    folder = sheet_dir(job)
    target = folder / f"{group}-p{page}-{key}.png"
    if not target.exists():
        chosen = list(decisions[(page - 1) * SHEET_LIMIT : page * SHEET_LIMIT])
        what = group if group in ("accepted", "rejected", "error") else f"rejected: {group}"
        first = (page - 1) * SHEET_LIMIT + 1
        shown = (
            f" · showing {first}\N{EN DASH}{first + len(chosen) - 1} of {count}" if chosen else ""
        )
        write_contact_sheet(
            target,
            [_tile(d, group) for d in chosen],
            title=f"Job {job.pk} · {job.source.name} · {what}",
            subtitle=f"{count} image{'' if count == 1 else 's'}{shown}"
            + (f" · page {page} of {pages}" if pages > 1 else ""),
            layout=Layout(),
            max_pixels=settings.MAX_IMAGE_PIXELS,
        )
        for stale in folder.glob(f"{group}-p{page}-*.png"):
            if stale != target:
                stale.unlink(missing_ok=True)
    return ContactSheet(target, key, group, page, pages, count)
