"""Training runs launched from the researcher's page: `python -m modeling.train` in a
subprocess (the model code stays Django-free), its metrics.jsonl streamed into the TrainingRun
row, and the final model registered when it succeeds.

A rerun of the task (a worker killed mid-run) resumes from the run's newest checkpoint
(`--resume`); the subprocess dies with its worker (Linux), so two never train one directory.

With a remote media storage (a bucket) the worker's disk is its own: the final model directory
is uploaded to `models/<version>/` in the storage and registered as `storage:models/<version>`,
so a web process or worker on another machine loads it from there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from core import jobs
from core.storage import SCHEME, has_local_paths, is_storage_path
from humanbeauty.errors import DomainError
from humanbeauty.paths import resolve_inside
from humanbeauty.stored import save_replacing

from .. import selectors
from ..models import Release, ReleaseStatus, RunStatus, TrainingRun
from . import registry
from .releases import release_files

LOG_NAME = "train.log"
REQUEST_NAME = "train_request.json"
LOG_TAIL_LINES = 40
MODELS_PREFIX = "models"  # the storage folder trained models are uploaded to
REPORT_NAME = "eval_test.json"  # the run's test evaluation, beside RUN/final
# Settings that the run's own fields decide; everything else of TrainConfig may be overridden.
# Set by the platform, not a request: where the data and the run are, which model, and the
# trainer's own switches (`stream` follows the data's place; `trace` is for tests).
RESERVED = {"data", "out", "backbone", "clip_model", "clip_checkpoint", "max_steps", "stream",
            "trace"}


class TrainingError(DomainError, code="training_error"):
    pass


def _train_config_fields() -> set[str]:
    from modeling.hae.config import TrainConfig  # pure dataclass: imports no torch

    return {f.name for f in fields(TrainConfig)}


def _check_settings(overrides: dict) -> None:
    """The settings as the trainer will read them (recipe, then these; one process): a bad
    recipe or an effective batch the batch size cannot make is refused here, not in the worker."""
    from modeling.hae.config import TrainConfig

    try:
        TrainConfig.load(None, **overrides).for_world(1)
    except (TypeError, ValueError) as exc:  # RecipeError is a ValueError
        raise TrainingError(f"settings: {exc}") from exc


def _release_dir(release: Release) -> str:
    if release.status != ReleaseStatus.READY:
        raise TrainingError(f"release {release.name} {release.version} is {release.status}")
    return release.out_dir


def _check_data(path: str) -> None:
    if is_storage_path(path):
        return  # a release kept in the bucket: checked with the backbone (_check_stored)
    base = Path(path)
    if not any((root / "train_label.jsonl").is_file() for root in (base, base / "HumanBeauty")):
        raise TrainingError(
            f"'{path}' is not a release in the official layout: no train_label.jsonl in it or "
            "in its HumanBeauty/ folder"
        )


def _check_stored(release: Release, backbone: str) -> None:
    """A release kept in the bucket: the full model streams its WebDataset shards; Lite reads a
    folder, fetched whole to the worker, in the official layout."""
    files = release_files(release)
    if not files.exists("manifest.json"):
        raise TrainingError(f"release {release.name} {release.version}: no manifest in {files}")
    formats = set(release.config.get("formats") or [])
    if backbone == "lite" and "official" not in formats:
        raise TrainingError(
            f"release {release.name} {release.version} has no official layout (formats: "
            f"{', '.join(sorted(formats))}); the lite backbone trains from it"
        )
    if backbone != "lite" and "webdataset" not in formats:
        raise TrainingError(
            f"release {release.name} {release.version} is kept in the bucket without WebDataset "
            "shards, which training streams from there: build it with the webdataset format"
        )


def stream_source(location: str) -> tuple[str, dict[str, str]]:
    """The `s3://` URL the trainer streams a stored release from, and the environment that
    reaches the bucket (the media storage's own connection settings)."""
    prefix = "/".join(
        p for p in (getattr(default_storage, "location", ""), location[len(SCHEME):]) if p
    ).strip("/")
    env = {
        "AWS_S3_ENDPOINT_URL": default_storage.endpoint_url,
        "AWS_ACCESS_KEY_ID": default_storage.access_key,
        "AWS_SECRET_ACCESS_KEY": default_storage.secret_key,
        "AWS_S3_REGION_NAME": default_storage.region_name,
    }
    return f"s3://{default_storage.bucket_name}/{prefix}/", {k: v for k, v in env.items() if v}


def fetch_release(location: str, release: Release, folder: Path) -> Path:
    """A stored release's files copied into `folder` (for Lite, which reads a folder); files
    already there whole are kept, so a resumed run fetches only what it lacks."""
    files = release_files(release)
    for f in files.listing():
        target = folder / f.path
        if target.is_file() and target.stat().st_size == f.size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        with files.open(f.path) as src, partial.open("wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(partial, target)
    return folder


def create_training_run(
    *,
    release: Release | None = None,
    data: str = "",
    backbone: str = "lite",
    max_steps: int | None = None,
    clip_model: str = "",
    clip_checkpoint: str = "",
    overrides: dict | None = None,
    version: str = "",
    activate: bool = False,
    user: AbstractBaseUser | None = None,
) -> TrainingRun:
    """Check the request and queue the training task. Data is a ready release or a directory
    inside IMPORT_ROOTS or MODEL_ROOTS; a local backbone or CLIP file must be inside
    MODEL_ROOTS; the resulting model is registered as `version` (default run-<id>)."""
    data_dir = _data_dir(release, data)
    backbone = _backbone(backbone)
    clip_checkpoint = _clip_checkpoint(backbone, clip_model, clip_checkpoint)
    if is_storage_path(data_dir):
        _check_stored(release, backbone)
    if max_steps is not None and not 1 <= max_steps <= 10_000_000:
        raise TrainingError("max_steps must be between 1 and 10,000,000")
    overrides = _checked_overrides(overrides)
    _check_version(version)
    config = {
        "max_steps": max_steps,
        "clip_model": clip_model or None,
        "clip_checkpoint": clip_checkpoint or None,
        "settings": overrides,
        "version": version or None,
        "activate": bool(activate),
    }
    return _queue(release, data_dir, backbone, config, user=user)


def _data_dir(release: Release | None, data: str) -> str:
    """Where the trainer reads: the ready release's place, or the directory `data` (inside
    MODEL_ROOTS or IMPORT_ROOTS), either in the official layout."""
    if (release is None) == (not data):
        raise TrainingError("give either a release or a data directory")
    roots = [*settings.MODEL_ROOTS, *settings.IMPORT_ROOTS]
    data_dir = _release_dir(release) if release is not None else str(
        resolve_inside(data, roots, setting="IMPORT_ROOTS or MODEL_ROOTS")
    )
    _check_data(data_dir)
    return data_dir


def _backbone(backbone: str) -> str:
    """The backbone as the trainer takes it: 'tiny', 'lite', a hub id, or a local directory
    (resolved, inside MODEL_ROOTS); never something the trainer would read as an option."""
    backbone = (backbone or "").strip()
    if not backbone or backbone.startswith("-"):
        raise TrainingError("backbone: a hub id or local InternVL directory, 'tiny' or 'lite'")
    if backbone not in ("tiny", "lite") and (backbone.startswith(("/", "~", ".")) or
                                             Path(backbone).exists()):
        backbone = str(resolve_inside(backbone, settings.MODEL_ROOTS, setting="MODEL_ROOTS"))
    return backbone


def _clip_checkpoint(backbone: str, clip_model: str, clip_checkpoint: str) -> str:
    """The CLIP weights file the lite backbone needs (resolved, inside MODEL_ROOTS; none for
    the random 'tiny' CLIP); the other backbones take no CLIP."""
    if backbone == "lite":
        if not clip_model or clip_model.startswith("-"):
            raise TrainingError("the lite backbone needs clip_model (an open_clip name, or tiny)")
        if clip_model != "tiny" and not clip_checkpoint:
            raise TrainingError(
                f"CLIP '{clip_model}' needs clip_checkpoint: a local open_clip weights file "
                "inside MODEL_ROOTS (or clip_model 'tiny' for a random smoke-test CLIP)"
            )
        if clip_checkpoint:
            clip_checkpoint = str(
                resolve_inside(clip_checkpoint, settings.MODEL_ROOTS, setting="MODEL_ROOTS")
            )
    elif clip_model or clip_checkpoint:
        raise TrainingError("clip_model and clip_checkpoint are for the lite backbone only")
    return clip_checkpoint


def _checked_overrides(overrides: dict | None) -> dict:
    """The request's TrainConfig settings: none that the run's own fields decide, and none the
    trainer would refuse."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - (_train_config_fields() - RESERVED))
    if unknown:
        raise TrainingError(f"unknown or reserved training setting(s): {', '.join(unknown)}")
    _check_settings(overrides)
    return overrides


def _check_version(version: str) -> None:
    """A requested model version ("" is run-<id>): well formed and not registered yet."""
    if version:
        if not registry.VERSION_NAME.match(version):
            raise TrainingError(f"version {version!r}: letters, digits, '.', '_', '+', '-'")
        if selectors.get_version(version) is not None:
            raise registry.VersionExists(f"model version '{version}' is already registered")


def _queue(release: Release | None, data_dir: str, backbone: str, config: dict, *,
           user: AbstractBaseUser | None) -> TrainingRun:
    """The run's row, its own directory under TRAINING_RUNS_DIR (named by its id), and its
    task queued."""
    run = TrainingRun.objects.create(
        release=release,
        data_dir=data_dir,
        backbone=backbone,
        config=config,
        progress={"stage": "queued", "step": 0, "total": config["max_steps"]},
        created_by=jobs.creator(user),
    )
    run.run_dir = str(Path(settings.TRAINING_RUNS_DIR) / f"run-{run.pk}")
    run.save(update_fields=["run_dir"])

    jobs.enqueue(run)
    return run


def command(run: TrainingRun, resume: bool, *, data: str | None = None) -> list[str]:
    """The trainer's command line; `data`: where it reads (default: the run's data_dir)."""
    cfg = run.config
    cmd = [sys.executable, "-m", "modeling.train", "--data", data or run.data_dir,
           "--out", run.run_dir, "--backbone", run.backbone]
    if cfg.get("max_steps"):
        cmd += ["--max-steps", str(cfg["max_steps"])]
    if cfg.get("clip_model"):
        cmd += ["--clip-model", cfg["clip_model"]]
    if cfg.get("clip_checkpoint"):
        cmd += ["--clip-checkpoint", cfg["clip_checkpoint"]]
    if cfg.get("settings"):
        request = Path(run.run_dir) / REQUEST_NAME
        request.write_text(json.dumps(cfg["settings"], indent=2) + "\n")
        cmd += ["--config", str(request)]
    if resume:
        cmd.append("--resume")
    return cmd


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class MetricsReader:
    """Reads the lines appended to metrics.jsonl since the last call."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def new_records(self) -> list[dict]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next call
        self.offset += end
        records = []
        for line in chunk[:end].splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


def log_tail(path: Path, *, lines: int = LOG_TAIL_LINES, max_bytes: int = 64_000) -> str:
    """The last lines of the log; tqdm's carriage returns count as line ends."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - max_bytes))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    kept = [ln for ln in text.replace("\r", "\n").split("\n") if ln.strip()]
    return "\n".join(kept[-lines:])


def apply_records(progress: dict, records: list[dict]) -> dict:
    progress = dict(progress)
    for r in records:
        if r.get("stage") == "heads":
            progress.update(stage="heads", step=r.get("step"), loss=r.get("loss"))
            if r.get("epoch") is not None:
                progress["epoch"] = r["epoch"]
        elif r.get("stage") == "metavoter":
            progress.update(stage="metavoter", metavoter_step=r.get("step"))
        elif r.get("stage") == "eval":
            progress.update(stage="eval", srcc_overall=r.get("srcc_overall"))
        elif r.get("event") == "saved":
            progress.update(stage="saved")
        elif r.get("event") == "resume":
            progress.update(resumed_from=r.get("step"))
    return progress


def run_training(run_id: int) -> TrainingRun:
    """Launch (or resume) the run's training, stream its progress, register the model."""
    run = jobs.claim_or_wait(TrainingRun, run_id, poll_seconds=settings.TRAINING_POLL_SECONDS)
    if run is None:
        return TrainingRun.objects.get(pk=run_id)
    run_dir = Path(run.run_dir)
    final = run_dir / "final"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        published = _published(run)
        if published:  # uploaded and registered by an earlier delivery, maybe on another machine
            return _register(run, published)
        if not (final / registry.CONFIG_NAME).is_file():
            _train(run, run_dir)
        return _register(run, _model_location(run, final))
    except jobs.JobCancelled:
        pass  # the trainer is stopped; its checkpoints stay in the run directory
    except DomainError as exc:
        _finish(run, RunStatus.FAILED, error=exc.message)
    except Exception as exc:
        _finish(run, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    return TrainingRun.objects.get(pk=run_id)


def _train(run: TrainingRun, run_dir: Path) -> None:
    resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
    reader = MetricsReader(run_dir / "metrics.jsonl")
    log_path = run_dir / LOG_NAME
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    data = None
    if is_storage_path(run.data_dir):  # a release kept in the bucket
        if run.backbone == "lite":
            data = str(fetch_release(run.data_dir, run.release, run_dir / "release"))
        else:
            data, reach = stream_source(run.data_dir)
            env.update(reach)
    cmd = command(run, resume, data=data)
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=settings.BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        progress = dict(run.progress)
        try:
            while True:
                code = proc.poll()
                progress = apply_records(progress, reader.new_records())
                jobs.beat(
                    TrainingRun, run.pk, progress=progress, log_tail=log_tail(log_path)
                )
                if code is not None:
                    break
                time.sleep(settings.TRAINING_POLL_SECONDS)
        except jobs.JobCancelled:
            _stop(proc)
            TrainingRun.objects.filter(pk=run.pk).update(log_tail=log_tail(log_path))
            raise
    run.progress = progress
    if code != 0:
        raise TrainingError(
            f"python -m modeling.train exited with {code}; the log ends:\n"
            + log_tail(log_path, lines=8)
        )


def _stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the trainer, SIGKILL it if it has not exited after `grace_s`."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def version_name(run: TrainingRun) -> str:
    return run.config.get("version") or f"run-{run.pk}"


def _published(run: TrainingRun) -> str:
    """The `storage:` location an earlier delivery of this run registered its model from, or
    "" (its files on that worker's disk, if any, are not needed again)."""
    existing = selectors.get_version(version_name(run))
    location = f"{SCHEME}{MODELS_PREFIX}/{version_name(run)}"
    if existing is not None and existing.checkpoint_path == location and (
        existing.notes == _notes(run)
    ):
        return location
    return ""


def _notes(run: TrainingRun) -> str:
    return f"trained by training run {run.pk}"


def _model_location(run: TrainingRun, final: Path) -> str:
    """What to register: the final directory itself where stored files are local files, else
    its upload to the storage."""
    if has_local_paths(default_storage):
        return str(final.resolve())
    return publish_model(final, version_name(run))


def publish_model(final: Path, version: str) -> str:
    """Upload a saved model directory (and the run's test report beside it) to
    `models/<version>/` in the media storage; returns its `storage:` location. Files already
    there under the same names are replaced (a rerun); a folder holding other files is
    someone else's and is refused. The config goes last: a reader never finds a config
    without its weights."""
    folder = f"{MODELS_PREFIX}/{version}"
    files = {p.relative_to(final).as_posix(): p for p in final.rglob("*") if p.is_file()}
    report = final.parent / REPORT_NAME
    if report.is_file():
        files.setdefault(REPORT_NAME, report)
    foreign = sorted({rel for rel, _, _ in registry.stored_files(folder)} - set(files))
    if foreign:
        raise TrainingError(
            f"'{SCHEME}{folder}' in the storage already holds other files ({', '.join(foreign[:5])}"
            "); remove them or train under another version name"
        )
    order = sorted(files, key=lambda rel: (rel == registry.CONFIG_NAME, rel))
    for rel in order:
        name = f"{folder}/{rel}"
        with files[rel].open("rb") as fh:
            save_replacing(default_storage, name, File(fh, name=files[rel].name))
    return f"{SCHEME}{folder}"


def _register(run: TrainingRun, final: str) -> TrainingRun:
    # Under the run's row lock: a cancel either comes first (nothing is registered) or waits
    # and finds the run done.
    with transaction.atomic():
        status = TrainingRun.objects.select_for_update().values_list("status", flat=True)
        if status.get(pk=run.pk) != RunStatus.RUNNING:
            raise jobs.JobCancelled
        return _register_locked(run, final)


def _register_locked(run: TrainingRun, final: str) -> TrainingRun:
    """Register `final` (the model directory: a path, or its `storage:` upload)."""
    name = version_name(run)
    existing = selectors.get_version(name)
    if existing is not None and existing.checkpoint_path == final:
        model = existing  # registered by an earlier attempt that stopped before finishing
    else:
        model = registry.register_version(
            name,
            final,
            backbone=run.backbone if run.backbone != "lite" else "",
            release=run.release,
            notes=_notes(run),
            user=run.created_by,
        )
    if run.config.get("activate"):
        model = registry.activate_version(model.version)
    progress = {**run.progress, "stage": "done"}
    _finish(run, RunStatus.DONE, model=model, progress=progress)
    run.refresh_from_db()
    return run


def _finish(run: TrainingRun, status: str, *, error: str = "", model=None, progress=None) -> None:
    updates = {
        "status": status,
        "finished_at": timezone.now(),
        "error": error[:10_000],
        "log_tail": log_tail(Path(run.run_dir) / LOG_NAME),
    }
    if model is not None:
        updates["model_version"] = model
    if progress is not None:
        updates["progress"] = progress
    # Never over a cancel: a run cancelled meanwhile stays cancelled.
    TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(**updates)
