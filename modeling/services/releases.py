"""Writes for dataset releases: validate a configuration, build it (a Celery task), record it.

The split assignment and the file writers are Django-free (`modeling.release`); this module
selects the rows from the database, keeps each image's split (so later versions keep the
version promise), and the release's status, counts and warnings.

A build verifies, never assumes: it brings each project's consensus up to date with the
refresh task's code, leaves out images with open flags or reviewer exclusions (listed),
hashes and clusters against the pool whatever the selection holds that was not yet, refuses
images still unverified, and the core counts what the written assignment shows.

Where a release is kept follows the media storage. With the file system, in its folder under
RELEASE_ROOT, as built. With a remote storage (an S3 bucket: workers share no disk), the
worker builds it in a temporary folder of its own, then copies every file to the storage under
``releases/<id>/`` (the folder's layout) once the build succeeded; the release's ``out_dir``
is then ``storage:releases/<id>``, and a failed or cancelled build leaves nothing there.
Readers (the download, withdrawal notices, later versions) go through `release_files`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import transaction

from annotation.models import Project
from annotation.services.quality import ensure_fresh
from core import jobs
from core.scratch import local_copy
from core.storage import SCHEME, has_local_paths
from curation.models import Source
from curation.selectors import unverified_image_ids
from curation.services.images import ensure_hashed
from curation.sources.terms import licence_mix_error

from .. import selectors
from ..models import Release, ReleaseItem, ReleaseStatus
from ..release import (
    FORMATS,
    ReleaseConfig,
    ReleaseRow,
    SplitPlan,
    build_release,
    check_official_test,
    diff_splits,
    plan_splits,
)
from ..release.errors import ReleaseConfigError, ReleaseDataError, ReleaseError
from ..release.intervals import agreement_intervals, resamples
from ..release.store import ReleaseFiles, StorageFiles, located

PLATFORM_VERSION = "0.1.0"
RELEASE_PREFIX = "releases"  # of the media storage: releases/<id>/ holds one release


class EarlierVersionPending(ReleaseError, code="release_pending"):
    """An earlier version of the same name is not built yet: its splits, which this version
    must keep, are not known. The task tries again later."""


def parse_split(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """'train=0.8,val=0.1,test=0.1' (or a mapping) -> {split: ratio}, checked."""
    if text is None:
        return {"train": 0.8, "val": 0.1, "test": 0.1}
    if isinstance(text, Mapping):
        pairs = dict(text)
    else:
        pairs = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ReleaseError(f"--split part {part!r} is not NAME=RATIO")
            try:
                pairs[key.strip()] = float(value)
            except ValueError:
                raise ReleaseError(f"--split ratio {value!r} is not a number") from None
    return pairs  # the ratios themselves are checked by ReleaseConfig, with the rest


def release_config(name: str, version: str, config: Mapping[str, Any]) -> ReleaseConfig:
    """The build's configuration, checked by the one validator (ReleaseConfigError, a 400):
    at the edge when a release is requested, and again by the worker that builds it."""
    return ReleaseConfig(
        name=name,
        version=version,
        seed=config["seed"],
        split=dict(config["split"]),
        formats=tuple(config["formats"]),
        images=config["images"],
        max_side=config["max_side"],
        # Releases recorded before these options existed get the defaults they were built with.
        license=config.get("license", "unknown"),
        shard_size=config.get("shard_size", 10_000),
        na=config.get("na", "fill"),
        licence=config.get("licence", ""),
    )


# --- where a release is kept ------------------------------------------------------------------


def _folder_name(release: Release) -> str:
    """A stored release's folder name in its download: name-version, one path part."""
    return f"{release.name}-{release.version}".replace("/", "_").replace("\\", "_")


def release_files(release: Release) -> ReleaseFiles:
    """A release's files, where they are kept: its folder, or its prefix of the storage."""
    return located(release.out_dir, _folder_name(release), default_storage)


def _stored(release: Release) -> StorageFiles | None:
    files = release_files(release)
    return files if isinstance(files, StorageFiles) else None


# --- requests ----------------------------------------------------------------------------------


