"""Load an InternVL-family checkpoint and turn images + prompts into model inputs.

Any transformers-format InternVL checkpoint (``model_type: internvl``, e.g. the ``-hf``
conversions of InternVL2/2.5/3, or a directory written by :mod:`modeling.hae.tiny`) is loaded
with ``from_pretrained`` from a local directory or a hub id. A missing checkpoint is an error that
says how to provide one; there is no fallback to random weights.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoProcessor,
    AutoTokenizer,
    InternVLForConditionalGeneration,
)

from humanbeauty.standard import LEVELS

from . import prompts
from .data import Sample
from .errors import CheckpointNotFoundError, IncompatibleCheckpointError
from .losses import lm_target
from .tiling import IMAGENET_MEAN, IMAGENET_STD, TileSettings, preprocess

HOW_TO_PROVIDE = (
    "Provide a transformers-format InternVL checkpoint (model_type 'internvl', e.g. "
    "OpenGVLab/InternVL3-1B-hf): download it where the hub is reachable "
    "(`huggingface-cli download OpenGVLab/InternVL3-1B-hf --local-dir DIR`), copy DIR here and "
    "pass its path; or pre-fill the Hugging Face cache (HF_HOME) and pass the hub id. "
    "For a smoke test without weights use the random '--backbone tiny'."
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
DEFAULT_IMAGE_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>")


def _download_allowed() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in {"1", "true", "yes"}


def resolve_checkpoint(spec: str | Path, allow_download: bool | None = None) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether it is a local directory)."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise CheckpointNotFoundError(
                f"'{text}' exists but holds no config.json, so it is not a checkpoint directory. "
                + HOW_TO_PROVIDE
            )
        return str(path), True
    if not _HUB_ID.match(text):
        raise CheckpointNotFoundError(f"No checkpoint directory at '{text}'. " + HOW_TO_PROVIDE)
    allow = _download_allowed() if allow_download is None else allow_download
    try:
        AutoConfig.from_pretrained(text, local_files_only=not allow)
    except OSError as exc:
        where = "the local Hugging Face cache" if not allow else "the hub or the local cache"
        raise CheckpointNotFoundError(
            f"Checkpoint '{text}' is neither a local directory nor in {where}. " + HOW_TO_PROVIDE
        ) from exc
    return text, False


@dataclass
class EncodedBatch:
    """Left-padded model inputs; row i's answer position is ``head_index[i]``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    pixel_values: torch.Tensor
    head_index: torch.Tensor  # last prompt token: the heads read the hidden state here
    lm_index: torch.Tensor | None = None  # scoring: position whose logits give the level word
    labels: torch.Tensor | None = None  # training: LM target ids, -100 elsewhere
    targets: torch.Tensor | None = None  # (B, 12) scores, 0 where absent
    mask: torch.Tensor | None = None  # (B, 12) bool, True where supervised
    is_expert: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> EncodedBatch:
        moved = {
            k: (v.to(device) if isinstance(v, torch.Tensor) else v)
            for k, v in self.__dict__.items()
        }
        return EncodedBatch(**moved)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass
