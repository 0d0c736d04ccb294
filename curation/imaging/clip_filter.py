"""CLIP zero-shot filters of the "people" stage: is there a person, is the picture inappropriate.

The paper kept images with a person in them (its face detector, `faces`); CLIP adds a screen
that also sees people without a visible face (back views, small figures) and one for content
that has no place in a rating pool. Both are zero-shot: no training, only text prompts.

Loading (`load_clip`) is the project's one CLIP loader, `humanbeauty.clip.load_clip` (the Lite
model uses it too): open_clip's own loading path from a local weights file or a pretrained tag
already in the local cache, no download unless `allow_download` is set, and no fallback to
random weights: without a usable checkpoint it raises `ClipUnavailable`, whose message says how
to provide one or to turn CLIP off.

Scoring (`ClipFilter.score`)
----------------------------
Each question is a softmax over two classes, each class a few prompt templates whose normalised
text embeddings are averaged and renormalised (CLIP's prompt ensembling: each class stays one
point, so the number of prompts does not shift the prior). The text side is encoded once, when
the filter is built; an image costs one `encode_image` and a (4 x D) matrix product.
`person` is P("person" | image) against "no person"; `inappropriate` is P("inappropriate")
against "safe". The default prompts and the 0.5 thresholds (the neutral point of a two-way
softmax) are a starting point: calibrate them on a labelled sample with the real checkpoint.

Speed: the model dominates (ViT-B-32 on CPU runs a few images/s per core), so the stage's job is
to keep it fed without taking its cores. Images are decoded in a thread pool one or two batches
ahead of the model (PIL's decoder and resampler release the GIL). JPEGs are decoded with PIL's
draft mode straight at the smallest 1/2^n scale whose short side is still >= `draft_factor` x
the model's input side, as `hashing` does: libjpeg skips most of the IDCT and the resize runs on
a frame up to 64x smaller. The decode threads stop at uint8 pixels; the float conversion and
normalisation run once per batch next to the model (`split_preprocess`), so no torch work in
the decode threads competes with the model's.

Measured (`benchmarks/clip_filter.py`, 2.7 Mpx JPEGs, ViT-B-32, 2 cores, quiet run): bare model
18.8 images/s on ready tensors; the stage 16.7 (89 %); without prefetch 84 %; without the
draft 62 %; decoding + preprocessing alone 119 images/s on one thread. On two cores the model
keeps both busy, so what the stage loses is the decode thread's CPU time, not waiting.
`draft_factor` 1 moves the model input by 0.56 grey levels in 255 on average against a
full-size decode (max 0.71 over the files), less than re-saving the JPEG at quality 75 does
(0.68); `draft_factor` 2 moves it by 0.21 but decodes four times the pixels. The source
datasets are themselves JPEGs saved at such qualities, so the default is 1 (raise it if a
calibration with the real checkpoint says otherwise).

`torch.set_num_threads` is the caller's business (a Celery worker sets it to its share of
cores); nothing here changes it.
"""

from __future__ import annotations

import argparse
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from curation.imaging.hashing import apply_draft
from curation.imaging.validate import (
    DEFAULT_MAX_PIXELS,
    FileOutcome,
    InvalidImage,
    PathOrFile,
    Reason,
    open_image,
    read_bytes,
)
from humanbeauty.clip import ClipUnavailable, LoadedClip
from humanbeauty.clip import load_clip as _load_clip

# Rejection reasons this stage adds (the job report's contract, next to validate.Reason).
NO_PERSON = "no_person"
INAPPROPRIATE = "inappropriate"

PERSON_PROMPTS: tuple[str, ...] = (
    "a photo of a person.",
    "a photo of people.",
    "a portrait of a person.",
    "a photo of a man.",
    "a photo of a woman.",
    "a full-body photo of a person.",
)
NO_PERSON_PROMPTS: tuple[str, ...] = (
    "a photo with no people in it.",
    "a photo of an empty landscape.",
    "a photo of an object.",
    "a photo of an empty room.",
    "a photo of an animal.",
    "a photo of food.",
)
INAPPROPRIATE_PROMPTS: tuple[str, ...] = (
    "a sexually explicit photo.",
    "a pornographic image.",
    "a photo of nudity.",
    "a photo of graphic violence.",
    "a gory photo with blood and injuries.",
)
SAFE_PROMPTS: tuple[str, ...] = (
    "a safe for work photo.",
    "an ordinary everyday photo.",
    "a photo of a fully clothed person.",
    "a family friendly photo.",
)

ImageInput = PathOrFile | Image.Image