def _by_name(model, names: Sequence[str], what: str) -> list:
    found = {o.name: o for o in model.objects.filter(name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise ReleaseError(f"unknown {what}(s): {', '.join(missing)}")
    return [found[n] for n in names]


def create_release(
    name: str,
    version: str,
    out_dir: str | Path | None,
    *,
    projects: Sequence[str] = (),
    sources: Sequence[str] = (),
    seed: int = 0,
    split: str | Mapping[str, float] | None = None,
    formats: Sequence[str] = FORMATS,
    images: str = "copy",
    max_side: int | None = None,
    min_raters: int = 1,
    max_disagreement: float | None = None,
    license: str = "unknown",
    shard_size: int = 10_000,
    na: str = "fill",
    contact: str = "",
    licence: str = "",
    user: AbstractBaseUser | None = None,
) -> Release:
    """Check a release configuration and queue its build; releases are immutable. With a
    declared `licence`, a selection whose images' terms it does not allow is refused here, by
    the check the build makes again over what it writes (`terms.licence_mix_error`).

    The release is written into `out_dir` (a new folder) with the file-system storage; with a
    remote one it is kept in the storage under `releases/<id>/` whatever `out_dir` says."""
    replaced = _replaceable_version(name, version)
    if not projects and not sources:
        raise ReleaseError("select at least one rating project (--projects) or source (--sources)")
    config = {
        "projects": list(projects), "sources": list(sources), "seed": seed,
        "split": parse_split(split), "formats": list(formats), "images": images,
        "max_side": max_side, "min_raters": int(min_raters),
        "max_disagreement": max_disagreement, "license": license, "shard_size": shard_size,
        "na": na, "contact": contact.strip(),  # for takedown requests, in the datasheet
        "licence": licence,
    }
    checked = _checked_config(name, version, config)
    out = _new_folder(out_dir)
    project_objs = _by_name(Project, projects, "project")
    source_objs = _by_name(Source, sources, "source")
    _check_selection(project_objs, source_objs, config, checked,
                     min_raters=min_raters, max_disagreement=max_disagreement)
    return _queue(name, version, config, out, replaced=replaced, user=user)


def _replaceable_version(name: str, version: str) -> Release | None:
    """The earlier request of this name and version that the new one replaces, if any: a
    failed or cancelled build released nothing, so that version may be built afresh."""
    if not name.strip() or not version.strip():
        raise ReleaseError("a release needs a name and a version")
    existing = Release.objects.filter(name=name, version=version).first()
    if existing is not None and existing.status not in (
        ReleaseStatus.FAILED, ReleaseStatus.CANCELLED
    ):
        raise ReleaseError(f"release {name} {version} exists already; releases are immutable")
    return existing


def _checked_config(name: str, version: str, config: dict[str, Any]) -> ReleaseConfig:
    """What the worker will build, or a 400; `config` takes the formats and licence back in
    the validator's spelling, so the worker reads them as checked."""
    checked = release_config(name, version, config)
    config["formats"] = list(checked.formats)
    config["licence"] = checked.licence
    return checked


def _new_folder(out_dir: str | Path | None) -> Path | None:
    """The new, empty folder the release is written into; None where the media storage is
    remote (the release is kept under its own prefix there)."""
    if not has_local_paths():
        return None
    if out_dir is None:
        raise ReleaseError("name the new folder the release is written into (out)")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        raise ReleaseError(f"{out} is not empty; a release is written into a new directory")
    return out


def _check_selection(projects: Sequence[Project], sources: Sequence[Source],
                     config: Mapping[str, Any], checked: ReleaseConfig, *, min_raters: int,
                     max_disagreement: float | None) -> None:
    """Refuse a selection that holds no row, or (with a declared licence) images whose terms
    that licence does not allow."""
    if not selectors.has_rows(
        projects, sources, min_raters=min_raters, max_disagreement=max_disagreement
    ):
        raise ReleaseError(
            "the selection is empty: the projects have no rated images passing the rules "
            "and the sources no accepted images with scores"
        )
    if checked.licence:
        _check_licence_mix(projects, sources, config, checked)


def _queue(name: str, version: str, config: dict[str, Any], out: Path | None, *,
           replaced: Release | None, user: AbstractBaseUser | None) -> Release:
    """The release's row and its build's queue entry, in one transaction with the removal of
    the failed or cancelled version it replaces. `out` None: kept in the storage."""
    with transaction.atomic():
        if replaced is not None:
            replaced.delete()
        release = Release.objects.create(
            name=name,
            version=version,
            config=config,
            out_dir="" if out is None else str(out),
            created_by=jobs.creator(user),
        )
        if out is None:  # its own prefix, named by its id: a rebuilt version starts empty
            release.out_dir = f"{SCHEME}{RELEASE_PREFIX}/{release.pk}"
            release.save(update_fields=["out_dir"])
        jobs.enqueue(release)
    return release


def _check_licence_mix(projects: Sequence[Project], sources: Sequence[Source], config: Mapping,
                       checked: ReleaseConfig) -> None:
    """The selection's licences against the declared one (one streamed read of its rows, less
    the images held back), refused with the build's own words."""
    counts = Counter(row.licence for row in _Selection(projects, sources, config).rows())
    refusal = licence_mix_error(checked.licence, counts, ships_images=checked.images != "none")
    if refusal:
        raise ReleaseConfigError(refusal + "; nothing was queued")


def fail(release_id: int, message: str) -> None:
    jobs.fail(Release, release_id, message)


class _Selection:
    """The rows of a release, less the images held back (open flags, reviewer exclusions),
    which are counted by reason as the rows go by."""

    def __init__(self, projects: Sequence[Project], sources: Sequence[Source], c: Mapping):
        self.projects, self.sources, self.c = projects, sources, c
        self.held = selectors.held_back_images()
        self.excluded: dict[str, set[int]] = {
            "open_flag": set(),
            "reviewer_excluded": selectors.excluded_in(projects),
        }
        self.per_source: Counter[str] = Counter()

    def rows(self) -> Iterator[ReleaseRow]:
        self.per_source.clear()
        for row in selectors.release_rows(
            self.projects,
            self.sources,
            min_raters=self.c["min_raters"],
            max_disagreement=self.c["max_disagreement"],
        ):
            reason = self.held.get(row.image_id)
            if reason is not None:
                self.excluded[reason].add(row.image_id)
                continue
            self.per_source[row.source] += 1
            yield row

    def empty_parts(self) -> list[str]:
        """A warning for each selected project or source that gave no image."""
        return [
            f"{kind} {o.name} contributed no image{why}"
            for kind, objs, why in (
                ("project", self.projects, " (no consensus label passes the rules)"),
                ("source", self.sources, " (no accepted image with a score)"),
            )
            for o in objs
            if not self.per_source[o.name]
        ]


def _verify_pool(ids: list[int], report: Callable[[str, int, int], None]) -> int:
    """Hash and cluster what the selection holds that was not yet; refuse what still is not.
    Returns how many images were not verified when the build came to them."""
    todo = unverified_image_ids(ids)  # cheap, chunked: usually nothing is missing
    if not todo:
        return 0
    report("hashing", 0, len(todo))
    ensure_hashed(todo, progress=True)
    report("hashing", len(todo), len(todo))
    missing = unverified_image_ids(todo)
    if missing:
        raise ReleaseError(
            f"{len(missing)} image(s) are still not hashed and clustered against the pool "
            f"(ids {missing[:10]}); run `python manage.py hash_pool` and build again"
        )
    return len(todo)


Progress = Callable[[str, int, int], None]


def _refresh_consensus(projects: Sequence[Project], progress: Progress) -> dict[str, int]:
    """Each project's consensus brought up to date with the refresh task's own code (labels
    are read right after); {project: images recomputed}."""
    refreshed = {}
    for done, project in enumerate(projects):
        progress("consensus", done, len(projects))
        report = ensure_fresh(project)
        refreshed[project.name] = report.images_updated if report is not None else 0
    return refreshed


def _plan(selection: _Selection, config: ReleaseConfig, release: Release,
          progress: Progress) -> tuple[SplitPlan, int]:
    """The split plan over verified images, and how many this build had to hash. Two streamed
    passes over the database (split, then files) keep memory flat; where this build completed
    some hashes, clusters may have changed, so it splits again (a third pass, only then)."""
    history = selectors.split_history(release)
    plan = plan_splits(selection.rows(), config, history)
    check_official_test(plan, config)  # before hashing: an empty official test is refused
    hashed_now = _verify_pool([*plan.splits, *plan.withheld], progress)
    if hashed_now:
        plan = plan_splits(selection.rows(), config, history)
        check_official_test(plan, config)
    plan = dataclasses.replace(plan, warnings=(*plan.warnings, *selection.empty_parts()))
    return plan, hashed_now


def _about(release: Release, projects: Sequence[Project], sources: Sequence[Source],
           plan: SplitPlan, progress: Progress) -> dict[str, Any]:
    """What the datasheet says beyond the rows: sources, projects (with bootstrap intervals
    around their stored agreement), the change since the previous version, the contact."""
    facts = []
    for done, project in enumerate(projects):
        progress("agreement", done, len(projects))
        fact = selectors.project_facts(project)
        image, rater, table = selectors.project_rating_table(project)
        bounds = agreement_intervals(image, rater, table, overlap=project.overlap,
                                     seed=release.config["seed"]) if len(image) else {}
        fact["agreement_resamples"] = resamples(len(image)) if len(image) else 0
        for key, figures in fact["agreement"].items():
            for name, ci in bounds.get(key, {}).items():
                figures[f"{name}_ci"] = ci
        facts.append(fact)
    previous = selectors.previous_version(release)
    change = None
    if previous is not None:
        diff = diff_splits(selectors.release_splits(previous), plan.splits,
                           withheld=plan.withheld)
        change = {"version": previous.version, "counts": diff["counts"],
                  "moved_by_splits": diff["moved_by_splits"]}
    return {
        "sources": [selectors.source_facts(s) for s in sources],
        "projects": facts,
        "previous": change,
        "contact": release.config.get("contact") or None,
    }


def _record(release: Release, plan: SplitPlan, manifest: dict, manifest_file: Path) -> None:
    """The release's items and its end, in one transaction; a cancel that came as the last
    file was written stands (nothing is released)."""
    with transaction.atomic():
        ReleaseItem.objects.filter(release=release).delete()
        items = (ReleaseItem(release=release, image_id=i, split=s) for i, s in plan.splits.items())
        while batch := list(itertools.islice(items, 5000)):
            ReleaseItem.objects.bulk_create(batch)
        digest = hashlib.sha256(manifest_file.read_bytes())
        finished = jobs.finish(
            Release,
            release.pk,
            counts=manifest.get("counts", {}),
            warnings=manifest.get("warnings", []),
            manifest_sha256=digest.hexdigest(),
        )
        if not finished:
            raise jobs.JobCancelled


def _claim(release_id: int) -> Release | None:
    """The release to build now, or None when there is nothing to do (over, or another worker
    holds it); waits (EarlierVersionPending) while an earlier version is unbuilt."""
    release = Release.objects.get(pk=release_id)
    if release.is_over:
        return None
    waiting = selectors.unfinished_earlier_versions(release)
    if waiting:
        raise EarlierVersionPending(
            f"version(s) {', '.join(waiting)} of {release.name} are not built yet; every "
            "version keeps the splits of all earlier ones, so this one waits for them (build "
            "it again once they are ready or failed)"
        )
    return jobs.claim_or_wait(Release, release_id)


def _from_local_copies(rows: Iterable[ReleaseRow]) -> Iterator[ReleaseRow]:
    """With a remote media storage, each image is read from its local copy (the scratch
    cache, fetched as the row comes): the rows name files under MEDIA_ROOT, not this
    machine's."""
    media = str(settings.MEDIA_ROOT).rstrip("/") + "/"
    for row in rows:
        if row.file:
            if not row.file.startswith(media):
                raise ReleaseDataError(f"image {row.image_id}: {row.file} is not a stored file")
            name = row.file[len(media):]
            try:
                row = dataclasses.replace(row, file=str(local_copy(name)))
            except FileNotFoundError:
                raise ReleaseDataError(
                    f"image {row.image_id}: its file {name} is missing from the media storage"
                ) from None
        yield row


def _earlier(release: Release) -> list[ReleaseFiles]:
    """The other built versions of the name, wherever each is kept (their notices)."""
    others = Release.objects.filter(name=release.name, status=ReleaseStatus.READY).exclude(
        pk=release.pk
    )
    return [release_files(r) for r in others.order_by("created_at")]


def _upload(files: StorageFiles, folder: Path, progress: Progress) -> None:
    """Every file of the built folder to the storage, same layout; what an attempt that died
    mid-way left there goes first."""
    files.delete_all()
    paths = sorted(p for p in folder.rglob("*") if p.is_file())
    for done, path in enumerate(paths):
        progress("upload", done, len(paths))
        files.upload(path.relative_to(folder).as_posix(), path)
    progress("upload", len(paths), len(paths))


def build(release_id: int) -> Release:
    """Build a queued release (idempotent: a ready, failed or cancelled one is left as it is; a
    build whose worker vanished is built again from the start)."""
    release = _claim(release_id)
    if release is None:
        return _left_as_it_is(release_id)
    progress = _reporter(release_id)
    stored = _stored(release)
    work = None
    try:
        out = Path(release.out_dir)
        if stored:  # built in a folder of this worker's own, uploaded once complete
            work = _work_folder(release)
            out = work / stored.name
        plan, manifest = _write(release, out, progress, earlier=stored is not None)
        if stored:
            _upload(stored, out, progress)
        _record(release, plan, manifest, out / "manifest.json")
    except jobs.JobCancelled:
        # The build's work folder is gone already (modeling.release.build); a folder renamed
        # into place (or files uploaded) just before the cancel goes too: a cancelled release
        # released nothing.
        _remove_cancelled(release)
    except Exception as exc:
        _fail_build(release_id, stored, exc)
        raise
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return Release.objects.get(pk=release_id)


def _left_as_it_is(release_id: int) -> Release:
    """A release with nothing to build now (over, or another worker's). Of a failed or
    cancelled one kept in the storage, what a worker that died mid-upload left goes."""
    release = Release.objects.get(pk=release_id)
    stored = _stored(release)
    if stored is not None and release.status in (ReleaseStatus.FAILED,
                                                  ReleaseStatus.CANCELLED):
        stored.delete_all()
    return release


def _reporter(release_id: int) -> Progress:
    """The build's progress, throttled: a phase's start and end are always written."""
    beat = jobs.Throttled(Release, release_id, every_s=0.5)

    def progress(phase: str, done: int, total: int) -> None:
        beat(force=done in (0, total), progress={"phase": phase, "done": done, "total": total})

    return progress


def _work_folder(release: Release) -> Path:
    """A new folder of this worker's own to build a stored release in."""
    builds = Path(settings.SCRATCH_DIR) / "releases"  # (the cache evicts files only)
    builds.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"release-{release.pk}-", dir=builds))


