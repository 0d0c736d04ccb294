"""HumanAesExpert: an InternVL backbone (LoRA adapters where the recipe puts them: the project's
on the LLM and the vision tower, the official on every linear layer of the LLM and the projector;
LM head frozen) with the LM-head score, a regression head (MLP or the official linear one), the
12-dimension Expert head and a MetaVoter.

Scoring runs two forward passes, as the paper's "switch" does: the overall question (its answer
prefix appended) gives the LM-head score and the regression head; the 12-dimension question gives
the Expert head; the MetaVoter combines them.

A saved model directory holds ``hae_config.json`` (with the recipe, chat template and regression
head it was trained with, so scoring reads it the same way), ``heads.safetensors``, the LoRA adapter
(``adapter/``, peft format) and, unless saved with ``include_base=False``, the base backbone and
its processor (``backbone/``, transformers format) so the directory is self-contained.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import InternVLForConditionalGeneration

from humanbeauty.standard import DIMENSION_KEYS, LEVELS, score_to_level

from . import prompts
from .backbone import Backbone, EncodedBatch, load_backbone
from .errors import CheckpointNotFoundError, IncompatibleCheckpointError
from .heads import ExpertHead, LinearRegressionHead, MetaVoter, RegressionHead, lm_level_score

FORMAT = "humanaesexpert"
FORMAT_VERSION = 1
CONFIG_NAME = "hae_config.json"
HEADS_NAME = "heads.safetensors"
LLM_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
VISION_MODULES = ("q_proj", "k_proj", "v_proj", "projection_layer", "fc1", "fc2")


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    language: bool = True
    vision: bool = True
    projector: bool = False  # the vision-language projector (mlp1 in the official layout)
    all_linear: bool = False  # every linear layer of the LLM, not only LLM_MODULES

    def target_regex(self) -> str:
        """The project's placement (LLM attention and MLP, vision tower) as a peft regex."""
        parts = []
        if self.language:
            parts.append(rf".*\.language_model\..*\.({'|'.join(LLM_MODULES)})")
        if self.vision:
            parts.append(rf".*\.vision_tower\..*\.({'|'.join(VISION_MODULES)})")
        if not parts:
            raise ValueError("LoRA needs the language model, the vision tower or both")
        return "|".join(f"(?:{p})" for p in parts)

    def targets(self, model: nn.Module) -> str | list[str]:
        """What peft adapts in ``model`` (an InternVLForConditionalGeneration). Without the
        projector and all-linear options, :meth:`target_regex` (the project's placement);
        otherwise the names of the linear layers chosen: every ``nn.Linear`` of the language
        model (or its LLM_MODULES), of the projector, and the tower's VISION_MODULES."""
        if not (self.projector or self.all_linear):
            return self.target_regex()
        names = []
        for name, module in model.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            leaf = name.rsplit(".", 1)[-1]
            if ".language_model." in f".{name}":
                chosen = self.language and (self.all_linear or leaf in LLM_MODULES)
            elif ".multi_modal_projector." in f".{name}":
                chosen = self.projector
            elif ".vision_tower." in f".{name}":
                chosen = self.vision and leaf in VISION_MODULES
            else:  # the LM head
                chosen = False
            if chosen:
                names.append(name)
        if not names:
            raise ValueError("LoRA settings select no linear layer of this model")
        return sorted(names)


@dataclass
class HaeConfig:
    backbone: str  # the base checkpoint it was built on (directory or hub id)
    hidden_size: int
    level_token_ids: list[int]
    max_tiles: int = 12
    head_hidden: int = 256
    system_message: str | None = prompts.INTERNVL_SYSTEM_MESSAGE
    prompt_index: int = 1  # "Rate the aesthetics of this human picture." for scoring
    recipe: str = "humanbeauty"  # what it was trained with (modeling/hae/recipes.py)
    chat_template: str = "humanbeauty"  # prompts.CHAT_TEMPLATES
    regression_head: str = "mlp"  # mlp (heads.RegressionHead) or linear (LinearRegressionHead)
    lora: dict | None = field(default_factory=lambda: asdict(LoraSettings()))
    dimensions: list[str] = field(default_factory=lambda: list(DIMENSION_KEYS))
    levels: list[str] = field(default_factory=lambda: list(LEVELS))
    model_type: str = "hae"
    format: str = FORMAT
    format_version: int = FORMAT_VERSION


@dataclass
class ScoreResult:
    scores: dict[str, float]  # the Expert head's 12 dimensions
    levels: dict[str, str]
    overall: float  # MetaVoter
    heads: dict[str, float]  # each head's overall score (lm, regression, expert)

    def as_dict(self) -> dict:
        return asdict(self)