HOW_TO_PROVIDE = (
    "Provide a local open_clip weights file (.pt, .bin or .safetensors) for this model as the "
    "checkpoint (the CLIP_CHECKPOINT setting or the job's clip.checkpoint), or a pretrained tag "
    "whose weights are already in the local cache; or turn CLIP off for the job (--no-clip)."
)


@dataclass(frozen=True)
class ClipFilterConfig:
    """What a job's configuration says about CLIP (plain values: it is kept in the snapshot)."""

    model: str  # open_clip model name, e.g. "ViT-B-32" (or a config registered by the caller)
    checkpoint: str | None  # local weights file, or a pretrained tag found in the local cache
    person_threshold: float = 0.5  # "no_person" when P(person) < this
    inappropriate_threshold: float = 0.5  # "inappropriate" when P(inappropriate) > this
    batch_size: int = 32
    device: str = "cpu"
    # Threads decoding images ahead of the model; 0 decodes in the calling thread.
    decode_workers: int = 1
    prefetch_batches: int = 2  # batches queued for decoding ahead of the one the model runs
    # JPEG draft: decode at the smallest 1/2^n scale whose short side >= this x the input side.
    draft_factor: float = 1.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    allow_download: bool = False  # let open_clip fetch a tag's weights (never on build machines)
    cache_dir: str | None = None  # open_clip / Hugging Face cache to look a tag up in
    person_prompts: tuple[str, ...] = PERSON_PROMPTS
    no_person_prompts: tuple[str, ...] = NO_PERSON_PROMPTS
    inappropriate_prompts: tuple[str, ...] = INAPPROPRIATE_PROMPTS
    safe_prompts: tuple[str, ...] = SAFE_PROMPTS

    def __post_init__(self) -> None:
        for name in ("person_threshold", "inappropriate_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], not {value}")
        if self.batch_size < 1 or self.decode_workers < 0 or self.prefetch_batches < 1:
            raise ValueError("batch_size and prefetch_batches must be >= 1, decode_workers >= 0")
        if self.draft_factor < 1.0:
            raise ValueError("draft_factor must be >= 1 (a draft smaller than the input loses "
                             "detail the model would see)")
        for name in ("person_prompts", "no_person_prompts", "inappropriate_prompts",
                     "safe_prompts"):
            prompts = getattr(self, name)
            if isinstance(prompts, str) or not prompts:
                raise ValueError(f"{name} must be a non-empty sequence of prompts")
            object.__setattr__(self, name, tuple(prompts))  # lists from a JSON config


@dataclass(frozen=True)
class ClipScores:
    person: float  # P(person) against "no person", in [0, 1]
    inappropriate: float  # P(inappropriate) against "safe", in [0, 1]


class ClipOutcome(FileOutcome[ClipScores]):
    """One file of `ClipFilter.score_files`: `scores`, or the reason it could not be scored."""

    @property
    def scores(self) -> ClipScores | None:
        return self.value


def reasons_for(scores: ClipScores, config: ClipFilterConfig) -> list[str]:
    """The rejection reasons these scores earn under the config's thresholds."""
    reasons: list[str] = []
    if scores.person < config.person_threshold:
        reasons.append(NO_PERSON)
    if scores.inappropriate > config.inappropriate_threshold:
        reasons.append(INAPPROPRIATE)
    return reasons


# --- loading ----------------------------------------------------------------------------------


def load_clip(config: ClipFilterConfig) -> LoadedClip:
    """The job's CLIP through the one loader (`humanbeauty.clip.load_clip`); ClipUnavailable,
    never random weights, when the checkpoint is missing or unusable."""
    return _load_clip(
        config.model,
        config.checkpoint,
        device=config.device,
        cache_dir=config.cache_dir,
        allow_download=config.allow_download,
        how_to_provide=HOW_TO_PROVIDE,
    )


# --- decoding ---------------------------------------------------------------------------------


def input_side(model: torch.nn.Module) -> int:
    """Short side of the model's square input (224 for ViT-B-32)."""
    from open_clip import get_model_preprocess_cfg

    size: Any = get_model_preprocess_cfg(model).get("size")
    if size is None:
        size = getattr(getattr(model, "visual", None), "image_size", 224)
    return int(min(size) if isinstance(size, list | tuple) else size)


