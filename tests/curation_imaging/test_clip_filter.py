"""clip_filter: a tiny random open_clip model, saved to a local file and loaded back through the
real configuration path, scores real photos; a missing checkpoint is a clear error.

The weights are random: these tests check the wiring (loading, decoding, batching, thresholds,
errors), not whether CLIP finds people.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU
from PIL import Image

from curation.imaging.clip_filter import (
    INAPPROPRIATE,
    NO_PERSON,
    ClipFilter,
    ClipFilterConfig,
    ClipScores,
    ClipUnavailable,
    LoadedClip,
    decode_rgb,
    load_clip,
    reasons_for,
)
from curation.imaging.validate import InvalidImage

from .conftest import encode, noisy, photo
from .tiny_clip import TINY_MODEL, register_tiny_config, write_tiny_clip

PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_clip")


@pytest.fixture(scope="module")
def checkpoint(tiny_dir) -> Path:
    return write_tiny_clip(tiny_dir)


@pytest.fixture(scope="module")
def config(checkpoint) -> ClipFilterConfig:
    return ClipFilterConfig(model=TINY_MODEL, checkpoint=str(checkpoint), batch_size=4)


@pytest.fixture(scope="module")
def clip(config) -> ClipFilter:
    return ClipFilter(load_clip(config), config)


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory) -> list[Path]:
    """Real photos as JPEGs (one of them 2.7 Mpx, so the draft path runs) and a PNG."""
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in PHOTOS:
        path = folder / f"{name}.jpg"
        path.write_bytes(encode(photo(name), "JPEG", quality=90))
        paths.append(path)
    big = folder / "astronaut_big.jpg"
    big.write_bytes(encode(noisy(photo("astronaut"), (2016, 1344)), "JPEG", quality=90))
    png = folder / "coffee.png"
    png.write_bytes(encode(photo("coffee"), "PNG"))
    return [*paths, big, png]


def assert_same(a: list[ClipScores], b: list[ClipScores], atol: float = 1e-5) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.person == pytest.approx(y.person, abs=atol)
        assert x.inappropriate == pytest.approx(y.inappropriate, abs=atol)


def test_tiny_model_loads_from_the_local_file_through_open_clip(config, checkpoint):
    loaded = load_clip(config)
    assert isinstance(loaded.model, open_clip.CLIP)
    assert not loaded.model.training
    assert loaded.checkpoint_path == str(checkpoint)
    saved = torch.load(checkpoint, weights_only=True)
    state = loaded.model.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(saved[k], state[k]) for k in saved)  # the file's weights, not random
    assert loaded.tokenizer(["a photo of a person."]).shape == (1, 32)  # the config's context


def test_scores_real_photos_as_probabilities(clip, photo_files):
    scores = clip.score(photo_files)
    assert len(scores) == len(photo_files)
    for s in scores:
        assert isinstance(s, ClipScores)
        assert isinstance(s.person, float) and isinstance(s.inappropriate, float)
        assert 0.0 <= s.person <= 1.0 and 0.0 <= s.inappropriate <= 1.0
    assert len({s.person for s in scores}) > 1  # different pictures, different scores
    assert clip.score(photo_files) == scores  # deterministic
    assert clip.text_features.shape == (4, 32)
    assert torch.allclose(clip.text_features.norm(dim=1), torch.ones(4), atol=1e-5)


def test_batches_and_prefetch_give_the_scores_of_one_by_one(config, clip, photo_files):
    one_by_one = [clip.score([p])[0] for p in photo_files]
    assert_same(clip.score(photo_files), one_by_one)  # batches of 4: 4 + 4
    for variant in (
        ClipFilterConfig(model=TINY_MODEL, checkpoint=config.checkpoint, batch_size=3,
                         decode_workers=2, prefetch_batches=1),
        ClipFilterConfig(model=TINY_MODEL, checkpoint=config.checkpoint, batch_size=64,
                         decode_workers=0),
    ):
        other = ClipFilter(load_clip(variant), variant)
        assert_same(other.score(photo_files), one_by_one)


def test_the_uint8_fast_path_matches_open_clips_preprocess(clip, config, photo_files):
    assert clip._pil_steps is not None  # open_clip's eval transform was recognised
    for path in photo_files:
        expected = clip.preprocess(decode_rgb(path, min_side=clip.draft_side))
        assert torch.allclose(clip.prepare(path), expected, atol=1e-5)
    # Any other preprocess callable is applied as a whole, per image: same scores.
    loaded = load_clip(config)
    opaque = LoadedClip(loaded.model, lambda img: loaded.preprocess(img), loaded.tokenizer)
    other = ClipFilter(opaque, config)
    assert other._pil_steps is None
    assert_same(other.score(photo_files), clip.score(photo_files))


def test_inputs_may_be_paths_file_objects_or_pil_images(clip, photo_files):
    path = photo_files[0]
    by_path = clip.score([path, str(path)])
    assert_same(by_path[:1], by_path[1:])
    assert clip.score([io.BytesIO(path.read_bytes())]) == clip.score([path])
    by_pil = clip.score([photo("astronaut")])  # an opened image is used as it is
    assert 0.0 <= by_pil[0].person <= 1.0
    assert clip.score([]) == []


def test_jpeg_is_decoded_at_a_draft_scale_but_never_below_the_model_input(clip, photo_files):
    big = photo_files[-2]  # 2016 x 1344
    drafted = decode_rgb(big, min_side=clip.draft_side)
    assert drafted.mode == "RGB"
    assert min(drafted.size) >= clip.draft_side
    assert drafted.size == (2016 // 8, 1344 // 8)  # 1/8 still keeps >= 64 px
    assert decode_rgb(big).size == (2016, 1344)
    assert clip.prepare(big).shape == (3, clip.input_side, clip.input_side)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (300, 200), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    assert decode_rgb(path).size == (200, 300)


def test_a_bad_file_is_an_outcome_in_score_files_and_an_error_in_score(clip, photo_files,
                                                                       tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not an image at all")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photo_files[0].read_bytes()[:2000])
    missing = tmp_path / "missing.jpg"
    paths = [photo_files[0], corrupt, photo_files[1], truncated, missing]
    outcomes = clip.score_files(paths)
    assert [o.path for o in outcomes] == [str(p) for p in paths]
    assert [o.reason for o in outcomes] == [None, "corrupt", None, "corrupt", "unreadable"]
    good = clip.score(photo_files[:2])
    assert [outcomes[0].scores, outcomes[2].scores] == good
    with pytest.raises(InvalidImage):
        clip.score([photo_files[0], corrupt])


def test_reasons_for_applies_both_thresholds():
    cfg = ClipFilterConfig(model=TINY_MODEL, checkpoint=None, person_threshold=0.4,
                           inappropriate_threshold=0.7)
    assert reasons_for(ClipScores(person=0.9, inappropriate=0.1), cfg) == []
    assert reasons_for(ClipScores(person=0.39, inappropriate=0.1), cfg) == [NO_PERSON]
    assert reasons_for(ClipScores(person=0.9, inappropriate=0.71), cfg) == [INAPPROPRIATE]
    assert reasons_for(ClipScores(person=0.1, inappropriate=0.9), cfg) == [
        "no_person", "inappropriate"]
    # at the threshold itself: kept (strictly below / strictly above rejects)
    assert reasons_for(ClipScores(person=0.4, inappropriate=0.7), cfg) == []


def test_config_is_checked_and_accepts_json_lists():
    cfg = ClipFilterConfig(model="m", checkpoint=None, person_prompts=["a photo of a person."])
    assert cfg.person_prompts == ("a photo of a person.",)
    for bad in ({"person_threshold": 1.5}, {"inappropriate_threshold": -0.1},
                {"batch_size": 0}, {"safe_prompts": []}, {"draft_factor": 0.5}):
        with pytest.raises(ValueError):
            ClipFilterConfig(model="m", checkpoint=None, **bad)


@pytest.mark.parametrize("model", [TINY_MODEL, "ViT-B-32"])
@pytest.mark.parametrize("missing", [None, "", "/nonexistent/clip/weights.safetensors",
                                     "weights.pt", "no-such-tag"])
def test_a_missing_checkpoint_is_a_clear_error(checkpoint, model, missing):
    started = time.perf_counter()
    with pytest.raises(ClipUnavailable) as err:
        load_clip(ClipFilterConfig(model=model, checkpoint=missing))
    assert time.perf_counter() - started < 2  # refused before building or downloading anything
    message = str(err.value)
    assert model in message
    assert ".safetensors" in message and "local" in message  # how to provide one
    assert "turn CLIP off" in message  # and the way out
    assert err.value.code == "clip_unavailable"
    if missing:
        assert missing in message


def test_a_pretrained_tag_is_looked_up_offline(checkpoint, tmp_path, monkeypatch):
    """A tag resolves only from the local cache: no download, no minute of hub retries."""
    monkeypatch.setitem(
        open_clip.pretrained._PRETRAINED, TINY_MODEL,
        {"hb_test": {"hf_hub": "hb/tiny-clip/", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
                     "quick_gelu": True}},
    )
    cfg = ClipFilterConfig(model=TINY_MODEL, checkpoint="hb_test", cache_dir=str(tmp_path))
    started = time.perf_counter()
    with pytest.raises(ClipUnavailable, match="not in the local cache"):
        load_clip(cfg)
    assert time.perf_counter() - started < 2
    # The Hugging Face cache layout open_clip's download would have left behind.
    repo = tmp_path / "models--hb--tiny-clip"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "open_clip_pytorch_model.bin").write_bytes(
        checkpoint.read_bytes())
    loaded = load_clip(cfg)
    assert loaded.checkpoint_path is not None and "snapshots" in loaded.checkpoint_path
    normalize = loaded.preprocess.transforms[-1]
    assert tuple(normalize.mean) == (0.5, 0.5, 0.5)  # the tag's preprocessing came along
    assert any(isinstance(m, QuickGELU) for m in loaded.model.modules())  # and its activation
    assert loaded.model_config["quick_gelu"] is True  # what was built, for a saved copy


def test_weights_of_another_model_and_unknown_models_are_clear_errors(checkpoint, tiny_dir):
    wide = register_tiny_config(tiny_dir / "configs", "hb-tiny-clip-wide", embed_dim=48)
    with pytest.raises(ClipUnavailable, match="cannot be loaded from"):
        load_clip(ClipFilterConfig(model=wide, checkpoint=str(checkpoint)))
    with pytest.raises(ClipUnavailable, match="unknown open_clip model"):
        load_clip(ClipFilterConfig(model="no-such-model", checkpoint=str(checkpoint)))
    not_weights = tiny_dir / "notes.txt"
    not_weights.write_text("hello")
    with pytest.raises(ClipUnavailable, match="cannot be loaded from"):
        load_clip(ClipFilterConfig(model=TINY_MODEL, checkpoint=str(not_weights)))


def test_a_safetensors_checkpoint_loads_too(tiny_dir, photo_files, clip):
    path = write_tiny_clip(tiny_dir, fmt="safetensors")
    cfg = ClipFilterConfig(model=TINY_MODEL, checkpoint=str(path), batch_size=4)
    assert_same(ClipFilter(load_clip(cfg), cfg).score(photo_files[:2]),
                clip.score(photo_files[:2]))  # the same seed: the same weights