def read_config(directory: Path) -> dict:
    path = directory / CONFIG_NAME
    if not directory.is_dir() or not path.is_file():
        raise CheckpointNotFoundError(
            f"'{directory}' is not a HumanAesExpert model directory (no {CONFIG_NAME}). Train "
            "one with `python -m modeling.train --data RELEASE --out RUN` (it lands in "
            "RUN/final/) or copy a saved model directory here."
        )
    raw = json.loads(path.read_text())
    if raw.get("format") != FORMAT:
        raise IncompatibleCheckpointError(f"{path}: format {raw.get('format')!r}, not {FORMAT!r}")
    if raw.get("format_version", 0) > FORMAT_VERSION:
        raise IncompatibleCheckpointError(
            f"{path}: format version {raw['format_version']} is newer than this code reads "
            f"({FORMAT_VERSION}); upgrade the code"
        )
    if list(raw.get("dimensions", [])) != list(DIMENSION_KEYS):
        raise IncompatibleCheckpointError(
            f"{path}: trained on dimensions {raw.get('dimensions')}, the standard has "
            f"{list(DIMENSION_KEYS)}"
        )
    if list(raw.get("levels", [])) != list(LEVELS):
        raise IncompatibleCheckpointError(
            f"{path}: levels {raw.get('levels')} differ from {LEVELS}"
        )
    return raw


def load_heads(module: nn.Module, path: Path) -> None:
    """Strict load with a message that lists every missing, unexpected or mis-shaped tensor."""
    if not path.is_file():
        raise CheckpointNotFoundError(f"missing head weights '{path}'")
    saved = load_file(str(path))
    expected = module.state_dict()
    problems = [f"missing {k}" for k in expected if k not in saved]
    problems += [f"unexpected {k}" for k in saved if k not in expected]
    problems += [
        f"{k}: saved {tuple(saved[k].shape)}, model needs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in saved and saved[k].shape != v.shape
    ]
    if problems:
        raise IncompatibleCheckpointError(
            f"{path} does not fit this model: " + "; ".join(problems[:8])
        )
    module.load_state_dict(saved)


@contextmanager
def _quiet_peft() -> Iterator[None]:
    # peft calls a transformers property that transformers 5 deprecates; not our concern.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        yield


def regression_head(kind: str, hidden_size: int, head_hidden: int) -> nn.Module:
    if kind == "mlp":
        return RegressionHead(hidden_size, head_hidden)
    if kind == "linear":
        return LinearRegressionHead(hidden_size)
    raise IncompatibleCheckpointError(f"unknown regression head {kind!r} (mlp or linear)")


class Heads(nn.Module):
    def __init__(
        self, hidden_size: int, head_hidden: int, n_candidates: int, regression: str = "mlp"
    ):
        super().__init__()
        self.regression = regression_head(regression, hidden_size, head_hidden)
        self.expert = ExpertHead(hidden_size, head_hidden)
        self.metavoter = MetaVoter(n_candidates)


