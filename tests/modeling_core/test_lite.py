from __future__ import annotations

import json

import open_clip
import pytest
import torch

from modeling.hae.data import open_image, read_split
from modeling.hae.errors import CheckpointNotFoundError
from modeling.hae.evaluate import evaluate, load_model
from modeling.hae.lite import HumanAesLite
from modeling.hae.synthetic import write_synthetic_release
from modeling.hae.train import main as train_main
from tests.curation_imaging.tiny_clip import TINY_MODEL, write_tiny_clip


def test_lite_with_a_tiny_random_clip_learns_scores_from_image_content(tmp_path):
    """Scores are a fixed function of brightness, contrast, saturation and blur; the Lite heads
    must rank held-out images well from the frozen random CLIP's embeddings."""
    data = tmp_path / "data"
    write_synthetic_release(data, n_train=800, n_test=200, expert_fraction=0.5, seed=11)
    run = tmp_path / "run"
    config = tmp_path / "lite.json"
    config.write_text(json.dumps({"lite_epochs": 100, "head_hidden": 128, "log_every": 50}))
    args = ["--data", str(data), "--out", str(run), "--backbone", "lite", "--clip-model", "tiny"]
    assert train_main([*args, "--config", str(config)]) == 0
    report = json.loads((run / "eval_test.json").read_text())
    for head in ("regression", "metavoter"):
        assert report["heads"][head]["comprehensive_aesthetic"]["srcc"] >= 0.8, report["heads"]
    assert report["heads"]["expert"]["facial_brightness"]["srcc"] >= 0.8

    # the saved model scores the same from disk, through the generic loader
    model = load_model(run / "final")
    assert isinstance(model, HumanAesLite)
    test = read_split(data, "test")[:5]
    results = model.score([open_image(s.image_path) for s in test])
    assert all(0 <= v <= 1 for r in results for v in r.scores.values())
    again = evaluate(run / "final", data, "test", tmp_path / "report.json")
    assert again["heads"]["metavoter"]["comprehensive_aesthetic"]["srcc"] == pytest.approx(
        report["heads"]["metavoter"]["comprehensive_aesthetic"]["srcc"], abs=1e-6
    )


def test_lite_round_trip_is_exact(tmp_path, tiny_release):
    model = HumanAesLite.create("tiny", None, head_hidden=16)
    images = [open_image(s.image_path) for s in read_split(tiny_release, "test")]
    before = model.predict(images)
    loaded = HumanAesLite.from_pretrained(model.save_pretrained(tmp_path / "lite"))
    after = loaded.predict(images)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_lite_needs_real_clip_weights():
    with pytest.raises(CheckpointNotFoundError, match="--clip-checkpoint"):
        HumanAesLite.create("ViT-B-32", None)
    with pytest.raises(CheckpointNotFoundError, match="no CLIP checkpoint file"):
        HumanAesLite.create("ViT-B-32", "/nonexistent/open_clip_model.safetensors")
    with pytest.raises(CheckpointNotFoundError, match="knows no model"):
        HumanAesLite.create("no-such-clip", "x.bin")


def test_lite_takes_a_real_clip_from_the_shared_loader(tmp_path, monkeypatch):
    """The Lite model's CLIP comes from humanbeauty.clip.load_clip, the loader the curation
    filter uses: the checkpoint file's weights (not random ones), and no download of a tag."""
    checkpoint = write_tiny_clip(tmp_path)
    model = HumanAesLite.create(TINY_MODEL, str(checkpoint), head_hidden=16)
    saved = torch.load(checkpoint, weights_only=True)
    visual = model.visual.state_dict()
    assert visual and all(torch.equal(saved[f"visual.{k}"], v) for k, v in visual.items())
    assert model.config.clip_checkpoint == str(checkpoint)

    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, TINY_MODEL,
                        {"hb_lite_test": {"hf_hub": "hb/no-such-cached-clip/"}})
    with pytest.raises(CheckpointNotFoundError, match="not in the local cache"):
        HumanAesLite.create(TINY_MODEL, "hb_lite_test")
