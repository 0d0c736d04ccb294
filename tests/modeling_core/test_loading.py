"""The scoring loader (modeling.hae.loading): decode and tiling in worker processes or threads,
images batched, results equal to the serial path; device tiling within its stated tolerance."""

from __future__ import annotations

import multiprocessing
import random

import numpy as np
import pytest
import torch
from PIL import Image

from modeling.hae.backbone import load_backbone
from modeling.hae.errors import ReleaseError
from modeling.hae.evaluate import predict_samples
from modeling.hae.loading import (
    ScoringCollate,
    ScoringItems,
    load_batches,
    read_rgb,
    score_items,
)
from modeling.hae.model import HumanAesExpert, LoraSettings
from modeling.hae.synthetic import Factors, render
from modeling.hae.tiling import (
    DEVICE_TILING_MAX_DIFF,
    DEVICE_TILING_MEAN_DIFF,
    DEVICE_TILING_WORST_MAX,
    DEVICE_TILING_WORST_MEAN,
    TileSettings,
    normalise,
    preprocess,
    preprocess_uint8,
    tile_tensor,
)

SIZES = [(50, 30), (100, 80), (320, 240), (448, 448), (640, 480), (300, 700), (600, 900),
         (1080, 1920), (3000, 2000), (4000, 300)]


def _synthetic(size, seed):
    rng = random.Random(seed)
    return render(Factors(*(rng.random() for _ in range(4))), size, rng)


