"""Training recipes: named sets of :class:`~modeling.hae.config.TrainConfig` defaults.

A recipe sits between the dataclass defaults and what the user gives: ``TrainConfig`` defaults,
then the recipe's, then a config file's values, then flags (``TrainConfig.load``). The trained
model directory records the recipe and what it decides about the model itself (chat template,
system message, regression head, LoRA placement), so scoring and evaluation load ``final/`` the
way it was trained.

- ``humanbeauty`` (the default): the project's own recipe. LoRA (r 16) on the language model and
  the vision tower, projector frozen; LoRA LR 1e-4, heads 1e-3; 4 images per process and step;
  weight decay 0.01, warmup 3 %; ChatML with newline-separated turns and InternVL2's system
  message; an MLP regression head with a sigmoid.
- ``official``: HumanAesExpert's published training (``swift sft --sft_type lora`` in
  KwaiVGI/HumanAesExpert ``finetune-workspace/``, ms-swift 2.x defaults): LoRA on every linear
  layer of the language model and of the vision-language projector ``mlp1``, vision tower
  frozen; r 8, alpha 32, dropout 0.05; LR 1e-4 for LoRA and heads; effective batch 16 (ms-swift:
  batch 1, gradient accumulation 16 / processes); cosine schedule with the Hugging Face Trainer's
  warmup (5 %, rounded up, from LR 0), weight decay 0.1 (not on biases and norm weights, as the
  Trainer does); the ms-swift InternVL chat
  template (system "You are an AI assistant whose name is InternLM (书生·浦语).", turns joined
  without newlines); a linear regression head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_RECIPE = "humanbeauty"


class RecipeError(ValueError):
    """An unknown recipe, or settings that cannot follow the recipe (e.g. an effective batch
    the per-process batch and the number of processes cannot make)."""


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    defaults: dict[str, object] = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "humanbeauty": Recipe(
        "humanbeauty",
        "the project's recipe: LoRA r16 on the LLM and the vision tower, MLP regression head, "
        "head LR 1e-3, newline ChatML with InternVL2's system message",
        {},  # the TrainConfig defaults are this recipe
    ),
    "official": Recipe(
        "official",
        "HumanAesExpert as published: LoRA r8 on every linear layer of the LLM and mlp1, vision "
        "frozen, LR 1e-4, effective batch 16, linear regression head, ms-swift InternVL template",
        {
            "lora_r": 8,
            "lora_alpha": 32,
            "lora_dropout": 0.05,
            "lora_language": True,
            "lora_vision": False,
            "lora_projector": True,
            "lora_all_linear": True,
            "lr": 1e-4,
            "head_lr": 1e-4,
            "batch_size": 1,
            "effective_batch": 16,
            "weight_decay": 0.1,
            "decay_bias_and_norm": False,
            "warmup_ratio": 0.05,
            "hf_schedule": True,
            "min_lr_ratio": 0.0,
            "max_grad_norm": 1.0,
            "regression_head": "linear",
            "chat_template": "official",
        },
    ),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError(
            f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}"
        ) from None


def grad_accum_for(effective_batch: int, batch_size: int, world: int) -> int:
    """The gradient accumulation that makes ``batch_size x grad_accum x world`` equal
    ``effective_batch``; refused when no whole number does."""
    per_step = batch_size * world
    if effective_batch < 1 or batch_size < 1 or world < 1:
        raise RecipeError("effective batch, batch size and processes must be positive")
    if effective_batch % per_step:
        raise RecipeError(
            f"an effective batch of {effective_batch} cannot be made from {batch_size} "
            f"image(s) per process x {world} process(es) (= {per_step} per micro-step): "
            f"{effective_batch} is not a multiple of {per_step}. Choose batch_size and the "
            "number of processes so that their product divides the effective batch, or set "
            "effective_batch (or grad_accum) yourself"
        )
    return effective_batch // per_step


__all__ = ["DEFAULT_RECIPE", "RECIPES", "Recipe", "RecipeError", "get_recipe", "grad_accum_for"]
