"""One real Lite model (tiny random CLIP, trained two steps) for the whole session, users per
role, the model roots, and in-process Celery."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from modeling.hae.synthetic import write_synthetic_release
from modeling.hae.train import main as train_main
from modeling.services import registry
from tests.conftest import image_bytes, users_by_role

ROLES = ("researcher", "admin", "curator", "annotator")


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """The directory MODEL_ROOTS points at: the release and the trained model live in it."""
    return tmp_path_factory.mktemp("model-root")


@pytest.fixture(scope="session")
def tiny_release(workspace) -> Path:
    """A synthetic release (official layout) of 8 train / 4 test images."""
    out = workspace / "release"
    write_synthetic_release(out, n_train=8, n_test=4, expert_fraction=0.5, seed=3)
    return out


@pytest.fixture(scope="session")
def lite_model(workspace, tiny_release) -> Path:
    """`python -m modeling.train --backbone lite --clip-model tiny --max-steps 2`, in-process:
    a real saved model directory (RUN/final, with RUN/eval_test.json beside it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = workspace / "run"
        args = ["--data", str(tiny_release), "--out", str(run), "--backbone", "lite",
                "--clip-model", "tiny", "--max-steps", "2"]
        assert train_main(args) == 0
    finally:
        torch.set_num_threads(before)
    assert (run / "final" / "hae_config.json").is_file()
    return run / "final"


@pytest.fixture(scope="session")
def incompatible_model(workspace, lite_model) -> Path:
    """The Lite model with a config that names other dimensions than the standard's."""
    bad = workspace / "incompatible"
    bad.mkdir()
    for f in lite_model.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    config = json.loads((bad / "hae_config.json").read_text())
    config["dimensions"] = config["dimensions"][:11]
    (bad / "hae_config.json").write_text(json.dumps(config))
    return bad


@pytest.fixture(autouse=True)
def _model_settings(settings, workspace, tmp_path):
    settings.MODEL_ROOTS = [workspace.resolve()]
    settings.TRAINING_RUNS_DIR = workspace / "runs" / tmp_path.name
    settings.TRAINING_POLL_SECONDS = 0.2
    settings.MODEL_DEVICE = "cpu"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with no model loaded (the cache is per process)."""
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)




@pytest.fixture
def users(db):
    return users_by_role(ROLES)


@pytest.fixture
def active_model(db, lite_model):
    return registry.register_version("lite-v1", lite_model, activate=True)


def upload(data: bytes | None = None, name: str = "photo.png") -> io.BytesIO:
    f = io.BytesIO(data if data is not None else image_bytes(size=(80, 60), seed=7))
    f.name = name
    return f


def train_from_page(page, data: Path, version: str, *, timeout: int):
    """Train a tiny model two steps on the release folder `data` from the models page's form,
    as `version`; waits until the run says it is done and registered. Returns its live panel."""
    from playwright.sync_api import expect

    page.select_option("#train-release", "")
    page.fill("#train-data", str(data))
    page.fill("#train-clip-model", "tiny")
    page.fill("#train-steps", "2")
    page.fill("#train-version", version)
    page.click("#train-submit")
    live = page.locator("#run-live")
    expect(live).to_contain_text("done", timeout=timeout)
    expect(live).to_contain_text(f"Registered as {version}")
    return live


def lost_at_chunk(monkeypatch, job_id: int, chunk: int = 2) -> list[list[int]]:
    """Run a scoring job whose worker is lost as it scores its `chunk`-th chunk (the chunks
    before it stored, the run failed), then put the real scoring back; returns the image ids
    of each chunk that run took."""
    from modeling.services import scoring

    real = scoring.score_chunk
    calls: list[list[int]] = []

    def lost(model, rows):
        calls.append([r.image_id for r in rows])
        if len(calls) == chunk:
            raise RuntimeError("worker lost")
        return real(model, rows)

    monkeypatch.setattr(scoring, "score_chunk", lost)
    with pytest.raises(RuntimeError, match="worker lost"):
        scoring.run_scoring_job(job_id)
    monkeypatch.setattr(scoring, "score_chunk", real)
    return calls
