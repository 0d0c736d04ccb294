"""Real releases are sharded (InternVL2-8B: model-0000N-of-0000M.safetensors + an index): a
sharded source is read whole, and a large result is written in shards with an index."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file, save_file

from modeling.hae.convert import convert_checkpoint
from tests.convert.conftest import copy_source, expected, inputs
from tests.convert.support import COMPARED, TOLERANCE, load, outputs


def test_sharded_source_in_sharded_result_out_reproduces_the_official_outputs(tmp_path):
    src = copy_source("internlm2-tiny", tmp_path)
    weights = load_file(str(src / "model.safetensors"))
    (src / "model.safetensors").unlink()
    keys = sorted(weights)
    halves = {
        "model-00001-of-00002.safetensors": keys[::2],
        "model-00002-of-00002.safetensors": keys[1::2],
    }
    for name, part in halves.items():
        save_file({k: weights[k] for k in part}, str(src / name), {"format": "pt"})
    index = {"weight_map": {k: name for name, part in halves.items() for k in part}}
    (src / "model.safetensors.index.json").write_text(json.dumps(index))

    dst = tmp_path / "out"
    convert_checkpoint(src, dst, max_shard_bytes=200_000)
    written = json.loads((dst / "model.safetensors.index.json").read_text())
    shards = sorted(set(written["weight_map"].values()))
    assert len(shards) > 2 and all((dst / s).is_file() for s in shards)
    assert not (dst / "model.safetensors").exists()

    feed, _ = inputs("internlm2-tiny")
    got, want = outputs(load(dst), feed), expected("internlm2-tiny")
    for key in COMPARED:
        torch.testing.assert_close(got[key], want[key], **TOLERANCE)