def decode_rgb(
    source: ImageInput, *, min_side: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """An RGB picture, upright (EXIF orientation applied), JPEGs drafted to >= min_side.

    Raises InvalidImage for anything that is not a sound image (the same guards as `hashing`).
    """
    if isinstance(source, Image.Image):
        return source if source.mode == "RGB" else source.convert("RGB")
    img = open_image(read_bytes(source), max_pixels=max_pixels)
    try:
        with img:
            if min_side:
                apply_draft(img, min_side, "RGB")
            img.load()
            upright = ImageOps.exif_transpose(img)  # a new image, upright
            return upright if upright.mode == "RGB" else upright.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(Reason.CORRUPT, f"the image cannot be decoded: {exc}") from None


# --- scoring ----------------------------------------------------------------------------------


def _batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def split_preprocess(
    preprocess: Callable[[Image.Image], torch.Tensor],
) -> tuple[Callable[[Image.Image], Image.Image], torch.Tensor, torch.Tensor] | None:
    """(the PIL steps, mean, std) of an open_clip eval transform, or None if it is another kind.

    open_clip's eval transform is PIL steps (resize, crop, RGB), then ToTensor, then Normalize.
    Split there, a decode thread only runs the PIL steps and hands over uint8 pixels; the
    float conversion and normalisation run once per batch, vectorised, where the model runs
    (on the GPU when there is one, with a quarter of the bytes to copy). Anything else is
    applied as a whole, per image.
    """
    from torchvision.transforms import Compose

    steps = list(getattr(preprocess, "transforms", None) or [])
    names = [type(t).__name__ for t in steps]
    cut = next((i for i, name in enumerate(names) if name in ("ToTensor", "MaybeToTensor")), None)
    if cut is None or names[cut + 1:] != ["Normalize"]:
        return None
    norm = steps[cut + 1]
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32).view(-1, 1, 1)
    if mean.shape[0] != 3 or std.shape[0] != 3:
        return None
    return Compose(steps[:cut]), mean, std


