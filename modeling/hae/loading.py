"""Scoring input off the main thread: read, decode, tile and tokenise in loader workers, batch
the images, and hand the model pinned uint8 tiles that the device normalises.

``score_items(model, items, decode=..., workers=N)`` and ``predict_batches(...)`` take
``(key, source)`` pairs (a path or the file's bytes; the key is whatever the caller needs back)
and answer in the items' order. One item is one image; a batch concatenates its images' tiles
(variable counts per image) and keeps each image's count, as ``PromptEncoder.pixels`` does.

- ``workers=0``: everything in the calling thread (the previous, serial pipeline).
- ``workers=N``: a ``torch.utils.data.DataLoader`` with N worker processes, each producing a
  whole batch (decode, tile to uint8, tokenise both scoring questions), ``prefetch`` batches
  ahead each, pinned memory and non-blocking copies when the model is on a GPU. Inside a
  daemonic process (a Celery prefork child, which may not have children) the same work runs in
  N threads instead: PIL's decoder and resampler release the GIL.
- ``device_tiling=True``: workers only decode; the decoded uint8 image goes to the model's
  device, which tiles it (:func:`tiling.tile_tensor`, within a stated tolerance of the PIL
  tiles). Off by default: the PIL tiling is the reference.

Normalising uint8 tiles on the device is bit-identical to normalising on the CPU
(:func:`tiling.normalise`), so with CPU tiling the scores equal ``model.score(images)``'s for any
number of workers. A file that does not decode is answered as an error for its key (the batch
goes on); the exceptions that count as bad input are the caller's ``bad_input``.
"""

from __future__ import annotations

import io
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .backbone import EncodedBatch, PromptEncoder
from .errors import ReleaseError
from .model import HumanAesExpert, ScoreResult, results_from_predictions
from .tiling import choose_grid, normalise, preprocess_uint8, tile_tensor

Source = str | Path | bytes
Decode = Callable[[Any], Image.Image]
BAD_INPUT: tuple[type[BaseException], ...] = (OSError, ValueError, ReleaseError)
# Seconds a batch may take in a worker process: past it the DataLoader raises instead of
# waiting for ever (a worker whose result cannot be sent back would otherwise hang the caller).
WORKER_TIMEOUT = 600


def default_workers() -> int:
    """Loader processes to start when none are asked for: every core but the one that drives
    the model, at most eight (decoding and tiling rarely need more to keep a GPU fed)."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def read_rgb(source: Source) -> Image.Image:
    """The default decode: a path or the file's bytes -> an RGB image (ReleaseError if not)."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as exc:
        where = "the image bytes" if isinstance(source, bytes) else f"image '{source}'"
        raise ReleaseError(f"cannot read {where}: {exc}") from None


def _image_tensor(image: Image.Image) -> torch.Tensor:
    """(3, H, W) uint8 RGB."""
    pixels = torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8))
    return pixels.permute(2, 0, 1).contiguous()


@dataclass
class LoadedBatch:
    """What a worker hands over: the images that loaded (``keys``, their ``pixels`` and both
    scoring questions tokenised), and those that did not (``failed``: key, message).

    ``pixels``: CPU tiling, all tiles as one (tiles, 3, s, s) uint8 tensor; device tiling, one
    (3, H, W) uint8 tensor per image; a model without a prompt encoder (Lite), the images."""

    keys: list = field(default_factory=list)
    failed: list[tuple[Any, str]] = field(default_factory=list)
    order: list[tuple[Any, str | None]] = field(default_factory=list)  # every item: key, error
    pixels: Any = None
    overall: EncodedBatch | None = None
    expert: EncodedBatch | None = None

    def pin_memory(self) -> LoadedBatch:
        """Called by the DataLoader's pinning thread (and by the thread loader)."""
        if isinstance(self.pixels, torch.Tensor):
            self.pixels = self.pixels.pin_memory()
        elif self.pixels and isinstance(self.pixels[0], torch.Tensor):
            self.pixels = [p.pin_memory() for p in self.pixels]
        return self


class PinnableBatch:
    """An EncodedBatch (or what a training collate returns) that ``DataLoader(pin_memory=True)``
    pins: the loader pins an object only through its ``pin_memory()`` method, which the
    EncodedBatch dataclass lacks, so without this wrapper non-blocking copies stay synchronous.
    Defined here (importable) so that worker processes can send it back."""

    def __init__(self, batch: EncodedBatch):
        self.batch = batch

    def pin_memory(self) -> PinnableBatch:
        return PinnableBatch(EncodedBatch(**{
            k: (v.pin_memory() if isinstance(v, torch.Tensor) else v)
            for k, v in self.batch.__dict__.items()
        }))


