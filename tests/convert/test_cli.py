"""``python -m modeling.convert_official`` end to end, and the project loading its output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from modeling.convert_official import main
from modeling.hae.backbone import load_backbone
from modeling.hae.model import HumanAesExpert
from tests.convert.conftest import FIXTURES, copy_source, source

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modeling.convert_official", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_converts_a_fixture_into_a_backbone_the_project_loads_and_scores_with(tmp_path):
    dst = tmp_path / "InternVL2-tiny-native"
    done = _cli(str(source("internlm2-tiny")), str(dst), "--progress")
    assert done.returncode == 0, done.stderr
    assert "converted 55/55 tensors" in done.stdout
    report = json.loads(done.stdout[done.stdout.index("{") :])
    assert report["family"] == "internlm2" and report["image_token_id"] == 522

    backbone = load_backbone(dst)
    assert backbone.encoder.image_token_ids == (520, 521, 522)
    assert backbone.encoder.image_seq_length == 9
    assert backbone.model.config.image_token_id == 522
    # Fresh project heads on the converted backbone score an image end to end.
    model = HumanAesExpert.wrap(backbone)
    with Image.open(FIXTURES / "image.png") as image:
        [result] = model.score([image.convert("RGB")])
    assert 0.0 <= result.overall <= 1.0
    assert set(result.heads) == {"lm", "regression", "expert"}


def test_cli_refusals_exit_non_zero_with_the_reason(tmp_path, capsys):
    """In process (the subprocess start-up is paid once, above)."""
    assert main([str(tmp_path), str(tmp_path / "out")]) == 2
    assert "config.json" in capsys.readouterr().err

    src = copy_source("qwen2-tiny", tmp_path)
    config = json.loads((src / "config.json").read_text())
    config["ps_version"] = "v1"
    (src / "config.json").write_text(json.dumps(config))
    assert main([str(src), str(tmp_path / "out")]) == 2
    assert "ps_version" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
