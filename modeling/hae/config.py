"""Training configuration: defaults, overridden by the recipe's (:mod:`.recipes`), overridden by
a JSON or TOML file, overridden by flags."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .prompts import CHAT_TEMPLATES
from .recipes import DEFAULT_RECIPE, RecipeError, get_recipe, grad_accum_for

REGRESSION_HEADS = ("mlp", "linear")


@dataclass
class TrainConfig:
    recipe: str = DEFAULT_RECIPE  # named defaults (modeling/hae/recipes.py): humanbeauty, official
    data: str | None = None  # release directory or s3://bucket/prefix/ (or --data)
    # Read the release's WebDataset shards as streams (always for an s3:// release) instead
    # of its label files and loose images (modeling/hae/shards.py).
    stream: bool = False
    shuffle_buffer: int = 64  # streamed samples shuffled in a seeded buffer of this many
    out: str | None = None  # run directory (or --out)
    backbone: str = "tiny"  # hub id or directory of an InternVL checkpoint, "tiny" or "lite"
    clip_model: str | None = None  # lite: open_clip model name or "tiny"
    clip_checkpoint: str | None = None  # lite: local checkpoint file or cached tag
    max_steps: int | None = None  # optimizer steps of the main stage; default from epochs
    epochs: float = 1.0
    batch_size: int = 4  # per process
    # Micro-batches per optimizer step; default 1, or what effective_batch makes it.
    grad_accum: int | None = None
    # batch_size x grad_accum x processes; when set, grad_accum follows from it (and a batch
    # size and process count that cannot make it are refused). A grad_accum given without it
    # turns the recipe's effective batch off.
    effective_batch: int | None = None
    lr: float = 1e-4  # LoRA adapters
    head_lr: float = 1e-3  # regression and Expert heads
    weight_decay: float = 0.01
    decay_bias_and_norm: bool = True  # False: no weight decay on biases and norm weights
    warmup_ratio: float = 0.03  # share of the steps with the LR rising linearly
    min_lr_ratio: float = 0.0  # the cosine decay's floor, a share of the peak LR
    # The Hugging Face Trainer's warmup (the official recipe): ceil(warmup_ratio x steps) steps
    # rising from LR 0; otherwise floor(...) steps rising from peak / warmup.
    hf_schedule: bool = False
    max_grad_norm: float = 1.0  # gradients clipped to this norm
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_language: bool = True
    lora_vision: bool = True
    lora_projector: bool = False  # the vision-language projector (mlp1)
    lora_all_linear: bool = False  # every linear layer of the LLM, not only attention and MLP
    regression_head: str = "mlp"  # mlp (sigmoid output) or linear (one layer, the official)
    chat_template: str = "humanbeauty"  # modeling/hae/prompts.py CHAT_TEMPLATES
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
    # Each process writes the names of the samples of every micro-batch and a checksum of its
    # final weights to RUN_DIR/trace/rank-N.jsonl (checks of distributed runs; --trace).
    trace: bool = False
    log_every: int = 10  # optimizer steps between metrics records
    save_every: int = 500  # optimizer steps between checkpoints (and one at the end)
    keep_checkpoints: int = 2  # the newest kept; older ones are removed
    seed: int = 0
    eval_at_end: bool = True
    eval_batch_size: int = 8
    lite_epochs: int = 200  # lite: epochs over the cached embeddings
    lite_batch_size: int = 64
    lite_embed_batch_size: int = 64

    def __post_init__(self) -> None:
        get_recipe(self.recipe)  # an unknown name is a RecipeError
        if self.regression_head not in REGRESSION_HEADS:
            raise RecipeError(
                f"regression_head must be one of {', '.join(REGRESSION_HEADS)}, "
                f"not {self.regression_head!r}"
            )
        if self.chat_template not in CHAT_TEMPLATES:
            raise RecipeError(
                f"chat_template must be one of {', '.join(CHAT_TEMPLATES)}, "
                f"not {self.chat_template!r}"
            )
        if isinstance(self.shuffle_buffer, bool) or not isinstance(self.shuffle_buffer, int) or (
            self.shuffle_buffer < 0
        ):
            raise RecipeError(f"shuffle_buffer must be a whole number >= 0, not "
                              f"{self.shuffle_buffer!r}")
        for name in ("batch_size", "grad_accum", "effective_batch"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise RecipeError(f"{name} must be a positive whole number, not {value!r}")

    @classmethod
    def load(cls, path: str | Path | None, **overrides: object) -> TrainConfig:
        """Dataclass defaults < the recipe's (``recipe`` from the flags, else the file, else
        the default) < the file's values < the flags (``overrides``; None means not given)."""
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
        given = {k: v for k, v in overrides.items() if v is not None}
        name = given.get("recipe") or values.get("recipe") or DEFAULT_RECIPE
        explicit = {**values, **given}
        merged = {**get_recipe(str(name)).defaults, **explicit, "recipe": name}
        if "grad_accum" in explicit and "effective_batch" not in explicit:
            merged["effective_batch"] = None  # the user's accumulation replaces the recipe's
        return cls(**merged)

    def for_world(self, world: int) -> TrainConfig:
        """This config for ``world`` processes: ``grad_accum`` settled (from ``effective_batch``
        when set). Refuses an effective batch that the batch size and processes cannot make, and
        a ``grad_accum`` that contradicts it."""
        if self.effective_batch is None:
            return replace(self, grad_accum=self.grad_accum or 1)
        accum = grad_accum_for(self.effective_batch, self.batch_size, world)
        if self.grad_accum is not None and self.grad_accum != accum:
            raise RecipeError(
                f"grad_accum {self.grad_accum} contradicts effective_batch "
                f"{self.effective_batch}: {self.batch_size} per process x {world} process(es) "
                f"needs grad_accum {accum}; give one of the two"
            )
        return replace(self, grad_accum=accum)

    def as_dict(self) -> dict:
        return asdict(self)