class PinningCollate:
    """Wraps a collate function (the trainer's ``TrainCollator``) to return PinnableBatch."""

    def __init__(self, collate: Callable[[list], EncodedBatch]):
        self.collate = collate

    def __call__(self, items: list) -> PinnableBatch:
        return PinnableBatch(self.collate(items))


def to_device(batch: EncodedBatch, device: torch.device | str) -> EncodedBatch:
    """The batch on ``device``, copied without blocking (asynchronous from pinned memory)."""
    return EncodedBatch(**{
        k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
        for k, v in batch.__dict__.items()
    })


class ScoringItems:
    """Map-style dataset of (key, source): each item read, decoded and prepared in a worker.
    Returns (key, prepared, None) or (key, None, message) for bad input."""

    def __init__(
        self,
        items: Sequence[tuple[Any, Any]],
        prepare: Callable[[Image.Image], Any],
        decode: Decode = read_rgb,
        bad_input: tuple[type[BaseException], ...] = BAD_INPUT,
    ):
        self.items, self.prepare, self.decode, self.bad_input = items, prepare, decode, bad_input

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, Any, str | None]:
        key, source = self.items[index]
        try:
            image = self.decode(source)
        except self.bad_input as exc:
            return key, None, str(exc) or type(exc).__name__
        return key, self.prepare(image), None


class TilePrep:
    """CPU tiling: the PIL reference tiles, as uint8."""

    def __init__(self, encoder: PromptEncoder):
        self.settings = encoder.tiles

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return preprocess_uint8(image, self.settings)


class DecodePrep:
    """Device tiling: the decoded image as a (3, H, W) uint8 tensor."""

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return _image_tensor(image)


def _keep(image: Image.Image) -> Image.Image:
    return image


class ScoringCollate:
    """Runs in the workers: concatenates the tiles and tokenises the overall and the
    12-dimension question for the batch (``encoder`` None: the images as they are)."""

    def __init__(self, encoder: PromptEncoder | None, prompt_index: int, device_tiling: bool):
        self.encoder, self.prompt_index, self.device_tiling = encoder, prompt_index, device_tiling

    def n_tiles(self, prepared: torch.Tensor) -> int:
        if not self.device_tiling:
            return int(prepared.shape[0])
        settings = self.encoder.tiles
        cols, rows = choose_grid(int(prepared.shape[2]), int(prepared.shape[1]), settings)
        return cols * rows + (1 if settings.use_thumbnail and cols * rows > 1 else 0)

    def __call__(self, items: list[tuple[Any, Any, str | None]]) -> LoadedBatch:
        batch = LoadedBatch()
        good = []
        for key, prepared, error in items:
            batch.order.append((key, error))
            if error is None:
                batch.keys.append(key)
                good.append(prepared)
            else:
                batch.failed.append((key, error))
        if not good:
            return batch
        if self.encoder is None:
            batch.pixels = good
            return batch
        counts = [self.n_tiles(p) for p in good]
        batch.pixels = good if self.device_tiling else torch.cat(good)
        placeholder = torch.empty(0, dtype=torch.uint8)  # the pixels travel in batch.pixels
        batch.overall = self.encoder.encode_scoring(
            (), False, self.prompt_index, (placeholder, counts)
        )
        batch.expert = self.encoder.encode_scoring(
            (), True, self.prompt_index, (placeholder, counts)
        )
        return batch


def _batches_of(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def in_daemon() -> bool:
    """A daemonic process (a Celery prefork child) may not start worker processes."""
    return bool(multiprocessing.current_process().daemon)


def load_batches(
    dataset: ScoringItems,
    collate: ScoringCollate,
    *,
    batch_size: int,
    workers: int = 0,
    pin_memory: bool = False,
    prefetch: int = 2,
    threads: bool | None = None,
) -> Iterator[LoadedBatch]:
    """The batches in order: serial (``workers`` 0), worker processes (a DataLoader), or, in a
    daemonic process or with ``threads=True``, a pool of threads."""
    if batch_size < 1 or workers < 0 or prefetch < 1:
        raise ValueError("batch_size and prefetch must be at least 1, workers at least 0")
    plan = _batches_of(len(dataset), batch_size)
    if workers == 0:
        for indices in plan:
            batch = collate([dataset[i] for i in indices])
            yield batch.pin_memory() if pin_memory else batch
        return
    if threads is None:
        threads = in_daemon()
    if threads:
        yield from _thread_batches(dataset, collate, plan, workers, pin_memory, prefetch)
        return
    # Fast tokenizers warn (and turn their own threads off) in forked workers; say so up front.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Forked workers inherit what the caller set up (Django's settings for a decode that reads
    # storage; nothing is pickled); they use no CUDA, so forking a process that does is safe.
    fork = "fork" in multiprocessing.get_all_start_methods()
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=plan,
        collate_fn=collate,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=prefetch,
        persistent_workers=False,
        multiprocessing_context="fork" if fork else None,
        timeout=WORKER_TIMEOUT,
    )
    yield from loader


