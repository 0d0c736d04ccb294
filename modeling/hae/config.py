"""Training configuration: defaults, overridden by a JSON or TOML file, overridden by flags."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass
class TrainConfig:
    data: str | None = None  # release directory (or --data)
    out: str | None = None  # run directory (or --out)
    backbone: str = "tiny"  # hub id or directory of an InternVL checkpoint, "tiny" or "lite"
    clip_model: str | None = None  # lite: open_clip model name or "tiny"
    clip_checkpoint: str | None = None  # lite: local checkpoint file or cached tag
    max_steps: int | None = None  # optimizer steps of the main stage; default from epochs
    epochs: float = 1.0
    batch_size: int = 4  # per process
    grad_accum: int = 1
    lr: float = 1e-4  # LoRA adapters
    head_lr: float = 1e-3  # regression and Expert heads
    weight_decay: float = 0.01
    warmup_ratio: float = 0.03  # share of the steps with the LR rising linearly
    min_lr_ratio: float = 0.0  # the cosine decay's floor, a share of the peak LR
    max_grad_norm: float = 1.0  # gradients clipped to this norm
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_language: bool = True
    lora_vision: bool = True
    head_hidden: int = 256
    loss_lm: float = 1.0
    loss_regression: float = 1.0
    loss_expert: float = 1.0
    metavoter_steps: int | None = None  # default: a tenth of the main stage, at least 1
    metavoter_lr: float = 1e-2
    precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU), fp32, bf16, fp16
    backbone_dtype: str = "auto"  # weights of the frozen backbone: auto (bf16 on GPU), fp32, bf16
    gradient_checkpointing: bool = False
    max_tiles: int | None = None  # default: the checkpoint's processor (12 for InternVL)
    num_workers: int = 0
    log_every: int = 10  # optimizer steps between metrics records
    save_every: int = 500  # optimizer steps between checkpoints (and one at the end)
    keep_checkpoints: int = 2  # the newest kept; older ones are removed
    seed: int = 0
    eval_at_end: bool = True
    eval_batch_size: int = 8
    lite_epochs: int = 200  # lite: epochs over the cached embeddings
    lite_batch_size: int = 64
    lite_embed_batch_size: int = 64

    @classmethod
    def load(cls, path: str | Path | None, **overrides: object) -> TrainConfig:
        values: dict = {}
        if path:
            p = Path(path)
            if not p.is_file():
                raise FileNotFoundError(f"no config file at '{p}'")
            text = p.read_text(encoding="utf-8")
            values = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise ValueError(f"{p}: unknown setting(s) {', '.join(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)
