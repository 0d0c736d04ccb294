"""The ``tiny`` smoke-test backbone: a small *random* InternVL with an offline tokenizer.

It exists so that the whole pipeline (tokenise, tile, train with LoRA, save, load, score) can be
run on a CPU with nothing downloaded. Its scores mean nothing. It is built explicitly (``--backbone
tiny``), written to a directory with ``save_pretrained`` and loaded back through the same
``from_pretrained`` path as a real checkpoint; nothing falls back to it.

- Tokenizer: byte-level BPE (as Qwen2 uses) trained with ``tokenizers`` on a small corpus made of
  the prompts, the answer texts, the level words and the 12 dimension names, wrapped as a
  transformers fast tokenizer with ChatML markers and the image tokens the InternVL processor
  needs (``<img>``, ``</img>``, ``<IMG_CONTEXT>``, ``<video>``).
- Model: ``InternVLForConditionalGeneration`` from an ``InternVLConfig`` (tiny InternViT + tiny
  Qwen2). ``size="1b"`` gives an InternVL2-1B-shaped random config (InternViT-300M + Qwen2-0.5B)
  for GPU benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GotOcr2ImageProcessor,
    InternVLConfig,
    InternVLForConditionalGeneration,
    InternVLProcessor,
    InternVLVideoProcessor,
    PreTrainedTokenizerFast,
)

from humanbeauty.standard import DIMENSIONS, LEVELS

from . import prompts
from .tiling import IMAGENET_MEAN, IMAGENET_STD

PAD = "<|endoftext|>"
IMAGE_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
SPECIAL_TOKENS = [PAD, prompts.IM_START, prompts.IM_END, *IMAGE_TOKENS.values()]

# (vision, text) shapes. "1b" follows InternVL2-1B: InternViT-300M-448px and Qwen2-0.5B.
SIZES: dict[str, tuple[dict, dict]] = {
    "tiny": (
        dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
        dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
        ),
    ),
    "1b": (
        dict(
            hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
        ),
        dict(
            hidden_size=896,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            intermediate_size=4864,
            vocab_size=151_674,
        ),
    ),
}
TINY_TILE_SIZE = 56  # 4x4 patches of 14 px -> 4 image tokens per tile after pixel shuffle


def corpus() -> list[str]:
    """Every text the model reads or writes, repeated so that BPE merges whole words."""
    lines: list[str] = [prompts.INTERNVL_SYSTEM_MESSAGE, prompts.NOT_APPLICABLE]
    lines += [
        prompts.chat_prompt(prompts.query(e, i), None) for e in (False, True) for i in range(5)
    ]
    lines += [prompts.overall_answer(level) for level in LEVELS]
    for level in LEVELS:
        lines.append(" ".join(f"{d.index}. {d.name} : {level}" for d in DIMENSIONS))
    lines += [f"{d.key} {d.name}" for d in DIMENSIONS]
    lines.append(" ".join(LEVELS))
    return lines * 20


def build_tokenizer(vocab_size: int = 600) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=prompts.IM_END,
        pad_token=PAD,
        extra_special_tokens=dict(IMAGE_TOKENS),
        model_max_length=8192,
    )
    # LM-head scoring reads one logit per level word, so each must be a single token.
    for level in LEVELS:
        ids = fast.encode(" " + level, add_special_tokens=False)
        if len(ids) != 1:
            raise RuntimeError(f"tiny tokenizer split level {level!r} into {ids}; enlarge vocab")
    return fast


def internvl_config(
    size: str, vocab_size: int, image_token_id: int, tile_size: int
) -> InternVLConfig:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
    vision, text = (dict(d) for d in SIZES[size])
    text.setdefault("vocab_size", vocab_size)
    if text["vocab_size"] < vocab_size:
        raise ValueError("text vocab smaller than the tokenizer")
    return InternVLConfig(
        vision_config=dict(vision, image_size=tile_size, patch_size=14),
        text_config=dict(text, model_type="qwen2", max_position_embeddings=8192),
        image_token_id=image_token_id,
        image_seq_length=(tile_size // 14) ** 2 // 4,
        downsample_ratio=0.5,
    )


def build_processor(
    tokenizer: PreTrainedTokenizerFast, tile_size: int, max_tiles: int, image_seq_length: int
) -> InternVLProcessor:
    image_processor = GotOcr2ImageProcessor(
        size={"height": tile_size, "width": tile_size},
        crop_to_patches=True,
        min_patches=1,
        max_patches=max_tiles,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
    return InternVLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=InternVLVideoProcessor(),
        image_seq_length=image_seq_length,
    )


def build_random_internvl(
    out_dir: str | Path,
    size: str = "tiny",
    tile_size: int | None = None,
    max_tiles: int = 12,
    seed: int = 0,
) -> Path:
    """Write a random InternVL checkpoint (model + processor) to ``out_dir`` and return it."""
    out = Path(out_dir)
    tile = tile_size or (TINY_TILE_SIZE if size == "tiny" else 448)
    tokenizer = build_tokenizer()
    config = internvl_config(size, len(tokenizer), tokenizer.context_image_token_id, tile)
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    build_processor(tokenizer, tile, max_tiles, config.image_seq_length).save_pretrained(out)
    return out


def random_backbone(
    size: str = "tiny",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    max_tiles: int = 12,
    seed: int = 0,
):
    """A random backbone built in memory on ``device`` (no disk round trip): for benchmarks of
    large shapes, where writing and re-reading random weights would only cost time."""
    from .backbone import Backbone, build_encoder

    tile = TINY_TILE_SIZE if size == "tiny" else 448
    tokenizer = build_tokenizer()
    config = internvl_config(size, len(tokenizer), tokenizer.context_image_token_id, tile)
    torch.manual_seed(seed)
    with torch.device(device):
        model = InternVLForConditionalGeneration(config).to(dtype)
    processor = build_processor(tokenizer, tile, max_tiles, config.image_seq_length)
    encoder = build_encoder(model, processor, max_tiles)
    return Backbone(model=model, processor=processor, encoder=encoder, source=f"random:{size}")


def build_tiny_checkpoint(out_dir: str | Path, seed: int = 0, max_tiles: int = 12) -> Path:
    return build_random_internvl(out_dir, "tiny", max_tiles=max_tiles, seed=seed)