def _thread_batches(
    dataset: ScoringItems,
    collate: ScoringCollate,
    plan: list[list[int]],
    workers: int,
    pin_memory: bool,
    prefetch: int,
) -> Iterator[LoadedBatch]:
    def make(indices: list[int]) -> LoadedBatch:
        batch = collate([dataset[i] for i in indices])
        return batch.pin_memory() if pin_memory else batch

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hae-load") as pool:
        pending: deque[Future[LoadedBatch]] = deque()
        todo = iter(plan)
        for indices in todo:
            pending.append(pool.submit(make, indices))
            if len(pending) >= workers * prefetch:
                break
        while pending:
            done = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(make, nxt))
            yield done


def is_expert(model: Any) -> bool:
    return isinstance(model, HumanAesExpert)


def loader_for(
    model: Any,
    items: Sequence[tuple[Any, Any]],
    *,
    decode: Decode = read_rgb,
    bad_input: tuple[type[BaseException], ...] = BAD_INPUT,
    batch_size: int = 8,
    workers: int = 0,
    device_tiling: bool = False,
    prefetch: int = 2,
    threads: bool | None = None,
) -> Iterator[LoadedBatch]:
    """The loaded batches for ``model`` (HumanAesExpert: tiles and tokens; others: images)."""
    if is_expert(model):
        encoder = model.encoder
        prepare: Callable = DecodePrep() if device_tiling else TilePrep(encoder)
        collate = ScoringCollate(encoder, model.config.prompt_index, device_tiling)
    else:
        prepare, collate = _keep, ScoringCollate(None, 0, False)
    dataset = ScoringItems(items, prepare, decode, bad_input)
    pin = is_expert(model) and model.device.type == "cuda"
    return load_batches(
        dataset, collate, batch_size=batch_size, workers=workers, pin_memory=pin,
        prefetch=prefetch, threads=threads,
    )


@torch.no_grad()
def predict_loaded(model: Any, batch: LoadedBatch) -> dict[str, torch.Tensor]:
    """Every head on a loaded batch (what ``model.predict`` answers for the same images)."""
    if not is_expert(model):
        return model.predict(batch.pixels)
    device = model.device
    settings = model.encoder.tiles
    if isinstance(batch.pixels, torch.Tensor):
        tiles = batch.pixels.to(device, non_blocking=True)
    else:  # device tiling
        tiles = torch.cat(
            [tile_tensor(p.to(device, non_blocking=True), settings) for p in batch.pixels]
        )
    pixels = normalise(tiles, settings)
    overall = replace(batch.overall, pixel_values=pixels)
    expert = replace(batch.expert, pixel_values=pixels)
    return {k: v.float().cpu() for k, v in model.heads_on(overall, expert).items()}


@dataclass
class PredictedBatch:
    keys: list
    predictions: dict[str, torch.Tensor]  # row i belongs to keys[i]; empty if none loaded
    failed: list[tuple[Any, str]]


def predict_batches(model: Any, items: Iterable[tuple[Any, Any]], **options) -> Iterator[
    PredictedBatch
]:
    """Every head's predictions, batch by batch in the items' order (options: see
    :func:`loader_for`)."""
    was_training = model.training
    model.eval()
    try:
        for batch in loader_for(model, list(items), **options):
            pred = predict_loaded(model, batch) if batch.keys else {}
            yield PredictedBatch(batch.keys, pred, batch.failed)
    finally:
        model.train(was_training)


def score_items(
    model: Any, items: Iterable[tuple[Any, Any]], **options
) -> Iterator[tuple[Any, ScoreResult | None, str | None]]:
    """(key, result, None) per image that loaded, (key, None, message) per one that did not,
    in the items' order. The results equal ``model.score(images)``'s."""
    was_training = model.training
    model.eval()
    try:
        for batch in loader_for(model, list(items), **options):
            if not batch.keys:
                results: list[ScoreResult] = []
            elif is_expert(model):
                results = results_from_predictions(predict_loaded(model, batch))
            else:
                results = model.score(batch.pixels, batch_size=len(batch.pixels))
            answers = iter(results)
            for key, message in batch.order:
                yield (key, None, message) if message is not None else (key, next(answers), None)
    finally:
        model.train(was_training)


__all__ = [
    "LoadedBatch",
    "PinnableBatch",
    "PinningCollate",
    "PredictedBatch",
    "ScoringItems",
    "load_batches",
    "loader_for",
    "predict_batches",
    "predict_loaded",
    "read_rgb",
    "score_items",
    "to_device",
]
