from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from humanbeauty.standard import DIMENSION_KEYS
from modeling.hae import load_model
from modeling.hae.data import open_image, read_split
from modeling.hae.evaluate import main as evaluate_main
from modeling.hae.evaluate import write_report
from modeling.hae.train import main as train_main

REPO = Path(__file__).resolve().parents[2]
METRIC_KEYS = {"plcc", "srcc", "krcc", "rmse", "mae", "accuracy", "precision", "recall", "f1"}


def test_train_tiny_resume_and_evaluate(tiny_release, tmp_path):
    run = tmp_path / "run"
    base = ["--data", str(tiny_release), "--out", str(run), "--backbone", "tiny"]
    assert train_main([*base, "--max-steps", "2"]) == 0
    final = run / "final"
    assert {"hae_config.json", "heads.safetensors", "adapter", "backbone"} <= {
        p.name for p in final.iterdir()
    }
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r.get("stage") == "heads"] == [2]
    assert any(r.get("stage") == "metavoter" for r in log)

    config = tmp_path / "run.toml"  # data/out/backbone may come from the config file too
    config.write_text(f'data = "{tiny_release}"\nout = "{run}"\nbackbone = "tiny"\n')
    assert train_main(["--config", str(config), "--max-steps", "3", "--resume"]) == 0
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    resumed = [r for r in log if r.get("event") == "resume"]
    assert resumed and resumed[-1]["step"] == 2
    assert [r["step"] for r in log if r.get("stage") == "heads"] == [2, 3]

    report_path = tmp_path / "report.json"
    args = ["--model", str(final), "--data", str(tiny_release), "--out", str(report_path)]
    assert evaluate_main(args) == 0
    report = json.loads(report_path.read_text())
    assert report["split"] == "test" and report["n_images"] == 4
    assert set(report["heads"]) == {"metavoter", "lm", "regression", "expert"}
    for head in ("metavoter", "lm", "regression"):
        assert set(report["heads"][head]["comprehensive_aesthetic"]) >= METRIC_KEYS
    assert set(report["heads"]["expert"]) == set(DIMENSION_KEYS)
    assert {"mse", "mae", "plcc"} <= set(report["official"]["metavoter"])

    model = load_model(final)  # the generic loader the Django layer uses
    images = [open_image(s.image_path) for s in read_split(tiny_release, "test")]
    results = model.score(images)
    assert len(results) == 4 and all(0 <= r.overall <= 1 for r in results)


def test_report_json_has_null_for_undefined_correlations(tmp_path):
    path = tmp_path / "r.json"
    write_report({"srcc": math.nan, "nested": [{"plcc": math.nan, "n": 1}]}, path)
    assert json.loads(path.read_text()) == {"srcc": None, "nested": [{"plcc": None, "n": 1}]}


def test_model_code_imports_no_django():
    code = (
        "import sys, modeling.train, modeling.evaluate, modeling.hae.lite, modeling.hae.tiny; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