class ClipFilter:
    """Zero-shot person / inappropriate scores for batches of images.

    `ClipFilter(load_clip(config), config)`; reuse one instance (the text side is encoded once).
    Not meant to be shared by threads that score at the same time: give each its own.
    """

    def __init__(self, loaded: LoadedClip, config: ClipFilterConfig) -> None:
        self.config = config
        self.model = loaded.model.eval()
        self.preprocess = loaded.preprocess
        self.device = torch.device(config.device)
        first = next(self.model.parameters())
        self._dtype = first.dtype if first.is_floating_point() else torch.float32
        self.input_side = input_side(self.model)
        self.draft_side = round(config.draft_factor * self.input_side)
        split = split_preprocess(loaded.preprocess)
        self._pil_steps = split[0] if split else None
        # Normalize's (x / 255 - mean) / std as (x - 255 mean) / (255 std), on uint8 input.
        self._offset = split[1] * 255 if split else None
        self._scale = split[2] * 255 if split else None
        classes = (config.person_prompts, config.no_person_prompts,
                   config.inappropriate_prompts, config.safe_prompts)
        self.text_features = self._encode_classes(loaded.tokenizer, classes)  # (4, D)
        scale = getattr(self.model, "logit_scale", None)  # learned temperature, capped as CLIP's
        self.logit_scale = float(scale.detach().exp().clamp(max=100)) if scale is not None \
            else 100.0

    @torch.inference_mode()
    def _encode_classes(
        self, tokenizer: Callable[[Sequence[str]], torch.Tensor], classes: Sequence[Sequence[str]]
    ) -> torch.Tensor:
        """One unit vector per class: the renormalised mean of its prompts' unit embeddings."""
        prompts = [p for group in classes for p in group]
        tokens = tokenizer(prompts).to(self.device)
        feats = self.model.encode_text(tokens, normalize=True).float()
        out, start = [], 0
        for group in classes:
            mean = feats[start:start + len(group)].mean(dim=0)
            out.append(mean / mean.norm())
            start += len(group)
        return torch.stack(out)

    def _load(self, source: ImageInput) -> torch.Tensor:
        """Decode one image: uint8 (3, S, S) on the fast path, else the preprocessed floats."""
        img = decode_rgb(source, min_side=self.draft_side, max_pixels=self.config.max_pixels)
        if self._pil_steps is None:
            return self.preprocess(img)
        img = self._pil_steps(img)
        if img.mode != "RGB":
            img = img.convert("RGB")
        return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)

    def _model_input(self, loaded: torch.Tensor) -> torch.Tensor:
        """A batch of `_load` results, stacked, on the device as the model's float input."""
        x = loaded.to(self.device, non_blocking=True)
        if self._offset is None or x.dtype != torch.uint8:
            return x.to(self._dtype)
        offset, scale = self._offset.to(x.device), self._scale.to(x.device)
        return x.to(torch.float32).sub_(offset).div_(scale).to(self._dtype)

    def prepare(self, source: ImageInput) -> torch.Tensor:
        """Decode and preprocess one image into the model's float (3, S, S) input, on the CPU.

        Raises InvalidImage. The same numbers as `self.preprocess` on the decoded image.
        """
        return self._model_input(self._load(source).unsqueeze(0))[0].cpu()

    @torch.inference_mode()
    def score_tensors(self, batch: torch.Tensor) -> list[ClipScores]:
        """Scores of a batch of model inputs (B, 3, S, S), as `prepare` makes them."""
        x = batch.to(self.device, dtype=self._dtype, non_blocking=True)
        feats = self.model.encode_image(x, normalize=True).float()
        logits = self.logit_scale * feats @ self.text_features.T  # (B, 4)
        person = logits[:, 0:2].softmax(dim=1)[:, 0]
        inappropriate = logits[:, 2:4].softmax(dim=1)[:, 0]
        return [ClipScores(float(p), float(q))
                for p, q in zip(person.tolist(), inappropriate.tolist(), strict=True)]

    def _loaded_batches(
        self, images: Iterable[ImageInput]
    ) -> Iterator[list[torch.Tensor | InvalidImage | OSError]]:
        """Batches of decoded images (or the error of each bad one), decoded ahead.

        With decode_workers > 0, `prefetch_batches` batches are being decoded by the pool while
        the caller runs the model on the current one: a DataLoader without worker processes,
        which a Celery prefork worker could not start anyway (its children are daemonic).
        """

        def load(source: ImageInput) -> torch.Tensor | InvalidImage | OSError:
            try:
                return self._load(source)
            except (InvalidImage, OSError) as exc:
                return exc

        batches = _batched(images, self.config.batch_size)
        if self.config.decode_workers == 0:
            for batch in batches:
                yield [load(s) for s in batch]
            return
        pool = ThreadPoolExecutor(self.config.decode_workers, thread_name_prefix="clip-decode")
        pending: deque[list[Future]] = deque()
        try:
            for batch in batches:
                pending.append([pool.submit(load, s) for s in batch])
                if len(pending) > self.config.prefetch_batches:
                    yield [f.result() for f in pending.popleft()]
            while pending:
                yield [f.result() for f in pending.popleft()]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run(
        self, images: Iterable[ImageInput]
    ) -> Iterator[ClipScores | InvalidImage | OSError]:
        for loaded in self._loaded_batches(images):
            good = [t for t in loaded if isinstance(t, torch.Tensor)]
            scores = iter(self.score_tensors(self._model_input(torch.stack(good)))
                          if good else [])
            for t in loaded:
                yield next(scores) if isinstance(t, torch.Tensor) else t

    def score(self, images: Iterable[ImageInput]) -> list[ClipScores]:
        """Scores of images (paths, file objects or PIL images), in order.

        Raises InvalidImage (or OSError for an unreadable file) at the first bad image; use
        `score_files` to get an outcome per file instead.
        """
        out: list[ClipScores] = []
        for result in self._run(images):
            if isinstance(result, Exception):
                raise result
            out.append(result)
        return out

    def score_files(self, paths: Iterable[str | Path]) -> list[ClipOutcome]:
        """One outcome per file, in order; a bad file is an outcome, not an error."""
        paths = [str(p) for p in paths]
        outcomes = []
        for path, result in zip(paths, self._run(paths), strict=True):
            if isinstance(result, InvalidImage | OSError):
                outcomes.append(ClipOutcome.refused(path, result))
            else:
                outcomes.append(ClipOutcome(path, result))
        return outcomes


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("CLIP_MODEL", "ViT-B-32"))
    parser.add_argument("--checkpoint", default=os.environ.get("CLIP_CHECKPOINT") or None,
                        help="local weights file (default: $CLIP_CHECKPOINT)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = ClipFilterConfig(model=args.model, checkpoint=args.checkpoint,
                              batch_size=args.batch_size)
    try:
        clip = ClipFilter(load_clip(config), config)
    except ClipUnavailable as exc:
        parser.exit(2, f"error: {exc}\n")
    print("path\tperson\tinappropriate\treasons")
    for o in clip.score_files(args.files):
        if o.scores is None:
            print(f"{o.path}\t-\t-\t{o.reason}: {o.message}")
        else:
            reasons = ",".join(reasons_for(o.scores, config)) or "-"
            print(f"{o.path}\t{o.scores.person:.4f}\t{o.scores.inappropriate:.4f}\t{reasons}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
