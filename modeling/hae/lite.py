"""HumanAesExpert-Lite: the regression and Expert heads and a MetaVoter on frozen open_clip image
embeddings. Trainable on cached embeddings on a CPU in minutes: for teams without GPUs and as a
fast baseline.

The CLIP comes from the project's one loader, :func:`humanbeauty.clip.load_clip` (a local
open_clip file or a cached pretrained tag, never a download); a missing checkpoint is an error.
``tiny`` is an explicit smoke-test CLIP: a small *random* ViT registered with open_clip from
:data:`TINY_CLIP_CONFIG`. A saved Lite directory holds
``hae_config.json`` (with the CLIP's open_clip config), ``clip_visual.safetensors`` (the image
tower, so the directory is self-contained) and ``heads.safetensors``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import open_clip
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from humanbeauty.clip import ClipUnavailable, load_clip
from humanbeauty.standard import DIMENSION_KEYS, LEVELS

from .errors import CheckpointNotFoundError, IncompatibleCheckpointError
from .heads import ExpertHead, MetaVoter, RegressionHead
from .model import CONFIG_NAME, FORMAT, HEADS_NAME, ScoreResult, load_heads, read_config
from .model import results_from_predictions as _results

TINY_CLIP_NAME = "hae-tiny-clip"
TINY_CLIP_CONFIG: dict = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 128, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1},
}
VISUAL_NAME = "clip_visual.safetensors"


def register_clip_config(name: str, config: dict) -> None:
    """Make a model config known to open_clip under ``name`` (its public registration path)."""
    folder = Path(tempfile.gettempdir()) / "hae-open-clip-configs"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    text = json.dumps(config, sort_keys=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    if open_clip.get_model_config(name) != config:
        open_clip.add_model_config(path)


HOW_TO_PROVIDE = (
    "Pass a local open_clip checkpoint file (e.g. open_clip_pytorch_model.bin downloaded where "
    "the hub is reachable) or a pretrained tag whose files are already cached with "
    "--clip-checkpoint, or use '--clip-model tiny' for a smoke test."
)


def create_clip(
    name: str, checkpoint: str | None, seed: int = 0
) -> tuple[nn.Module, object, str, dict]:
    """(CLIP model, eval transform, open_clip name, its config) - never silently random.

    A real CLIP comes from the project's one loader (`humanbeauty.clip.load_clip`: a local file
    or a cached tag, no download); only ``tiny`` is random, on purpose.
    """
    if name == "tiny":
        register_clip_config(TINY_CLIP_NAME, TINY_CLIP_CONFIG)
        torch.manual_seed(seed)  # the smoke-test CLIP is random by design, but reproducible
        model, _, transform = open_clip.create_model_and_transforms(TINY_CLIP_NAME)
        return model, transform, TINY_CLIP_NAME, TINY_CLIP_CONFIG
    try:
        loaded = load_clip(name, checkpoint, how_to_provide=HOW_TO_PROVIDE)
    except ClipUnavailable as exc:
        raise CheckpointNotFoundError(exc.message) from exc
    return loaded.model, loaded.preprocess, name, loaded.model_config


@dataclass
class LiteConfig:
    clip_model: str  # open_clip name
    clip_config: dict
    clip_checkpoint: str | None  # where the weights first came from (informational)
    embed_dim: int
    head_hidden: int = 256
    dimensions: list[str] = field(default_factory=lambda: list(DIMENSION_KEYS))
    levels: list[str] = field(default_factory=lambda: list(LEVELS))
    model_type: str = "hae-lite"
    format: str = FORMAT
    format_version: int = 1


class LiteHeads(nn.Module):
    def __init__(self, embed_dim: int, hidden: int):
        super().__init__()
        # Embedding standardisation fitted on the training set (CLIP features are not centred).
        self.register_buffer("feature_mean", torch.zeros(embed_dim))
        self.register_buffer("feature_std", torch.ones(embed_dim))
        self.regression = RegressionHead(embed_dim, hidden)
        self.expert = ExpertHead(embed_dim, hidden)
        self.metavoter = MetaVoter(n_candidates=2)

    def fit_normaliser(self, features: torch.Tensor) -> None:
        self.feature_mean.copy_(features.float().mean(0))
        self.feature_std.copy_(features.float().std(0).clamp(min=1e-6))

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (features.float() - self.feature_mean) / self.feature_std
        regression, expert = self.regression(x), self.expert(x)
        candidates = torch.stack([regression, expert[:, -1]], dim=-1)
        voted = self.metavoter(candidates.detach(), expert.detach())
        return {"regression": regression, "expert": expert, "metavoter": voted}


class HumanAesLite(nn.Module):
    def __init__(self, clip: nn.Module, transform, config: LiteConfig):
        super().__init__()
        self.visual = clip.visual  # only the image tower is kept
        for p in self.visual.parameters():
            p.requires_grad_(False)
        self.transform = transform
        self.config = config
        self.heads = LiteHeads(config.embed_dim, config.head_hidden)

    @classmethod
    def create(
        cls, clip_model: str, clip_checkpoint: str | None, head_hidden: int = 256, seed: int = 0
    ) -> HumanAesLite:
        clip, transform, name, clip_config = create_clip(clip_model, clip_checkpoint, seed)
        config = LiteConfig(
            clip_model=name,
            clip_config=clip_config,
            clip_checkpoint=clip_checkpoint,
            embed_dim=int(clip_config["embed_dim"]),
            head_hidden=head_hidden,
        )
        return cls(clip, transform, config).eval()

    @property
    def device(self) -> torch.device:
        return next(self.heads.parameters()).device

    @torch.no_grad()
    def embed(self, images: Sequence[Image.Image]) -> torch.Tensor:
        self.visual.eval()
        x = torch.stack([self.transform(im.convert("RGB")) for im in images]).to(self.device)
        return self.visual(x).float()

    @torch.no_grad()
    def predict(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        out = self.heads(self.embed(images))
        return {k: v.float().cpu() for k, v in out.items()}

    def score(self, images: Sequence[Image.Image], batch_size: int = 32) -> list[ScoreResult]:
        self.eval()
        results: list[ScoreResult] = []
        for start in range(0, len(images), batch_size):
            results += _results(self.predict(images[start : start + batch_size]))
        return results

    def save_pretrained(self, directory: str | Path) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        visual = {k: v.detach().cpu().contiguous() for k, v in self.visual.state_dict().items()}
        save_file(visual, str(out / VISUAL_NAME))
        heads = {k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()}
        save_file(heads, str(out / HEADS_NAME))
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu") -> HumanAesLite:
        root = Path(directory).expanduser()
        raw = read_config(root)
        if raw.get("model_type") != "hae-lite":
            raise IncompatibleCheckpointError(f"{root} is a '{raw.get('model_type')}' model")
        config = LiteConfig(
            **{k: v for k, v in raw.items() if k in LiteConfig.__dataclass_fields__}
        )
        if not (root / VISUAL_NAME).is_file():
            raise CheckpointNotFoundError(f"{root}: missing CLIP image tower '{VISUAL_NAME}'")
        register_clip_config(config.clip_model, config.clip_config)
        # Built without weights, then every tensor replaced from the saved file (strict); mute
        # open_clip's "initialized randomly" warning, which is not true once loading is done.
        logging.disable(logging.WARNING)
        try:
            clip, _, transform = open_clip.create_model_and_transforms(config.clip_model)
        finally:
            logging.disable(logging.NOTSET)
        model = cls(clip, transform, config)
        try:
            model.visual.load_state_dict(load_file(str(root / VISUAL_NAME)))
        except RuntimeError as exc:
            raise IncompatibleCheckpointError(f"{root / VISUAL_NAME}: {exc}") from exc
        load_heads(model.heads, root / HEADS_NAME)
        return model.to(device).eval()
