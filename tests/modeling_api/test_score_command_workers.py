"""`manage.py score --workers N`: the files are read, checked, decoded and tiled by loader
processes; the rows and the skipped files are those of `--workers 0`."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import image_bytes, write_image


def test_workers_score_the_same_rows_and_skip_the_same_files(lite_model, tmp_path):
    folder = tmp_path / "photos"
    for i in range(5):
        write_image(folder / f"p{i}.jpg", seed=10 + i)
    (folder / "bad.jpg").write_bytes(image_bytes(size=(80, 60), seed=9, fmt="JPEG")[:200])
    outputs = {}
    for workers in ("0", "2"):
        out_file = tmp_path / f"w{workers}.jsonl"
        stdout, stderr = io.StringIO(), io.StringIO()
        call_command("score", str(folder), "--model", str(lite_model), "--out", str(out_file),
                     "--batch-size", "2", "--workers", workers, stdout=stdout, stderr=stderr)
        outputs[workers] = [json.loads(line) for line in out_file.read_text().splitlines()]
        assert "skipped bad.jpg" in stderr.getvalue()
        assert "scored 5 image(s)" in stdout.getvalue()
    assert outputs["2"] == outputs["0"]
    assert [r["path"] for r in outputs["0"]] == [f"p{i}.jpg" for i in range(5)]


def test_negative_workers_are_refused(lite_model, tmp_path):
    with pytest.raises(CommandError, match="--workers"):
        call_command("score", str(tmp_path), "--model", str(lite_model), "--out",
                     str(tmp_path / "x.csv"), "--workers", "-1")