class PromptEncoder:
    """Tokenises prompts and answers and tiles images; picklable for DataLoader workers."""

    tokenizer: object
    tiles: TileSettings
    image_seq_length: int
    image_token_ids: tuple[int, int, int]  # <img>, </img>, <IMG_CONTEXT>
    eos_id: int
    pad_id: int
    level_token_ids: tuple[int, ...]
    system_message: str | None = prompts.INTERNVL_SYSTEM_MESSAGE  # None: no system turn
    chat_template: str = "humanbeauty"  # prompts.CHAT_TEMPLATES
    prefix_ids: tuple[int, ...] = ()  # put before the chat (the official template's BOS)

    def _text(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _chat_parts(self, expert: bool, prompt_index: int) -> tuple[str, str]:
        """The chat text before and after the image block."""
        template = prompts.chat_template(self.chat_template)
        chat = template.render(prompts.query(expert, prompt_index), self.system_message or "")
        before, after = chat.split(prompts.IMAGE_PLACEHOLDER)
        return before, after

    def prompt_text(self, expert: bool, prompt_index: int, n_tiles: int) -> str:
        """The prompt as text, image-context tokens written out (what :meth:`prompt_ids`
        tokenises, less :attr:`prefix_ids`)."""
        before, after = self._chat_parts(expert, prompt_index)
        tokens = self.tokenizer.convert_ids_to_tokens(list(self.image_token_ids))
        block = prompts.chat_template(self.chat_template).image_block(
            tokens[2] * (self.image_seq_length * n_tiles)
        )
        return before + block + after

    def prompt_ids(self, expert: bool, prompt_index: int, n_tiles: int) -> list[int]:
        before, after = self._chat_parts(expert, prompt_index)
        start, end, context = self.image_token_ids
        image = [start] + [context] * (self.image_seq_length * n_tiles) + [end]
        after = prompts.chat_template(self.chat_template).after_image + after
        return [*self.prefix_ids, *self._text(before), *image, *self._text(after)]

    def pixels(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, list[int]]:
        tensors = [preprocess(im, self.tiles) for im in images]
        return torch.cat(tensors), [t.shape[0] for t in tensors]

    @staticmethod
    def _pad_left(rows: list[list[int]], fill: int) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), fill, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        return ids, mask

    def _assemble(
        self, rows: list[list[int]], heads: list[int], pixel_values: torch.Tensor
    ) -> EncodedBatch:
        ids, attention = self._pad_left(rows, self.pad_id)
        width = ids.shape[1]
        offsets = [width - len(r) for r in rows]
        # Left padding: positions count real tokens only, so padding does not shift RoPE.
        position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
        head = torch.tensor([o + h for o, h in zip(offsets, heads, strict=True)])
        return EncodedBatch(ids, attention, position_ids, pixel_values, head)

    def encode_scoring(
        self,
        images: Sequence[Image.Image],
        expert: bool,
        prompt_index: int = 0,
        pixels: tuple[torch.Tensor, list[int]] | None = None,
    ) -> EncodedBatch:
        """Overall queries end with the answer prefix, so the last position's logits score the
        level word; the heads read the last prompt token (the same context as in training)."""
        pixel_values, n_tiles = pixels if pixels is not None else self.pixels(images)
        suffix = [] if expert else self._text(prompts.OVERALL_ANSWER_PREFIX)
        rows, heads = [], []
        for n in n_tiles:
            prompt = self.prompt_ids(expert, prompt_index, n)
            rows.append(prompt + suffix)
            heads.append(len(prompt) - 1)
        batch = self._assemble(rows, heads, pixel_values)
        if not expert:
            batch.lm_index = torch.full((len(rows),), batch.input_ids.shape[1] - 1)
        return batch

    def encode_scoring_pair(
        self, images: Sequence[Image.Image], prompt_index: int = 0
    ) -> tuple[EncodedBatch, EncodedBatch]:
        """The overall and the 12-dimension question on the same images, tiled once."""
        pixels = self.pixels(images)
        return (
            self.encode_scoring(images, False, prompt_index, pixels),
            self.encode_scoring(images, True, prompt_index, pixels),
        )

    def encode_training(
        self, images: Sequence[Image.Image], samples: Sequence[Sample], rng: random.Random
    ) -> EncodedBatch:
        """Prompt drawn at random per sample (overall or 12-dim by ``is_expert``); the answer
        text is the LM target, followed by the end-of-turn token."""
        pixel_values, n_tiles = self.pixels(images)
        rows, heads, label_rows = [], [], []
        for sample, n in zip(samples, n_tiles, strict=True):
            prompt = self.prompt_ids(sample.is_expert, rng.randrange(5), n)
            answer = [*self._text(lm_target(sample)), self.eos_id]
            rows.append(prompt + answer)
            heads.append(len(prompt) - 1)
            label_rows.append([-100] * len(prompt) + answer)
        batch = self._assemble(rows, heads, pixel_values)
        batch.labels, _ = self._pad_left(label_rows, -100)
        batch.targets = torch.tensor([s.target_vector() for s in samples], dtype=torch.float32)
        batch.mask = torch.tensor([s.target_mask() for s in samples], dtype=torch.bool)
        batch.is_expert = torch.tensor([s.is_expert for s in samples], dtype=torch.bool)
        return batch


def _token_id(tokenizer, token: str) -> int:
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or tid == tokenizer.unk_token_id:
        raise IncompatibleCheckpointError(f"the tokenizer has no token {token!r}")
    return int(tid)


def level_token_ids(tokenizer) -> tuple[int, ...]:
    """For each level, the first token of the word where the answer has it: right after the
    answer prefix. Read in context, so SentencePiece tokenizers (InternLM2), which give a
    stand-alone " good" a dummy-prefix token of its own, yield the word's token too."""
    prefix = tokenizer.encode(prompts.OVERALL_ANSWER_PREFIX, add_special_tokens=False)
    found = []
    for level in LEVELS:
        full = tokenizer.encode(prompts.overall_answer(level), add_special_tokens=False)
        if full[: len(prefix)] != prefix or len(full) == len(prefix):
            raise IncompatibleCheckpointError(
                f"the tokenizer splits the answer prefix differently before {level!r}"
            )
        found.append(int(full[len(prefix)]))
    ids = tuple(found)
    if len(set(ids)) != len(ids):
        raise IncompatibleCheckpointError(
            f"the tokenizer maps the level words {LEVELS} to clashing first tokens {ids}"
        )
    return ids


