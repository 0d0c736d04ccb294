"""Writes to the image pool: the one way in (`register_image`), used by every door.

Every image is stored once by sha256 and, in the same call, hashed (pHash, dHash) and
clustered against the pool (`dedup.assign_cluster`), whichever door it came through:
`import_images`, the upload API, the demo, a filter job over a source. `ensure_hashed` (and the
`hash_pool` command, and the data migration that runs it) does the same for rows stored
before, or left half-done by a crash between storing and clustering.

One decode per file: `hashing.inspect_and_hash` validates and hashes from the same (for
JPEG, draft) decode. `import_directory` does that on all cores and keeps the database work in
the calling process.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import multiprocessing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q

from core import scratch
from humanbeauty.errors import DomainError

from .. import admission
from ..imaging.hashing import (
    ImageHashes,
    hash_files,
    inspect_and_hash,
    usable_cpus,
)
from ..imaging.validate import InvalidImage, read_bytes
from ..models import Image, Source, image_upload_to
from . import dedup

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


def get_or_create_source(name: str, *, kind: str = "folder") -> Source:
    source, _ = Source.objects.get_or_create(name=name, defaults={"kind": kind})
    return source


def register_image(
    fileobj: BinaryIO,
    *,
    source: Source | None = None,
    original_path: str = "",
    checked: ImageHashes | None = None,
    screen: admission.Screen | None = None,
) -> tuple[Image, bool]:
    """Validate a file fully, store it once by content, hash it and cluster it against the
    pool; returns (image, created). On return the image is hashed and clustered, whether it
    was new or already stored.

    checked: what `hashing.inspect_and_hash` returned for these very bytes (a caller that
    validated them in another process); otherwise they are validated here. Raises
    InvalidImage (with a reason and a message saying what was wrong) and stores nothing when
    the file is not a sound image, or the reason `blocked` when an admission check refuses it
    (`screen`: the checks to ask; default: `admission.screen()` as it stands now).
    """
    if checked is None:
        info = inspect_and_hash(fileobj, max_pixels=settings.MAX_IMAGE_PIXELS)
    else:
        # The file may have changed since it was checked: store only the bytes that were.
        if hashlib.sha256(read_bytes(fileobj)).hexdigest() != checked.sha256:
            raise InvalidImage("changed", "the file changed while it was being imported")
        info = checked
    (screen or admission.screen()).refuse(info)
    existing = Image.objects.filter(sha256=info.sha256).first()
    if existing is not None:
        _complete(existing, info)
        return existing, False
    image = Image(
        sha256=info.sha256,
        width=info.width,
        height=info.height,
        format=info.format,
        source=source,
        original_path=original_path[:1000],
        **dedup.hash_fields(info.phash, info.dhash),
    )
    _store_file(image, fileobj)
    try:
        with transaction.atomic():
            image.save()
    except IntegrityError:
        # Another importer stored the same bytes at the same moment: theirs wins, and the file
        # we wrote has the same content-addressed name, so nothing is left behind.
        existing = Image.objects.get(sha256=info.sha256)
        _complete(existing, info)
        return existing, False
    # The row (with its hashes) is committed before clustering, so of two near-duplicates
    # stored at the same moment the one clustered second sees the first.
    dedup.assign_cluster(image)
    return image, True


def _store_file(image: Image, fileobj: BinaryIO) -> None:
    name = image_upload_to(image, "")
    if default_storage.exists(name):
        # Content-addressed: a file already at this name holds these very bytes (left by an
        # earlier import whose transaction lost a race or failed), so reuse it.
        image.file.name = name
    else:
        fileobj.seek(0)
        image.file.save(name, File(fileobj), save=False)


def _complete(image: Image, info: ImageHashes) -> None:
    """Finish an image stored before (by an older version, or by a process that died between
    storing and clustering): same bytes, same hashes."""
    if image.phash is None:
        dedup.store_hashes(image, info.phash, info.dhash)
    if image.clustered_at is None:
        dedup.assign_cluster(image)


class PoolError(DomainError, code="pool_error"):
    """Pool images that could not be hashed or clustered."""


def ensure_hashed(image_ids: Iterable[int], *, progress: bool = False) -> int:
    """Make sure every listed pool image is hashed and clustered against the pool; returns how
    many it had to complete (hash and/or cluster). Computes only what is missing.

    Safe to call concurrently (with itself and with imports): hashes are a function of the
    stored bytes and clustering is idempotent and serialised by `dedup`'s lock, so two callers
    on one image at worst both do the same work. An image whose file cannot be read or no
    longer matches its sha256 is reported in a PoolError after every other image is done.
    """
    from tqdm import tqdm

    ids = sorted({int(i) for i in image_ids})
    todo = list(
        Image.objects.filter(pk__in=ids)
        .filter(Q(phash__isnull=True) | Q(clustered_at__isnull=True))
        .order_by("id")
        .only("id", "file", "sha256", "phash")
    )
    need_hash = [image for image in todo if image.phash is None]
    computed = _hash_stored(need_hash, progress=progress)
    failures: list[str] = []
    done = 0
    for image in tqdm(todo, desc="cluster", unit="img", disable=not progress):
        if image.phash is None:
            outcome = computed.get(image.pk)
            if not isinstance(outcome, ImageHashes):
                failures.append(f"image {image.pk}: {outcome}")
                continue
            dedup.store_hashes(image, outcome.phash, outcome.dhash)
        dedup.assign_cluster(image)
        done += 1
    if failures:
        raise PoolError(
            f"{len(failures)} image(s) could not be hashed (the others were): "
            + "; ".join(failures[:20])
        )
    return done


def _hash_stored(images: list[Image], *, progress: bool) -> dict[int, ImageHashes | str]:
    """Hashes of stored files, or why a file could not be hashed; a file whose bytes changed is
    refused. Files are read through the storage: in place on the file system, else from local
    copies (`core.scratch`); then hashed on all cores where this process may fork."""
    out: dict[int, ImageHashes | str] = {}
    if not images:
        return out
    local: dict[int, str] = {}
    for image in images:
        try:
            local[image.pk] = str(scratch.local_copy(image.file.name))
        except OSError as exc:
            out[image.pk] = f"[unreadable] {exc}"
    readable = [image for image in images if image.pk in local]
    paths = [local[image.pk] for image in readable]
    outcomes = hash_files(paths, processes=_processes_for(len(paths)), progress=progress,
                          max_pixels=settings.MAX_IMAGE_PIXELS, validate=True)
    for image, outcome in zip(readable, outcomes, strict=True):
        result = outcome.hashes or f"[{outcome.reason}] {outcome.message}"
        if isinstance(result, ImageHashes) and result.sha256 != image.sha256:
            result = f"the stored file no longer matches its sha256 {image.sha256[:12]}…"
        out[image.pk] = result
    return out


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


def _processes_for(n_files: int) -> int:
    """Hashing processes for a batch: one for a few files (a pool costs more than it saves)
    or inside a daemonic process (a Celery prefork child may not fork), else every CPU."""
    if n_files < 16 or multiprocessing.current_process().daemon:
        return 1
    return usable_cpus()


BATCH = 64  # files stored and clustered per transaction by import_directory


@dataclass(frozen=True)
class Checked:
    """One file of `import_directory` after `check_and_store`: its hashes (the file is then in
    the content-addressed store), or why it was refused."""

    path: str
    hashes: ImageHashes | None
    reason: str = ""
    message: str = ""


def check_and_store(path: str, *, screen: admission.Screen | None = None) -> Checked:
    """Validate and hash one file (`inspect_and_hash`, one decode), ask the admission checks
    and copy its bytes into the content-addressed store; runs in the hashing processes, so the
    copy is parallel too. The stored name depends on the bytes alone, so a file stored here for
    a row that is never inserted is reused by the next import of the same bytes. A refused file
    is never stored. `screen`: the checks, read by the parent before it forks (default: read
    here, as `register_image` does; never no checks at all)."""
    try:
        data = Path(path).read_bytes()
        hashes = inspect_and_hash(io.BytesIO(data), max_pixels=settings.MAX_IMAGE_PIXELS)
        (screen or admission.screen()).refuse(hashes)
    except InvalidImage as exc:
        return Checked(path, None, exc.reason, exc.message)
    except OSError as exc:
        return Checked(path, None, "unreadable", str(exc))
    name = image_upload_to(Image(sha256=hashes.sha256, format=hashes.format), "")
    if not default_storage.exists(name):
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:  # another process stored the same bytes at the same moment
            default_storage.delete(saved)
    return Checked(path, hashes)


def _iter_checked(paths: list[Path], processes: int) -> Iterator[Checked]:
    jobs = [str(p) for p in paths]
    # The checks are read here, once, with this process's database connection: the hashing
    # processes get them as data and never touch the database.
    check = functools.partial(check_and_store, screen=admission.screen())
    # Forked workers inherit this process's Django setup (settings, storage); where fork is
    # not available the files are checked here.
    if processes <= 1 or len(jobs) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(check, jobs)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(min(processes, len(jobs)), initializer=_own_storage) as pool:
        yield from pool.imap(check, jobs, chunksize=8)


def _own_storage() -> None:
    """In a forked hashing process: open the storage afresh (a remote storage's client and its
    connections, made in the parent, are not to be shared across a fork)."""
    from django.core.files.storage import storages
    from django.utils.functional import empty

    storages._storages = {}
    default_storage._wrapped = empty


def import_directory(
    directory: Path,
    *,
    source: Source | None = None,
    progress: bool = False,
    processes: int | None = None,
) -> ImportReport:
    """Register every image under `directory`; bad files are reported by name, never fatal.

    Files are validated, hashed and copied into the store on all cores (`check_and_store`;
    `processes`, default: the usable CPUs; 1 inside a daemonic worker process, which may not
    fork) while this process inserts and clusters the ones done, `BATCH` at a time
    (`register_stored`): the outcome of `register_image` file by file, in a few statements
    per batch.
    """
    from tqdm import tqdm

    report = ImportReport()
    readable = []
    for path in iter_image_files(directory):
        try:
            check_upload_size(path.stat().st_size)
            readable.append(path)
        except InvalidImage as exc:
            report.bad.append((str(path.relative_to(directory)), exc.reason, str(exc)))
        except OSError as exc:
            report.bad.append((str(path.relative_to(directory)), "unreadable", str(exc)))
    if processes is None:
        processes = _processes_for(len(readable))
    batch: list[tuple[str, ImageHashes]] = []
    bar = tqdm(total=len(readable), desc="import", unit="img", disable=not progress)
    try:
        for path, done in zip(readable, _iter_checked(readable, processes), strict=True):
            rel = str(path.relative_to(directory))
            if done.hashes is None:
                report.bad.append((rel, done.reason or "unreadable", done.message))
            else:
                batch.append((rel, done.hashes))
            if len(batch) >= BATCH:
                register_stored(batch, source=source, report=report)
                bar.update(len(batch))
                batch = []
        register_stored(batch, source=source, report=report)
        bar.update(len(batch))
    finally:
        bar.close()
    report.bad.sort()
    return report


def register_stored(
    files: list[tuple[str, ImageHashes]],
    *,
    source: Source | None,
    report: ImportReport,
) -> None:
    """Insert and cluster files already checked and stored by `check_and_store` ((original
    path, hashes) each): one insert and one clustering pass; outcomes go to `report`.

    If another importer inserts some of the same bytes meanwhile, the batch insert conflicts
    and the rows are inserted one by one, the other importer's row winning where it exists.
    """
    if not files:
        return
    known = {i.sha256: i for i in Image.objects.filter(sha256__in=[h.sha256 for _, h in files])}
    new: dict[str, Image] = {}
    order: list[tuple[str, bool]] = []  # (sha256, first time in this batch) in file order
    for rel, h in files:
        first = h.sha256 not in known and h.sha256 not in new
        order.append((h.sha256, first))
        if first:
            new[h.sha256] = Image(
                sha256=h.sha256, width=h.width, height=h.height, format=h.format,
                source=source, original_path=rel[:1000],
                file=image_upload_to(Image(sha256=h.sha256, format=h.format), ""),
                **dedup.hash_fields(h.phash, h.dhash),
            )
    try:
        with transaction.atomic():
            Image.objects.bulk_create(list(new.values()))
    except IntegrityError:
        for sha, image in list(new.items()):
            try:
                with transaction.atomic():
                    image.save()
            except IntegrityError:
                known[sha] = Image.objects.get(sha256=sha)
                del new[sha]
    hashes = {h.sha256: h for _, h in files}
    unfinished = [i for i in known.values() if i.phash is None or i.clustered_at is None]
    for image in unfinished:
        if image.phash is None:
            dedup.store_hashes(image, hashes[image.sha256].phash, hashes[image.sha256].dhash)
    dedup.assign_clusters([*new.values(), *unfinished])
    for sha, first in order:
        if first and sha in new:
            report.created.append(new[sha])
        else:
            report.existing.append(new.get(sha) or known[sha])


def backfill_pool(*, progress: bool = False, batch: int = 5000) -> int:
    """Hash and cluster every pool image that is not yet (rows stored before every door did it,
    or left half-done); returns how many were completed. Run by `manage.py hash_pool` and by
    the data migration `0005_backfill_pool`."""
    from ..selectors import unverified_image_ids

    total = 0
    last = 0
    while True:
        ids = list(
            Image.objects.filter(pk__gt=last).order_by("id").values_list("id", flat=True)[:batch]
        )
        if not ids:
            return total
        last = ids[-1]
        missing = unverified_image_ids(ids)
        if missing:
            total += ensure_hashed(missing, progress=progress)
