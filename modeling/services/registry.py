"""Writes for the model registry, and the process-wide cache of loaded models.

A version is registered only once its directory has loaded (the model code's own loader, so a
missing or incompatible checkpoint is refused with the loader's message, never replaced by
random weights). One version at most is active (a partial unique constraint); `activate` swaps
it in one transaction. Loaded models are kept per process, keyed by (version, directory,
checkpoint mtime), so the API does not reload per request and a rewritten checkpoint is
picked up.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

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
_cache: OrderedDict[tuple[str, str, int], Any] = OrderedDict()
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


def cached_model(label: str, directory: str | Path):
    """The loaded model for `label` (a version, or "dir:<path>" for the CLI) from `directory`;
    raises the loader's errors (CheckpointNotFoundError, IncompatibleCheckpointError, ...)."""
    path = Path(directory).expanduser().resolve()
    key = (label, str(path), checkpoint_mtime(path))
    with _lock:  # one load at a time: two requests for a cold model load it once
        model = _cache.get(key)
        if model is not None:
            _cache.move_to_end(key)
            _stats["hits"] += 1
            return model
        for stale in [k for k in _cache if k[0] == label]:
            del _cache[stale]
        model = _load(path)
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


def check_directory(directory: str | Path, label: str) -> tuple[Path, dict]:
    """Load the directory (which also warms the cache under `label`); InvalidModelDirectory
    with the loader's message if it does not load."""
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
    return path, json.loads((path / CONFIG_NAME).read_text())


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
    the directory must lie inside one of them."""
    if not VERSION_NAME.match(version or ""):
        raise InvalidModelDirectory(
            f"version {version!r} must be 1-100 letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit"
        )
    if roots is not None:
        directory = resolve_inside(directory, roots, setting="MODEL_ROOTS")
    if selectors.get_version(version) is not None:
        raise VersionExists(f"model version '{version}' is already registered")
    path, raw = check_directory(directory, version)
    try:
        with transaction.atomic():
            model = ModelVersion.objects.create(
                version=version,
                backbone=(backbone or default_backbone(raw))[:300],
                checkpoint_path=str(path),
                release=release,
                metrics=metrics if metrics is not None else metrics_from_report(path),
                notes=notes,
                created_by=user if user is not None and user.is_authenticated else None,
            )
    except IntegrityError:
        raise VersionExists(f"model version '{version}' is already registered") from None
    if activate:
        model = activate_version(version)
    return model


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
                if not (Path(target.checkpoint_path) / CONFIG_NAME).is_file():
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
