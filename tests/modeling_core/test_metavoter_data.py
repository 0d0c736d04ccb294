"""The MetaVoter is fitted on held-out images (issue #15): the validation split, or a seeded
share of train that the heads never see; `final/metavoter_data.json` states which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeling.hae.data import read_split, training_data
from modeling.hae.errors import ReleaseError
from modeling.hae.synthetic import write_synthetic_release
from modeling.hae.train import main as train_main


def _names(samples) -> set[str]:
    return {s.image_name for s in samples}


def test_a_release_with_val_fits_the_voter_on_val(tmp_path):
    write_synthetic_release(tmp_path, n_train=10, n_test=3, n_val=4, seed=1)
    data = training_data(tmp_path, seed=0)
    assert data.voter_from == "val"
    assert _names(data.heads) == _names(read_split(tmp_path, "train"))
    assert _names(data.voter) == _names(read_split(tmp_path, "validation"))
    assert not _names(data.heads) & _names(data.voter)


def test_without_val_a_seeded_share_of_train_is_held_out(tmp_path):
    write_synthetic_release(tmp_path, n_train=40, n_test=3, seed=2)
    train = _names(read_split(tmp_path, "train"))
    data = training_data(tmp_path, seed=7)
    assert data.voter_from == "train-holdout"
    assert len(data.voter) == 4 and len(data.heads) == 36
    assert _names(data.heads) | _names(data.voter) == train
    assert not _names(data.heads) & _names(data.voter)
    # the same images on every run (a resumed run holds out the same), another seed others
    assert _names(training_data(tmp_path, seed=7).voter) == _names(data.voter)
    assert _names(training_data(tmp_path, seed=8).voter) != _names(data.voter)


def test_val_lines_that_repeat_a_training_image_are_not_held_out_data(tmp_path):
    root = write_synthetic_release(tmp_path, n_train=6, n_test=2, n_val=2, seed=3)
    train_lines = (root / "train_label.jsonl").read_text().splitlines()
    val_path = root / "val_label.jsonl"
    val_path.write_text(val_path.read_text() + train_lines[0] + "\n")
    data = training_data(tmp_path, seed=0)
    assert len(data.voter) == 2 and not _names(data.heads) & _names(data.voter)


def test_one_training_image_and_no_val_is_refused(tmp_path):
    write_synthetic_release(tmp_path, n_train=1, n_test=2, seed=4)
    with pytest.raises(ReleaseError, match="MetaVoter needs images the heads do not train on"):
        training_data(tmp_path, seed=0)


def _record(run: Path) -> dict:
    return json.loads((run / "final" / "metavoter_data.json").read_text())


@pytest.mark.parametrize("n_val", [0, 5])
def test_lite_training_never_shows_the_voter_a_training_image(tmp_path, n_val):
    data = tmp_path / "data"
    write_synthetic_release(data, n_train=20, n_test=4, n_val=n_val, seed=5)
    run = tmp_path / "run"
    args = ["--data", str(data), "--out", str(run), "--backbone", "lite", "--clip-model", "tiny"]
    assert train_main([*args, "--max-steps", "3"]) == 0
    record = _record(run)
    train = _names(read_split(data, "train"))
    voter = set(record["voter_images"])
    if n_val:
        assert record["fitted_on"] == "val" and record["heads_images"] == 20
        assert voter == _names(read_split(data, "val"))
    else:
        assert record["fitted_on"] == "train-holdout"
        assert voter < train and record["heads_images"] == len(train - voter) == 18
    assert not voter & (train if n_val else train - voter)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    event = next(r for r in log if r.get("event") == "metavoter_data")
    assert (event["fitted_on"], event["images"]) == (record["fitted_on"], len(voter))


def test_full_model_training_records_held_out_voter_images(tiny_release, tmp_path):
    run = tmp_path / "run"
    args = ["--data", str(tiny_release), "--out", str(run), "--backbone", "tiny"]
    assert train_main([*args, "--max-steps", "1"]) == 0
    record = _record(run)
    train = _names(read_split(tiny_release, "train"))
    assert record["fitted_on"] == "train-holdout"
    assert set(record["voter_images"]) < train
    assert record["heads_images"] == len(train) - len(record["voter_images"])
