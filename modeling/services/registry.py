"""Writes for the model registry, and the process-wide cache of loaded models.

A version is registered only once its directory has loaded (the model code's own loader, so a
missing or incompatible checkpoint is refused with the loader's message, never replaced by
random weights). One version at most is active (a partial unique constraint); `activate` swaps
it in one transaction. Loaded models are kept per process, keyed by (version, directory,
checkpoint mtime), so the API does not reload per request and a rewritten checkpoint is
picked up.

A model directory may also be a folder of the media storage, written `storage:models/<name>`
(the bucket, so that workers and web processes on other machines load the same files); the API
accepts one only under the `storage:` entries of MODEL_ROOTS (settings.MODEL_STORAGE_ROOTS).
With a remote storage it is fetched whole into a local folder per (directory, listing of names,
sizes and ETags), complete before use (written under a hidden name, then renamed), and loaded
from there by the same loader; a rewritten file changes the listing, so it is fetched and loaded
again (the listing is read at most every STORAGE_RECHECK_SECONDS per directory).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from core.storage import SCHEME, has_local_paths, is_storage_path, resolve_storage_inside
from humanbeauty.errors import DomainError
from humanbeauty.paths import resolve_inside

from .. import selectors
from ..models import ModelVersion, Release

CONFIG_NAME = "hae_config.json"  # modeling.hae.model.CONFIG_NAME (not imported: it loads torch)
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
HOW_TO_REGISTER = (
    "Register one with POST /api/models/ or `python manage.py register_model VERSION DIR "
    "--activate`, then activate it with POST /api/models/{version}/activate/"
)


class ModelNotFound(DomainError, status=404, code="model_not_found"):
    """No registered version of that name."""


class NoActiveModel(DomainError, status=409, code="no_active_model"):
    """A request that names no version, while none is active."""


class VersionExists(DomainError, status=409, code="version_exists"):
    """A version of that name is already registered."""


class InvalidModelDirectory(DomainError, code="invalid_model"):
    """A directory that does not load as a model (the loader's message says why)."""


class ModelUnavailable(DomainError, status=503, code="model_unavailable"):
    """A registered version whose files no longer load (moved, deleted, rewritten badly)."""


# --- the cache of loaded models ---------------------------------------------------------------

_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str, object], Any] = OrderedDict()
_stats = {"loads": 0, "hits": 0}


def device() -> str:
    wanted = settings.MODEL_DEVICE
    if wanted != "auto":
        return wanted
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def checkpoint_mtime(directory: Path) -> int:
    """The newest mtime (ns) of the directory and its top-level files: a rewritten
    config or heads file, or a swapped sub-folder, changes it. 0 if it is gone."""
    try:
        entries = [directory, *directory.iterdir()]
        return max(p.stat().st_mtime_ns for p in entries)
    except OSError:
        return 0


def _load(directory: Path):
    from modeling.hae import load_model

    return load_model(directory, device=device())


# --- model directories in the media storage -------------------------------------------------

STORAGE_RECHECK_SECONDS = 30.0
# A fetched folder another process may still be loading is kept this long after its last use.
FETCH_GRACE_SECONDS = 600.0
CHUNK = 1024 * 1024

_listings: dict[str, tuple[float, tuple]] = {}


def model_storage_roots() -> list[str]:
    """The storage prefixes the API may register models from: the `storage:` entries of
    MODEL_ROOTS, as settings.MODEL_STORAGE_ROOTS lists them (without the scheme)."""
    roots = settings.MODEL_STORAGE_ROOTS
    return [str(r).strip("/") for r in roots if str(r).strip("/")]


def storage_folder(directory: str | Path) -> str:
    """The storage name of a `storage:` model directory, normalised; a name that is empty,
    absolute or climbs out of the storage is refused."""
    raw = os.fspath(directory)
    joined = raw[len(SCHEME):].replace("\\", "/")
    name = posixpath.normpath(joined) if joined.strip("/ ") else ""
    if "\x00" in raw or not name or joined.startswith("/") or name == ".." or name.startswith(
        "../"
    ):
        raise InvalidModelDirectory(
            f"'{raw}' is not a folder of the media storage: write storage:PREFIX/NAME"
        )
    return name


def scratch_models_dir() -> Path:
    """Where model directories of a remote storage are fetched: settings.MODEL_SCRATCH_DIR, by
    default beside the scratch cache (SCRATCH_DIR-models; not inside it, whose eviction removes
    single files)."""
    return Path(settings.MODEL_SCRATCH_DIR or f"{settings.SCRATCH_DIR}-models")