def _hard(size, kind, seed=0):
    """Worst cases for resampling: uniform noise and a sharp 3-px checkerboard."""
    w, h = size
    if kind == "noise":
        arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        yy, xx = np.mgrid[0:h, 0:w]
        arr = np.repeat((((yy // 3 + xx // 3) % 2) * 255).astype(np.uint8)[..., None], 3, 2)
    return Image.fromarray(arr)


def _as_tensor(image: Image.Image) -> torch.Tensor:
    """(3, H, W) uint8, a strided view of the HWC array (tile_tensor takes any strides)."""
    return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)


@pytest.mark.parametrize("size", SIZES)
def test_uint8_tiles_normalised_later_are_bit_identical_to_the_reference(size):
    settings = TileSettings(tile_size=448, max_tiles=12)
    image = _synthetic(size, seed=size[0])
    assert torch.equal(normalise(preprocess_uint8(image, settings), settings),
                       preprocess(image, settings))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["photo", "noise", "checker"])
def test_device_tiling_matches_pil_tiles_within_the_stated_tolerance(size, kind):
    settings = TileSettings(tile_size=448, max_tiles=12)
    image = _synthetic(size, seed=1) if kind == "photo" else _hard(size, kind)
    reference = preprocess_uint8(image, settings)
    tiled = tile_tensor(_as_tensor(image), settings)
    assert tiled.dtype == torch.uint8 and tiled.shape == reference.shape
    diff = (tiled.int() - reference.int()).abs()
    if kind == "photo":
        assert diff.max().item() <= DEVICE_TILING_MAX_DIFF
        assert diff.float().mean().item() <= DEVICE_TILING_MEAN_DIFF
    else:
        assert diff.max().item() <= DEVICE_TILING_WORST_MAX
        assert diff.float().mean().item() <= DEVICE_TILING_WORST_MEAN


def test_device_tiling_refuses_what_is_not_a_uint8_rgb_image():
    settings = TileSettings(tile_size=28)
    with pytest.raises(ValueError, match="uint8"):
        tile_tensor(torch.zeros(3, 20, 20), settings)
    with pytest.raises(ValueError, match="3, H, W"):
        tile_tensor(torch.zeros(20, 20, 3, dtype=torch.uint8), settings)


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint):
    torch.manual_seed(0)
    model = HumanAesExpert.wrap(load_backbone(tiny_checkpoint), LoraSettings()).eval()
    # LoRA B starts at zero: perturb the adapters so they take part in the scores.
    with torch.no_grad():
        for p in model.lora_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture()
def jpeg_items(tmp_path):
    """Seven JPEGs of different sizes (so different tile counts within one batch)."""
    items = []
    for i in range(7):
        path = tmp_path / f"{i}.jpg"
        _synthetic((64 + 23 * i, 48 + 11 * i), seed=i).save(path, quality=90)
        items.append((f"img-{i}", path))
    return items


def _serial_scores(model, items, batch_size):
    """The previous pipeline: decode in this thread, then model.score on the PIL images."""
    return model.score([read_rgb(path) for _, path in items], batch_size=batch_size)


@pytest.mark.parametrize(("workers", "threads"), [(0, None), (2, False), (2, True)])
def test_scores_from_files_equal_the_serial_pipeline_for_any_number_of_workers(
    tiny_model, jpeg_items, workers, threads
):
    expected = [r.as_dict() for r in _serial_scores(tiny_model, jpeg_items, batch_size=3)]
    out = list(score_items(tiny_model, jpeg_items, batch_size=3, workers=workers,
                           threads=threads))
    assert [key for key, _, _ in out] == [key for key, _ in jpeg_items]
    assert all(error is None for _, _, error in out)
    assert [r.as_dict() for _, r, _ in out] == expected
    assert len({r.overall for _, r, _ in out}) > 1, "the images must not all score the same"


def test_a_bad_file_is_answered_in_its_place_and_the_others_are_scored(tiny_model, jpeg_items,
                                                                       tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    items = [*jpeg_items[:2], ("bad", bad), *jpeg_items[2:4]]
    for workers in (0, 2):
        out = list(score_items(tiny_model, items, batch_size=2, workers=workers))
        assert [key for key, _, _ in out] == ["img-0", "img-1", "bad", "img-2", "img-3"]
        key, result, error = out[2]
        assert result is None and "cannot read image" in error and "bad.jpg" in error
        assert all(r is not None and e is None for k, r, e in out if k != "bad")


def test_device_tiling_scores_stay_close_to_the_reference(tiny_model, jpeg_items):
    expected = _serial_scores(tiny_model, jpeg_items, batch_size=4)
    out = list(score_items(tiny_model, jpeg_items, batch_size=4, device_tiling=True))
    for (_, got, _), want in zip(out, expected, strict=True):
        assert got.overall == pytest.approx(want.overall, abs=1e-3)
        for key, value in want.scores.items():
            assert got.scores[key] == pytest.approx(value, abs=1e-3)


def test_evaluation_predictions_equal_with_and_without_workers(tiny_model, tiny_release):
    from modeling.hae.data import read_split

    samples = read_split(tiny_release, "test")
    serial = predict_samples(tiny_model, samples, batch_size=3)
    parallel = predict_samples(tiny_model, samples, batch_size=3, workers=2)
    assert set(serial) == {"lm", "regression", "expert", "metavoter"}
    for key, value in serial.items():
        assert value.shape[0] == len(samples)
        np.testing.assert_array_equal(parallel[key], value)


def test_evaluation_stops_at_an_unreadable_image(tiny_model, tiny_release, tmp_path):
    from modeling.hae.data import read_split

    samples = read_split(tiny_release, "test")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    samples[1] = type(samples[1])(broken, "broken.jpg", *(
        getattr(samples[1], f) for f in ("source", "scores", "is_expert", "text_level")))
    with pytest.raises(ReleaseError, match=r"broken\.jpg"):
        predict_samples(tiny_model, samples, batch_size=2, workers=2)


def _shape_of(image):
    return image.size


def _load_in_daemon(paths, queue):
    """Runs in a daemonic child, which may not start worker processes."""
    dataset = ScoringItems([(i, p) for i, p in enumerate(paths)], _shape_of)
    batches = load_batches(dataset, ScoringCollate(None, 0, False), batch_size=2, workers=2)
    queue.put([(b.keys, b.pixels) for b in batches])


def test_a_daemonic_process_loads_with_threads_instead_of_children(jpeg_items):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(
        target=_load_in_daemon, args=([p for _, p in jpeg_items], queue), daemon=True
    )
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert [k for keys, _ in got for k in keys] == list(range(len(jpeg_items)))
    assert [s for _, sizes in got for s in sizes] == [Image.open(p).size for _, p in jpeg_items]


def test_loader_options_are_checked():
    dataset = ScoringItems([], _shape_of)
    with pytest.raises(ValueError, match="at least"):
        list(load_batches(dataset, ScoringCollate(None, 0, False), batch_size=0))


def test_device_tiling_of_an_image_already_at_tile_size_is_the_image_itself():
    settings = TileSettings(tile_size=28, max_tiles=12)
    image = _hard((28, 28), "noise")
    tiled = tile_tensor(_as_tensor(image), settings)
    assert torch.equal(tiled, preprocess_uint8(image, settings))
    assert tiled.shape == (1, 3, 28, 28)


def test_training_batches_come_back_from_worker_processes_pinnable(tiny_model, tiny_release):
    """PinningCollate wraps the trainer's collate so that DataLoader(pin_memory=True) can pin
    the batch (pinning itself needs a GPU); the batch is the collate's own, moved by to_device."""
    from modeling.hae.data import ReleaseDataset, read_split
    from modeling.hae.loading import PinnableBatch, PinningCollate, to_device

    samples = read_split(tiny_release, "train")[:4]

    def collate(items):
        images, chosen = zip(*items, strict=True)
        return tiny_model.encoder.encode_training(images, chosen, random.Random(0))

    loader = torch.utils.data.DataLoader(
        ReleaseDataset(samples), batch_size=2, collate_fn=PinningCollate(collate),
        num_workers=2, multiprocessing_context="fork", timeout=120,
    )
    got = list(loader)
    assert all(isinstance(b, PinnableBatch) for b in got) and len(got) == 2
    dataset = ReleaseDataset(samples)
    expected = collate([dataset[0], dataset[1]])
    moved = to_device(got[0].batch, "cpu")
    for key, value in expected.__dict__.items():
        if value is None:  # scoring-only fields
            assert getattr(moved, key) is None, key
        else:
            assert torch.equal(getattr(moved, key), value), key
