"""The datasheet's Django-free parts: the sections a caller gave nothing for say so, the
configuration lists each key once, and the agreement intervals come from the project's own
agreement code over resampled images."""

from __future__ import annotations

import re

import numpy as np

from annotation.agreement import LongRatings, krippendorff_alpha_interval
from modeling.release import ReleaseConfig, assign_splits, build_release
from modeling.release.intervals import MIN_BOOT, N_BOOT, agreement_intervals, resamples

from .conftest import make_rows


def test_sections_without_facts_say_so_and_the_configuration_lists_each_key_once(tmp_path):
    rows = make_rows(20, 10)
    config = ReleaseConfig(name="core", version="1", images="none", formats=("parquet",))
    extra = {"sources": ["all"], "seed": 0, "formats": ["parquet"], "images": "none",
             "license": "unknown", "na": "fill"}  # the Django side repeats five keys
    build_release(rows, assign_splits(rows, config, frozenset()), config, tmp_path / "r",
                  platform_version="t", extra_config=extra)
    md = (tmp_path / "r" / "datasheet.md").read_text()
    headings = re.findall(r"^## (.*)$", md, flags=re.M)
    assert headings == ["Motivation", "Composition", "Collection process", "Annotation",
                        "Preprocessing", "Uses", "Distribution and licence", "Maintenance",
                        "Consent and takedown", "Configuration"]
    for section in ("Sources and their provenance", "Raters, guidelines and agreement",
                    "Earlier versions"):
        assert f"{section}: not given to this build." in md
    assert "No takedown contact was given for this release" in md
    config_rows = md.split("## Configuration", 1)[1]
    keys = re.findall(r"^\| (\w+) \|", config_rows, flags=re.M)
    assert keys[0] == "setting" and len(keys[1:]) == len(set(keys[1:]))
    assert set(keys[1:]) == {*config.to_dict(), "sources"}


def _ratings(n_images: int, raters: int, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 1, (n_images, 12))
    image = np.repeat(np.arange(n_images), raters)
    rater = np.tile(np.arange(raters), n_images)
    table = np.clip(truth[image] + rng.normal(0, noise, (image.size, 12)), 0, 1)
    return image, rater, table


def test_intervals_hold_the_point_and_widen_with_disagreement():
    image, rater, table = _ratings(80, 3, 0.05)
    tight = agreement_intervals(image, rater, table, overlap=3, n_boot=100)
    _, _, noisy_table = _ratings(80, 3, 0.4)
    loose = agreement_intervals(image, rater, noisy_table, overlap=3, n_boot=100)
    for j, key in enumerate(tight):
        point = krippendorff_alpha_interval(
            LongRatings.from_pairs(image, rater, table[:, j])[0])
        lo, hi = tight[key]["krippendorff_alpha"]
        assert lo <= point <= hi and hi - lo < 0.1
        lo2, hi2 = loose[key]["krippendorff_alpha"]
        assert hi2 - lo2 > hi - lo and hi2 < lo  # noisier raters: lower and wider
        assert tight[key]["icc2_1"][0] <= tight[key]["icc2_1"][1]
    # the same seed, the same intervals; a dimension nobody rated has none
    assert agreement_intervals(image, rater, table, overlap=3, n_boot=100) == tight
    table[:, 0] = np.nan
    assert agreement_intervals(image, rater, table, overlap=3, n_boot=20)[
        "facial_brightness"] == {"krippendorff_alpha": None, "icc2_1": None, "icc2_k": None}


def test_a_large_project_gets_fewer_resamples_never_too_few():
    assert resamples(1_000) == N_BOOT
    assert MIN_BOOT < resamples(300_000) < N_BOOT
    assert resamples(10**9) == MIN_BOOT