def build_encoder(
    model: InternVLForConditionalGeneration,
    processor_or_tokenizer,
    max_tiles: int | None = None,
    system_message: str | prompts.TemplateSystem | None = prompts.TEMPLATE_SYSTEM,
    chat_template: str = "humanbeauty",
) -> PromptEncoder:
    """``system_message``: None for no system turn; by default the chat template's own."""
    template = prompts.chat_template(chat_template)
    tokenizer = getattr(processor_or_tokenizer, "tokenizer", processor_or_tokenizer)
    image_processor = getattr(processor_or_tokenizer, "image_processor", None)
    config = model.config
    vision = config.vision_config
    tile = int(vision.image_size[0])
    patches = (tile // int(vision.patch_size[0])) ** 2
    seq_len = round(patches * config.downsample_ratio**2)
    names = tuple(
        getattr(tokenizer, attr, None) or default
        for attr, default in zip(
            ("start_image_token", "end_image_token", "context_image_token"),
            DEFAULT_IMAGE_TOKENS,
            strict=True,
        )
    )
    image_ids = tuple(_token_id(tokenizer, t) for t in names)
    if image_ids[2] != config.image_token_id:
        raise IncompatibleCheckpointError(
            f"the tokenizer's image context token id {image_ids[2]} differs from the model's "
            f"image_token_id {config.image_token_id}"
        )
    if max_tiles is None:
        crop = getattr(image_processor, "crop_to_patches", False)
        max_tiles = int(getattr(image_processor, "max_patches", 12)) if crop else 12
    mean = tuple(getattr(image_processor, "image_mean", None) or IMAGENET_MEAN)
    std = tuple(getattr(image_processor, "image_std", None) or IMAGENET_STD)
    tiles = TileSettings(tile_size=tile, max_tiles=max_tiles, mean=mean, std=std)
    im_end = tokenizer.convert_tokens_to_ids(prompts.IM_END)
    eos = im_end if im_end not in (None, tokenizer.unk_token_id) else tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    prefix: tuple[int, ...] = ()
    bos = tokenizer.bos_token_id
    if template.auto_add_bos and isinstance(bos, int) and bos in tokenizer.encode(""):
        prefix = (bos,)
    return PromptEncoder(
        tokenizer=tokenizer,
        tiles=tiles,
        image_seq_length=seq_len,
        image_token_ids=image_ids,  # type: ignore[arg-type]
        eos_id=int(eos),
        pad_id=int(pad),
        level_token_ids=level_token_ids(tokenizer),
        system_message=prompts.system_for(template, system_message),
        chat_template=template.name,
        prefix_ids=prefix,
    )


@dataclass
class Backbone:
    model: InternVLForConditionalGeneration
    processor: object
    encoder: PromptEncoder
    source: str  # what it was loaded from (directory or hub id)


def load_processor(source: str, local_only: bool):
    try:
        return AutoProcessor.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError, TypeError):
        # Some checkpoints ship only a tokenizer; tiling then uses the model config's tile size.
        return AutoTokenizer.from_pretrained(source, local_files_only=local_only)


def load_backbone(
    spec: str | Path,
    dtype: torch.dtype = torch.float32,
    max_tiles: int | None = None,
    system_message: str | prompts.TemplateSystem | None = prompts.TEMPLATE_SYSTEM,
    allow_download: bool | None = None,
    chat_template: str = "humanbeauty",
) -> Backbone:
    source, local = resolve_checkpoint(spec, allow_download)
    local_only = local or not (_download_allowed() if allow_download is None else allow_download)
    config_path = Path(source) / "config.json"
    if local:
        model_type = json.loads(config_path.read_text()).get("model_type")
        if model_type != "internvl":
            raise IncompatibleCheckpointError(
                f"'{source}' holds a '{model_type}' model; HumanAesExpert needs an InternVL "
                "checkpoint in transformers format (model_type 'internvl'; the original "
                "OpenGVLab/InternVL2-* and HumanAesExpert repos use remote code: convert "
                "them with `python -m modeling.convert_official SRC DST`)."
            )
    model = InternVLForConditionalGeneration.from_pretrained(
        source, dtype=dtype, local_files_only=local_only
    )
    processor = load_processor(source, local_only)
    encoder = build_encoder(model, processor, max_tiles, system_message, chat_template)
    return Backbone(model=model, processor=processor, encoder=encoder, source=source)


__all__ = [
    "Backbone",
    "EncodedBatch",
    "PromptEncoder",
    "build_encoder",
    "load_backbone",
    "resolve_checkpoint",
]
