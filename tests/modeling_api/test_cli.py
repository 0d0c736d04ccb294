"""`manage.py score` and `manage.py register_model`."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from humanbeauty.standard import DIMENSION_KEYS
from modeling.models import ModelVersion
from tests.conftest import image_bytes, write_image

HEAD_COLUMNS = ["overall_lm", "overall_regression", "overall_expert"]
COLUMNS = ["path", *DIMENSION_KEYS, "overall", *HEAD_COLUMNS]


@pytest.fixture
def photos(tmp_path):
    """Three good images (one in a sub-folder, one a PNG) and two bad files."""
    folder = tmp_path / "photos"
    write_image(folder / "a.jpg", seed=1)
    write_image(folder / "nested" / "b.jpg", seed=2)
    (folder / "c.png").write_bytes(image_bytes(size=(70, 50), seed=3))
    data = image_bytes(size=(120, 90), seed=4, fmt="JPEG")
    (folder / "broken.jpg").write_bytes(data[: len(data) // 3])
    (folder / "notes.txt").write_text("not a picture")
    return folder


def run_score(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("score", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_score_writes_one_csv_row_per_good_image_and_reports_the_bad_ones(
    photos, lite_model, tmp_path
):
    out_file = tmp_path / "scores.csv"
    stdout, stderr = run_score(str(photos), "--model", str(lite_model), "--out", str(out_file))
    with out_file.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == COLUMNS
        rows = list(reader)
    assert sorted(r["path"] for r in rows) == ["a.jpg", "c.png", "nested/b.jpg"]
    for row in rows:
        assert all(0.0 <= float(row[k]) <= 1.0 for k in [*DIMENSION_KEYS, "overall"])
        # each head's own overall: the Lite model has no LM head (left empty), its Expert
        # head's overall is its twelfth score
        assert row["overall_lm"] == "" and 0.0 <= float(row["overall_regression"]) <= 1.0
        assert row["overall_expert"] == row["comprehensive_aesthetic"]
    assert "skipped broken.jpg" in stderr and "truncated" in stderr
    assert "skipped notes.txt" in stderr
    assert "scored 3 image(s)" in stdout and "skipped 2 bad file(s)" in stdout
    assert not list(tmp_path.glob("*.tmp")), "no temporary file is left behind"


@pytest.mark.django_db
def test_score_by_registered_version_writes_jsonl(photos, lite_model, tmp_path):
    call_command("register_model", "cli-v1", str(lite_model), stdout=io.StringIO())
    out_file = tmp_path / "out" / "scores.jsonl"
    by_dir = tmp_path / "by-dir.jsonl"
    run_score(str(photos), "--model", "cli-v1", "--out", str(out_file), "--batch-size", "2")
    run_score(str(photos), "--model", str(lite_model), "--out", str(by_dir))
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(lines) == 3 and all(list(line) == COLUMNS for line in lines)
    # batching does not change a score (beyond float summation order: the sixth decimal may
    # round the other way), and the version scores as its directory does
    again = [json.loads(line) for line in by_dir.read_text().splitlines()]
    assert [line["path"] for line in lines] == [line["path"] for line in again]
    for a, b in zip(lines, again, strict=True):
        assert a == pytest.approx(b, abs=2e-6)


@pytest.mark.django_db
def test_score_refuses_unknown_models_and_formats(photos, lite_model, tmp_path):
    with pytest.raises(CommandError, match="no model version 'nope'"):
        run_score(str(photos), "--model", "nope", "--out", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="no model is active"):
        run_score(str(photos), "--out", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match=r"\.csv or \.jsonl"):
        run_score(str(photos), "--model", str(lite_model), "--out", str(tmp_path / "x.xlsx"))
    with pytest.raises(CommandError, match=r"hae_config\.json"):
        run_score(str(photos), "--model", str(photos), "--out", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="not a directory"):
        run_score(str(tmp_path / "absent"), "--model", str(lite_model), "--out", "x.csv")
    with pytest.raises(CommandError, match=r"^--batch-size must be at least 1$"):
        run_score(str(photos), "--model", str(lite_model), "--out", "x.csv", "--batch-size", "0")


@pytest.mark.django_db
def test_register_model_command(lite_model, incompatible_model, tmp_path):
    out = io.StringIO()
    call_command(
        "register_model", "cmd-v1", str(lite_model), "--backbone", "lite-tiny", "--activate",
        stdout=out,
    )
    assert "registered cmd-v1 (lite-tiny)" in out.getvalue() and "active" in out.getvalue()
    model = ModelVersion.objects.get(version="cmd-v1")
    assert model.is_active and model.checkpoint_path == str(lite_model.resolve())
    with pytest.raises(CommandError, match="already registered"):
        call_command("register_model", "cmd-v1", str(lite_model))
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("register_model", "cmd-v2", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="dimensions"):
        call_command("register_model", "cmd-v3", str(incompatible_model))
    assert ModelVersion.objects.count() == 1


def test_score_with_the_full_model_writes_each_heads_overall(photos, tiny_release, tmp_path):
    """The full model has all three heads: the file carries the LM, regression and Expert
    overall scores beside the MetaVoter's, each as the model itself reports it."""
    from modeling.hae.data import open_image
    from modeling.hae.evaluate import load_model
    from modeling.hae.train import main as train_main

    run = tmp_path / "run"
    args = ["--data", str(tiny_release), "--out", str(run), "--backbone", "tiny"]
    assert train_main([*args, "--max-steps", "1"]) == 0
    out_file = tmp_path / "full.jsonl"
    run_score(str(photos), "--model", str(run / "final"), "--out", str(out_file))
    rows = {r["path"]: r for r in map(json.loads, out_file.read_text().splitlines())}
    assert sorted(rows) == ["a.jpg", "c.png", "nested/b.jpg"]
    model = load_model(run / "final")
    [direct] = model.score([open_image(photos / "a.jpg")])
    row = rows["a.jpg"]
    for head in ("lm", "regression", "expert"):
        assert row[f"overall_{head}"] == pytest.approx(direct.heads[head], abs=1e-5)
    assert row["overall"] == pytest.approx(direct.overall, abs=1e-5)
    assert row["overall_expert"] == row["comprehensive_aesthetic"]
