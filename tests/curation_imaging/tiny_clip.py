"""A tiny random open_clip model saved to a local file, for tests and demos (not production).

`write_tiny_clip(folder)` registers the model config `hb-tiny-clip` with
`open_clip.add_model_config(folder)` (the same registry the built-in configs live in) and saves a
random state dict next to it, so that `load_clip(ClipFilterConfig(model="hb-tiny-clip",
checkpoint=path))` goes through open_clip's real loading path: config lookup, model build, strict
state-dict load, preprocessing transforms, tokenizer. The weights are random, so the scores mean
nothing: tests check the wiring, not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import torch

TINY_MODEL = "hb-tiny-clip"

# Two 2-layer towers of width 64, 64 px input in 16 px patches; the text tower keeps CLIP's
# vocabulary (the tokenizer emits ids up to 49407) but a short context. About 3.5 M parameters,
# most of them the token embedding; building it takes milliseconds.
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32,
                   "patch_size": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2,
                 "layers": 2},
}


def register_tiny_config(folder: Path, name: str = TINY_MODEL, **overrides) -> str:
    """Write `name`.json into folder and add folder to open_clip's config registry."""
    cfg = json.loads(json.dumps(TINY_CONFIG))
    for key, value in overrides.items():  # e.g. embed_dim=48, vision_cfg={"width": 96}
        if isinstance(value, dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(cfg, indent=2))
    open_clip.add_model_config(folder)
    return name


def write_tiny_clip(folder: Path, *, name: str = TINY_MODEL, seed: int = 0,
                    fmt: str = "pt", **overrides) -> Path:
    """Register the tiny config and save seeded random weights; returns the weights file
    (its config beside it as `<name>.json`).

    fmt: "pt" (torch.save of the state dict) or "safetensors".
    """
    register_tiny_config(folder / "configs", name, **overrides)
    # ... and a copy beside the weights, where a worker process finds it (humanbeauty.clip).
    (folder / f"{name}.json").write_text((folder / "configs" / f"{name}.json").read_text())
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG alone
        torch.manual_seed(seed)
        model = open_clip.create_model(name, pretrained=None)  # random on purpose: a test model
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path = folder / f"{name}-seed{seed}.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