def _bucket_prefix(folder: str):
    """(boto3 bucket, key prefix) where the storage is an S3 bucket, else (None, "")."""
    bucket = getattr(default_storage, "bucket", None)
    normalize = getattr(default_storage, "_normalize_name", None)
    if bucket is None or normalize is None:
        return None, ""
    return bucket, normalize(folder).rstrip("/") + "/"


def stored_files(folder: str) -> tuple[tuple[str, int, str], ...]:
    """(name relative to `folder`, size, ETag or mtime) of every file under a storage folder,
    sorted: one listing request on S3."""
    bucket, prefix = _bucket_prefix(folder)
    if bucket is not None:
        found = [
            (o.key[len(prefix):], int(o.size), str(o.e_tag).strip('"'))
            for o in bucket.objects.filter(Prefix=prefix)
            if not o.key.endswith("/")
        ]
        return tuple(sorted(found))
    found = []

    def walk(rel: str) -> None:
        try:
            subdirs, files = default_storage.listdir(f"{folder}/{rel}".rstrip("/"))
        except FileNotFoundError:
            return
        for f in files:
            name = f"{folder}/{rel}{f}"
            found.append((f"{rel}{f}", default_storage.size(name),
                          default_storage.get_modified_time(name).isoformat()))
        for sub in subdirs:
            walk(f"{rel}{sub}/")

    walk("")
    return tuple(sorted(found))


def _listing(folder: str, *, fresh: bool = False) -> tuple:
    now = time.monotonic()
    seen = _listings.get(folder)
    if fresh or seen is None or now - seen[0] > STORAGE_RECHECK_SECONDS:
        seen = (now, stored_files(folder))
        _listings[folder] = seen
    return seen[1]


def _download(folder: str, rel: str, dest: Path) -> None:
    bucket, prefix = _bucket_prefix(folder)
    if bucket is not None:  # streamed to disk (storage.open would hold the file in memory)
        bucket.download_file(prefix + rel, str(dest))
        return
    with default_storage.open(f"{folder}/{rel}", "rb") as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out, CHUNK)


def fetch_directory(folder: str, files: tuple) -> Path:
    """A local folder holding the storage folder's `files` (its listing): fetched now unless
    an earlier fetch of the same listing is there; it appears whole or not at all."""
    from modeling.hae.errors import CheckpointNotFoundError

    if not files:
        raise CheckpointNotFoundError(
            f"'{SCHEME}{folder}' holds no files: upload a saved model directory (hae_config.json "
            "and its weights) there first"
        )
    if CONFIG_NAME not in {rel for rel, _, _ in files}:  # refused before fetching anything
        raise CheckpointNotFoundError(
            f"'{SCHEME}{folder}' is not a HumanAesExpert model directory (no {CONFIG_NAME}): "
            "upload a saved model directory (RUN/final of `python -m modeling.train`) there"
        )
    signature = hashlib.sha256(json.dumps(files).encode()).hexdigest()[:24]
    home = scratch_models_dir() / hashlib.sha256(folder.encode()).hexdigest()[:24]
    target = home / signature
    if target.is_dir():
        with contextlib.suppress(OSError):
            os.utime(target)  # in use: not pruned
        return target
    home.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=home, prefix=".", suffix=".part"))
    try:
        for rel, size, _ in files:
            clean = posixpath.normpath(rel)
            if clean.startswith(("../", "/")) or clean in ("..", "."):
                raise CheckpointNotFoundError(f"'{SCHEME}{folder}': a file named {rel!r}")
            dest = partial / clean
            dest.parent.mkdir(parents=True, exist_ok=True)
            _download(folder, rel, dest)
            if dest.stat().st_size != size:
                raise OSError(f"'{SCHEME}{folder}/{rel}' changed while it was fetched; retry")
        try:
            os.rename(partial, target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(partial, ignore_errors=True)  # another process fetched it first
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _prune(home, keep=target)
    return target


def _prune(home: Path, *, keep: Path) -> None:
    """Remove older fetches of a directory (and abandoned partial ones) unused for a while."""
    cutoff = time.time() - FETCH_GRACE_SECONDS
    for entry in home.iterdir():
        with contextlib.suppress(OSError):
            if entry != keep and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry)


def _load_stored(folder: str, files: tuple):
    """Fetch and load a storage model directory; the loader's message names the storage
    location, not the local copy."""
    from modeling.hae.errors import CheckpointNotFoundError, IncompatibleCheckpointError

    local = fetch_directory(folder, files)
    try:
        return _load(local)
    except (CheckpointNotFoundError, IncompatibleCheckpointError) as exc:
        raise type(exc)(str(exc).replace(str(local), f"{SCHEME}{folder}")) from exc