class HumanAesExpert(nn.Module):
    candidates = ("lm", "regression", "expert")

    def __init__(self, vlm: nn.Module, backbone: Backbone, config: HaeConfig):
        super().__init__()
        self.vlm = vlm  # InternVLForConditionalGeneration, LoRA-wrapped by peft when trained
        self.backbone_info = backbone
        self.config = config
        self.encoder = backbone.encoder
        self.heads = Heads(
            config.hidden_size, config.head_hidden, len(self.candidates), config.regression_head
        )

    # construction -------------------------------------------------------------------------
    @classmethod
    def from_backbone(
        cls,
        spec: str | Path,
        lora: LoraSettings | None = None,
        head_hidden: int = 256,
        dtype: torch.dtype = torch.float32,
        max_tiles: int | None = None,
        system_message: str | prompts.TemplateSystem | None = prompts.TEMPLATE_SYSTEM,
        allow_download: bool | None = None,
        *,
        chat_template: str = "humanbeauty",
        regression_head: str = "mlp",
        recipe: str = "humanbeauty",
    ) -> HumanAesExpert:
        """A new model on a base checkpoint: fresh heads, fresh LoRA adapters (if ``lora``).
        ``system_message``: by default the chat template's own; None for no system turn."""
        backbone = load_backbone(
            spec, dtype, max_tiles, system_message, allow_download, chat_template=chat_template
        )
        return cls.wrap(
            backbone, lora, head_hidden, regression_head=regression_head, recipe=recipe
        )

    @classmethod
    def wrap(
        cls,
        backbone: Backbone,
        lora: LoraSettings | None = None,
        head_hidden: int = 256,
        *,
        regression_head: str = "mlp",
        recipe: str = "humanbeauty",
    ) -> HumanAesExpert:
        """Fresh heads (and LoRA adapters) around an already loaded backbone."""
        vlm: nn.Module = backbone.model
        for p in vlm.parameters():
            p.requires_grad_(False)
        if lora is not None:
            settings = LoraConfig(
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=lora.targets(vlm),
            )
            with _quiet_peft():
                vlm = get_peft_model(vlm, settings)
        config = HaeConfig(
            backbone=backbone.source,
            hidden_size=backbone.model.config.text_config.hidden_size,
            level_token_ids=list(backbone.encoder.level_token_ids),
            max_tiles=backbone.encoder.tiles.max_tiles,
            head_hidden=head_hidden,
            system_message=backbone.encoder.system_message,
            lora=asdict(lora) if lora else None,
            recipe=recipe,
            chat_template=backbone.encoder.chat_template,
            regression_head=regression_head,
        )
        return cls(vlm, backbone, config)

    @property
    def core(self) -> InternVLForConditionalGeneration:
        """The InternVL model (with LoRA layers injected, if any)."""
        return self.vlm.get_base_model() if isinstance(self.vlm, PeftModel) else self.vlm

    @property
    def device(self) -> torch.device:
        return next(self.heads.parameters()).device

    def lora_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.vlm.named_parameters() if "lora_" in n]

    # forward ------------------------------------------------------------------------------
    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Projected vision-tower features, (tiles, tokens per tile, LLM hidden size)."""
        core = self.core
        dtype = next(core.model.vision_tower.parameters()).dtype
        out = core.model.get_image_features(pixel_values=pixel_values.to(dtype))
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        pixel_values: torch.Tensor | None,
        head_index: torch.Tensor,
        labels: torch.Tensor | None = None,
        lm_index: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The vision tower and the LLM are run as InternVL does (image features replace the
        <IMG_CONTEXT> embeddings), split so that scoring can share one vision pass between the
        overall and the 12-dimension question."""
        core = self.core
        if image_features is None:
            image_features = self.image_features(pixel_values)
        embeds = core.get_input_embeddings()(input_ids)
        slots = input_ids == core.config.image_token_id
        flat = image_features.reshape(-1, embeds.shape[-1])
        if int(slots.sum()) != flat.shape[0]:
            raise ValueError(
                f"{int(slots.sum())} image tokens in the text but {flat.shape[0]} image features"
            )
        embeds = embeds.masked_scatter(slots.unsqueeze(-1), flat.to(embeds.dtype))
        hidden = core.model.language_model(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        ).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        features = hidden[rows, head_index]
        out = {
            "features": features,
            "regression": self.heads.regression(features),
            "expert": self.heads.expert(features),
        }
        if labels is not None:  # logits only where there is an answer token to predict
            select = labels[:, 1:] != -100
            out["lm_logits"] = core.lm_head(hidden[:, :-1][select])
            out["lm_labels"] = labels[:, 1:][select]
        if lm_index is not None:
            logits = core.lm_head(hidden[rows, lm_index])
            out["lm_logits_at_answer"] = logits
            out["lm"], out["lm_probs"] = lm_level_score(logits, self.config.level_token_ids)
        return out

    def run(
        self,
        batch: EncodedBatch,
        train: bool = False,
        image_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        b = batch.to(self.device)
        return self(
            b.input_ids,
            b.attention_mask,
            b.position_ids,
            None if image_features is not None else b.pixel_values,
            b.head_index,
            labels=b.labels if train else None,
            lm_index=b.lm_index,
            image_features=image_features,
        )

    def heads_on(self, overall: EncodedBatch, expert: EncodedBatch) -> dict[str, torch.Tensor]:
        """Both scoring questions on the same images (one vision pass) and the MetaVoter."""
        features = self.image_features(overall.pixel_values.to(self.device))
        first = self.run(overall, image_features=features)
        dims = self.run(expert, image_features=features)["expert"]
        candidates = torch.stack([first["lm"], first["regression"], dims[:, -1]], dim=-1)
        return {
            "lm": first["lm"],
            "regression": first["regression"],
            "expert": dims,
            "metavoter": self.heads.metavoter(candidates.float(), dims.float()),
        }

    # scoring ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        """Every head on a batch: lm, regression, expert (B, 12), metavoter (all on CPU)."""
        overall, expert = self.encoder.encode_scoring_pair(images, self.config.prompt_index)
        return {k: v.float().cpu() for k, v in self.heads_on(overall, expert).items()}

    def score(self, images: Sequence[Image.Image], batch_size: int = 8) -> list[ScoreResult]:
        was_training = self.training
        self.eval()
        results: list[ScoreResult] = []
        try:
            for start in range(0, len(images), batch_size):
                results += results_from_predictions(
                    self.predict(images[start : start + batch_size])
                )
        finally:
            self.train(was_training)
        return results

    @torch.no_grad()
    def generate_expert_text(
        self, images: Sequence[Image.Image], max_new_tokens: int = 200
    ) -> list[str]:
        """The LM head's own 12-line expert answer (text generation)."""
        batch = self.encoder.encode_scoring(
            images, expert=True, prompt_index=self.config.prompt_index
        )
        b = batch.to(self.device)
        dtype = next(self.core.model.vision_tower.parameters()).dtype
        out = self.vlm.generate(
            input_ids=b.input_ids,
            attention_mask=b.attention_mask,
            pixel_values=b.pixel_values.to(dtype),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=self.encoder.eos_id,
            pad_token_id=self.encoder.pad_id,
        )
        new = out[:, b.input_ids.shape[1] :]
        return self.encoder.tokenizer.batch_decode(new, skip_special_tokens=True)

    # persistence --------------------------------------------------------------------------
    def base_state_dict(self) -> dict[str, torch.Tensor]:
        """The backbone's own weights, LoRA layers stripped (they are saved as the adapter)."""
        clean = {}
        for key, value in self.core.state_dict().items():
            if "lora_" in key:
                continue
            clean[key.replace(".base_layer.", ".")] = value
        return clean

    def save_pretrained(self, directory: str | Path, include_base: bool = True) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        config = asdict(self.config)
        config["backbone_saved"] = include_base
        (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        heads = {k: v.detach().cpu().contiguous() for k, v in self.heads.state_dict().items()}
        save_file(heads, str(out / HEADS_NAME))
        if isinstance(self.vlm, PeftModel):
            self.vlm.save_pretrained(str(out / "adapter"))
        if include_base:
            self.core.save_pretrained(out / "backbone", state_dict=self.base_state_dict())
            self.backbone_info.processor.save_pretrained(out / "backbone")
        return out

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        trainable: bool = False,
        allow_download: bool | None = None,
        max_tiles: int | None = None,
    ) -> HumanAesExpert:
        """Load a saved model. ``max_tiles`` overrides the tile budget it was trained with (fewer
        tiles score faster, at some cost in accuracy)."""
        root = Path(directory).expanduser()
        raw = read_config(root)
        known = set(HaeConfig.__dataclass_fields__)
        config = HaeConfig(**{k: v for k, v in raw.items() if k in known})
        base = root / "backbone" if (root / "backbone").is_dir() else config.backbone
        backbone = load_backbone(
            base,
            dtype,
            max_tiles or config.max_tiles,
            config.system_message,
            allow_download,
            chat_template=config.chat_template,
        )
        text = backbone.model.config.text_config
        if text.hidden_size != config.hidden_size:
            raise IncompatibleCheckpointError(
                f"{root}: heads were trained on hidden size {config.hidden_size}, the backbone "
                f"'{base}' has {text.hidden_size}"
            )
        if list(backbone.encoder.level_token_ids) != list(config.level_token_ids):
            raise IncompatibleCheckpointError(
                f"{root}: the backbone's tokenizer maps the level words to "
                f"{list(backbone.encoder.level_token_ids)}, the model was trained with "
                f"{config.level_token_ids}"
            )
        vlm: nn.Module = backbone.model
        for p in vlm.parameters():
            p.requires_grad_(False)
        if (root / "adapter").is_dir():
            try:
                with _quiet_peft():
                    vlm = PeftModel.from_pretrained(
                        vlm, str(root / "adapter"), is_trainable=trainable
                    )
            except (RuntimeError, ValueError, KeyError) as exc:
                raise IncompatibleCheckpointError(
                    f"{root / 'adapter'} does not fit the backbone '{base}': {exc}"
                ) from exc
        elif config.lora:
            raise CheckpointNotFoundError(f"{root}: config names LoRA but adapter/ is missing")
        model = cls(vlm, backbone, config)
        load_heads(model.heads, root / HEADS_NAME)
        return model.to(device).train(trainable)


def results_from_predictions(pred: dict[str, torch.Tensor]) -> list[ScoreResult]:
    results = []
    for i in range(pred["metavoter"].shape[0]):
        dims = [float(v) for v in pred["expert"][i]]
        heads = {k: float(pred[k][i]) for k in ("lm", "regression") if k in pred}
        heads["expert"] = dims[-1]
        results.append(
            ScoreResult(
                scores=dict(zip(DIMENSION_KEYS, dims, strict=True)),
                levels={
                    k: score_to_level(min(max(v, 0.0), 1.0))
                    for k, v in zip(DIMENSION_KEYS, dims, strict=True)
                },
                overall=float(pred["metavoter"][i]),
                heads=heads,
            )
        )
    return results


__all__ = ["HaeConfig", "HumanAesExpert", "LoraSettings", "ScoreResult"]
