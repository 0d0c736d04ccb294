from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from modeling.hae.backbone import load_backbone
from modeling.hae.errors import CheckpointNotFoundError, IncompatibleCheckpointError
from modeling.hae.evaluate import load_model
from modeling.hae.model import HumanAesExpert, LoraSettings


def test_missing_backbone_directory_says_how_to_provide_one(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="Provide a transformers-format InternVL"):
        load_backbone(tmp_path / "no-such-checkpoint")


def test_uncached_hub_id_offline_is_a_clear_error_not_random_weights():
    with pytest.raises(CheckpointNotFoundError, match="neither a local directory nor in"):
        load_backbone("OpenGVLab/InternVL3-1B-hf", allow_download=False)


def test_directory_without_config_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=r"no config\.json"):
        load_backbone(tmp_path)


def test_missing_model_directory(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=r"python -m modeling\.train"):
        HumanAesExpert.from_pretrained(tmp_path / "nothing")
    with pytest.raises(CheckpointNotFoundError):
        load_model(tmp_path)


def test_non_internvl_checkpoint_is_incompatible(tiny_checkpoint, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_checkpoint, other)
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "llava"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(IncompatibleCheckpointError, match="model_type 'internvl'"):
        load_backbone(other)


@pytest.fixture
def saved(tiny_checkpoint, tmp_path):
    model = HumanAesExpert.from_backbone(tiny_checkpoint, lora=LoraSettings(r=2, alpha=4))
    return model.save_pretrained(tmp_path / "saved")


def test_heads_of_the_wrong_shape_are_incompatible(saved):
    heads = load_file(str(saved / "heads.safetensors"))
    key = next(k for k in heads if k.startswith("regression.out.weight"))
    heads[key] = torch.zeros(1, 7)
    save_file(heads, str(saved / "heads.safetensors"))
    with pytest.raises(IncompatibleCheckpointError, match=r"regression\.out\.weight: saved"):
        HumanAesExpert.from_pretrained(saved)


def test_config_that_does_not_fit_the_standard_or_the_backbone(saved):
    path = saved / "hae_config.json"
    original = json.loads(path.read_text())
    for change, message in (
        ({"dimensions": original["dimensions"][:11]}, "dimensions"),
        ({"hidden_size": 4096}, "hidden size 4096"),
        ({"format": "something-else"}, "format"),
    ):
        path.write_text(json.dumps({**original, **change}))
        with pytest.raises(IncompatibleCheckpointError, match=message):
            HumanAesExpert.from_pretrained(saved)