def local_directory(directory: str | Path) -> Path:
    """A local folder with a model directory's files: the directory itself, the stored folder
    on the file-system storage, else its fetched copy."""
    if not is_storage_path(directory):
        return Path(directory).expanduser().resolve()
    folder = storage_folder(directory)
    if has_local_paths(default_storage):
        return Path(default_storage.path(folder))
    return fetch_directory(folder, _listing(folder))


def cached_model(label: str, directory: str | Path, *, fresh: bool = False):
    """The loaded model for `label` (a version, or "dir:<path>" for the CLI) from `directory`
    (a local path, or `storage:NAME`); raises the loader's errors (CheckpointNotFoundError,
    IncompatibleCheckpointError, ...). `fresh`: list a storage directory now."""
    if is_storage_path(directory) and not has_local_paths(default_storage):
        folder = storage_folder(directory)
        files = _listing(folder, fresh=fresh)
        key = (label, f"{SCHEME}{folder}", files)

        def load():
            return _load_stored(folder, files)
    else:
        path = local_directory(directory)
        key = (label, str(path), checkpoint_mtime(path))

        def load():
            return _load(path)

    with _lock:  # one load at a time: two requests for a cold model load it once
        model = _cache.get(key)
        if model is not None:
            _cache.move_to_end(key)
            _stats["hits"] += 1
            return model
        for stale in [k for k in _cache if k[0] == label]:
            del _cache[stale]
        model = load()
        _stats["loads"] += 1
        _cache[key] = model
        while len(_cache) > max(1, settings.MODEL_CACHE_SIZE):
            _cache.popitem(last=False)
        return model


def cache_info() -> dict:
    with _lock:
        return {**_stats, "entries": [k[0] for k in _cache]}


def clear_cache() -> None:
    with _lock:
        _cache.clear()
        _listings.clear()
        _stats.update(loads=0, hits=0)


def load_error(directory: str | Path, exc: Exception) -> str:
    from modeling.hae.errors import CheckpointNotFoundError, IncompatibleCheckpointError

    if isinstance(exc, CheckpointNotFoundError | IncompatibleCheckpointError):
        return str(exc)
    return f"'{directory}' could not be loaded as a model ({type(exc).__name__}: {exc})"


def model_for(version: ModelVersion):
    """The loaded model of a registered version; ModelUnavailable if its files don't load."""
    try:
        return cached_model(version.version, version.checkpoint_path)
    except Exception as exc:
        raise ModelUnavailable(
            f"model {version.version} is registered but does not load: "
            f"{load_error(version.checkpoint_path, exc)}. Restore the directory, or register "
            "and activate another version."
        ) from exc


# --- registry writes --------------------------------------------------------------------------


def resolve_version(version: str | ModelVersion | None) -> ModelVersion:
    """A named version (404 if unknown) or the active one (409 if none)."""
    if isinstance(version, ModelVersion):
        return version
    if version:
        found = selectors.get_version(version)
        if found is None:
            known = selectors.version_names()
            listed = f"registered: {', '.join(known)}" if known else "no version is registered"
            raise ModelNotFound(f"no model version '{version}' ({listed})")
        return found
    active = selectors.active_version()
    if active is None:
        raise NoActiveModel(f"no model is active. {HOW_TO_REGISTER}.")
    return active


def default_backbone(raw: dict) -> str:
    if raw.get("model_type") == "hae-lite":
        return f"lite ({raw.get('clip_model', '?')})"
    return str(raw.get("backbone", ""))


def metrics_from_report(directory: Path) -> dict:
    """A summary of the evaluation the training run wrote (RUN/eval_test.json beside RUN/final,
    or inside the model directory): the overall score's metrics per head."""
    for candidate in (directory / "eval_test.json", directory.parent / "eval_test.json"):
        if candidate.is_file():
            try:
                report = json.loads(candidate.read_text())
            except (OSError, ValueError):
                return {}
            heads = {
                head: {
                    k: v
                    for k, v in (values.get("comprehensive_aesthetic") or {}).items()
                    if k in ("plcc", "srcc", "krcc", "rmse", "mae", "accuracy", "f1")
                }
                for head, values in (report.get("heads") or {}).items()
            }
            return {
                "split": report.get("split", "test"),
                "n_images": report.get("n_images"),
                "overall": heads,
                "report": str(candidate),
            }
    return {}