def _write(release: Release, out: Path, progress: Progress, *,
           earlier: bool) -> tuple[SplitPlan, dict]:
    """The release's files written into `out` from verified rows: consensus refreshed, splits
    planned, images read (from local copies where the media storage is remote). `earlier`:
    the withdrawal notices of the name's other versions go in (a stored release)."""
    c = release.config
    projects = _by_name(Project, c["projects"], "project")
    sources = _by_name(Source, c["sources"], "source")
    refreshed = _refresh_consensus(projects, progress)
    selection = _Selection(projects, sources, c)
    config = release_config(release.name, release.version, c)
    plan, hashed_now = _plan(selection, config, release, progress)
    rows = selection.rows()
    if config.images != "none" and not has_local_paths():
        rows = _from_local_copies(rows)
    manifest = build_release(
        rows,
        plan,
        config,
        out,
        platform_version=PLATFORM_VERSION,
        extra_config=c,
        progress=progress,
        verified={
            "clustered": len(plan.splits),  # all verified; the withheld are not released
            "hashed_now": hashed_now,
            "consensus_refreshed": refreshed,
        },
        excluded=selection.excluded,
        about=_about(release, projects, sources, plan, progress),
        earlier=_earlier(release) if earlier else None,
    )
    return plan, manifest


def _fail_build(release_id: int, stored: StorageFiles | None, exc: Exception) -> None:
    """The failure recorded; a failed build leaves nothing under its prefix (a removal that
    fails too is told with the failure itself)."""
    message = str(exc)
    if stored:
        try:
            stored.delete_all()
        except Exception as cleanup:
            message += f" (its files under {stored} could not be removed: {cleanup})"
    fail(release_id, message)


def _remove_cancelled(release: Release) -> None:
    if Release.objects.filter(pk=release.pk, status=ReleaseStatus.READY).exists():
        return
    stored = _stored(release)
    if stored is not None:
        stored.delete_all()
        return
    out = Path(release.out_dir)
    if (out / "manifest.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