def check_directory(directory: str | Path, label: str) -> tuple[str, dict, Path]:
    """Load the directory (which also warms the cache under `label`); InvalidModelDirectory
    with the loader's message if it does not load. Returns (what to register: the resolved
    path or the `storage:` name, its config, a local folder holding its files)."""
    if is_storage_path(directory):
        stored = f"{SCHEME}{storage_folder(directory)}"
        try:
            cached_model(label, stored, fresh=True)
            local = local_directory(stored)
        except Exception as exc:
            raise InvalidModelDirectory(
                f"cannot register '{stored}': {load_error(stored, exc)}"
            ) from exc
        return stored, json.loads((local / CONFIG_NAME).read_text()), local
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise InvalidModelDirectory(
            f"'{directory}' is not a directory. Give a saved model directory: RUN_DIR/final "
            "of `python -m modeling.train`, holding hae_config.json and heads.safetensors"
        )
    path = path.resolve()
    try:
        cached_model(label, path)
    except Exception as exc:
        raise InvalidModelDirectory(
            f"cannot register '{directory}': {load_error(directory, exc)}"
        ) from exc
    return str(path), json.loads((path / CONFIG_NAME).read_text()), path


def register_version(
    version: str,
    directory: str | Path,
    *,
    backbone: str = "",
    release: Release | None = None,
    metrics: dict | None = None,
    notes: str = "",
    activate: bool = False,
    user: AbstractBaseUser | None = None,
    roots: Sequence[Path] | None = None,
) -> ModelVersion:
    """Register a model directory under `version` once it has loaded. With `roots` (the API),
    the directory must lie inside one of them, or a `storage:` one under the storage prefixes
    of MODEL_ROOTS (`model_storage_roots`)."""
    if not VERSION_NAME.match(version or ""):
        raise InvalidModelDirectory(
            f"version {version!r} must be 1-100 letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit"
        )
    if roots is not None and is_storage_path(directory):
        directory = SCHEME + resolve_storage_inside(
            os.fspath(directory), model_storage_roots(), setting="MODEL_ROOTS"
        )
    elif roots is not None:
        directory = resolve_inside(directory, roots, setting="MODEL_ROOTS")
    if selectors.get_version(version) is not None:
        raise VersionExists(f"model version '{version}' is already registered")
    location, raw, local = check_directory(directory, version)
    if metrics is None:
        metrics = metrics_from_report(local)
        if metrics.get("report") and is_storage_path(location):  # name it as stored
            report = Path(metrics["report"])
            folder = location if report.parent == local else posixpath.dirname(location)
            metrics["report"] = f"{folder}/{report.name}"
    try:
        with transaction.atomic():
            model = ModelVersion.objects.create(
                version=version,
                backbone=(backbone or default_backbone(raw))[:300],
                checkpoint_path=location,
                release=release,
                metrics=metrics,
                notes=notes,
                created_by=user if user is not None and user.is_authenticated else None,
            )
    except IntegrityError:
        raise VersionExists(f"model version '{version}' is already registered") from None
    if activate:
        model = activate_version(version)
    return model


def has_config(directory: str) -> bool:
    """Whether a registered directory (a path, or `storage:NAME`) still holds its config."""
    if is_storage_path(directory):
        return default_storage.exists(f"{storage_folder(directory)}/{CONFIG_NAME}")
    return (Path(directory) / CONFIG_NAME).is_file()


def activate_version(version: str) -> ModelVersion:
    """Make `version` the active one and every other inactive, atomically. Activations run
    one after the other: each locks every version row (in id order, so two never deadlock;
    the registry is small). Should a version be inserted active meanwhile, the partial unique
    index refuses the second active row and the activation is retried."""
    for _ in range(5):
        try:
            with transaction.atomic():
                list(ModelVersion.objects.select_for_update().order_by("pk").values_list("pk"))
                target = ModelVersion.objects.filter(version=version).first()
                if target is None:
                    resolve_version(version)  # raises ModelNotFound with the known names
                if not has_config(target.checkpoint_path):
                    raise InvalidModelDirectory(
                        f"model {version}'s directory '{target.checkpoint_path}' is gone or no "
                        "longer a model directory; restore it or register another version"
                    )
                ModelVersion.objects.filter(is_active=True).exclude(pk=target.pk).update(
                    is_active=False
                )
                if not target.is_active:
                    target.is_active = True
                    target.save(update_fields=["is_active"])
            return target
        except IntegrityError:
            continue  # another activation committed between our update and our save
    raise DomainError(f"could not activate '{version}': other activations kept winning; retry")


def score_images(version: str | ModelVersion | None, images: Sequence) -> tuple[ModelVersion, list]:
    """Score PIL images with a named version or the active one: (version, [ScoreResult])."""
    model_version = resolve_version(version)
    model = model_for(model_version)
    return model_version, model.score(list(images))
