"""Agreement figures equal the reference implementations on the same matrices."""

import krippendorff
import numpy as np
import pandas as pd
import pingouin
import pytest
from scipy import stats

from annotation import agreement
from annotation.agreement import LongRatings


def random_long(seed, n_images=60, n_raters=8, per_image=3, missing=0.1):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.1, 0.9, n_images)
    rows = []
    for i in range(n_images):
        for r in rng.choice(n_raters, size=per_image, replace=False):
            value = np.clip(truth[i] + rng.normal(0, 0.12), 0, 1)
            if rng.random() < missing:
                value = np.nan
            rows.append((i, r, value))
    img, rat, val = map(np.array, zip(*rows, strict=True))
    ratings, _, _ = LongRatings.from_pairs(img, rat, val)
    return ratings


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_equals_the_krippendorff_package_with_missing_values(seed):
    ratings = random_long(seed)
    ours = agreement.krippendorff_alpha_interval(ratings)
    ref = krippendorff.alpha(reliability_data=ratings.dense().T, level_of_measurement="interval")
    assert ours == pytest.approx(ref, abs=1e-9)
    assert 0.3 < ours < 1  # these raters do agree


def test_alpha_is_near_zero_for_noise():
    rng = np.random.default_rng(5)
    img = np.repeat(np.arange(300), 3)
    rat = np.tile(np.arange(3), 300)
    ratings, _, _ = LongRatings.from_pairs(img, rat, rng.uniform(0, 1, 900))
    alpha = agreement.krippendorff_alpha_interval(ratings)
    assert abs(alpha) < 0.1
    ref = krippendorff.alpha(reliability_data=ratings.dense().T, level_of_measurement="interval")
    assert alpha == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 3])
def test_icc_equals_pingouin(seed):
    ratings = random_long(seed, missing=0.0)
    table = agreement.slot_table(ratings, 3)
    assert table.shape == (60, 3)
    icc_1, icc_k = agreement.icc2(table)
    long = pd.DataFrame(
        [(i, j, table[i, j]) for i in range(table.shape[0]) for j in range(3)],
        columns=["image", "slot", "score"],
    )
    ref = pingouin.intraclass_corr(long, targets="image", raters="slot", ratings="score")
    ref = ref.set_index("Type")["ICC"]
    # pingouin names Shrout & Fleiss' ICC(2,1) / ICC(2,k) by McGraw & Wong: absolute agreement
    assert icc_1 == pytest.approx(ref["ICC(A,1)"], abs=1e-9)
    assert icc_k == pytest.approx(ref["ICC(A,k)"], abs=1e-9)


def test_slot_table_drops_images_with_too_few_ratings():
    ratings, _, _ = LongRatings.from_pairs(
        [0, 0, 0, 1, 1, 2, 2, 2, 2],
        [0, 1, 2, 0, 1, 0, 1, 2, 3],
        [0.1, 0.2, 0.3, 0.5, np.nan, 0.7, 0.8, 0.9, 1.0],
    )
    table = agreement.slot_table(ratings, 3)
    np.testing.assert_allclose(table, [[0.1, 0.2, 0.3], [0.7, 0.8, 0.9]])


def test_mean_pairwise_spearman_by_hand():
    ratings = random_long(4, n_raters=4, per_image=3, missing=0.0)
    dense = ratings.dense()
    rhos = []
    for a in range(4):
        for b in range(a + 1, 4):
            common = ~np.isnan(dense[:, a]) & ~np.isnan(dense[:, b])
            rhos.append(stats.spearmanr(dense[common, a], dense[common, b]).statistic)
    assert agreement.mean_pairwise_spearman(ratings) == pytest.approx(np.mean(rhos))


def test_rater_stats_find_a_biased_and_a_random_rater():
    rng = np.random.default_rng(9)
    truth = rng.uniform(0.2, 0.8, 200)
    img, rat, val = [], [], []
    for i, t in enumerate(truth):
        for r in range(4):
            noise = rng.normal(0, 0.05)
            value = {0: t + noise, 1: t + noise, 2: t + 0.15 + noise, 3: rng.uniform(0, 1)}[r]
            img.append(i)
            rat.append(r)
            val.append(float(np.clip(value, 0, 1)))
    ratings, _, _ = LongRatings.from_pairs(img, rat, val)
    st = agreement.rater_stats(ratings)
    assert st.bias[2] > 0.1 and abs(st.bias[0]) < 0.06
    assert st.corr_with_others[3] < 0.3 < st.corr_with_others[0]
    # by hand for rater 0
    dense = ratings.dense()
    others = np.nanmean(np.delete(dense, 0, axis=1), axis=1)
    assert st.corr_with_others[0] == pytest.approx(stats.pearsonr(dense[:, 0], others).statistic)
    assert st.bias[0] == pytest.approx(np.mean(dense[:, 0] - others))


def test_bt500_rejects_the_erratic_rater_only():
    rng = np.random.default_rng(11)
    truth = rng.uniform(0.3, 0.7, 300)
    img, rat, val = [], [], []
    for i, t in enumerate(truth):
        for r in range(15):
            value = t + rng.normal(0, 0.05) if r < 14 else t + rng.normal(0, 0.2)
            img.append(i)
            rat.append(r)
            val.append(value)
    ratings, _, _ = LongRatings.from_pairs(img, rat, val)
    rejected = agreement.bt500_rejected(ratings)
    assert rejected.tolist() == [False] * 14 + [True]


def test_consensus_mos_std_and_not_applicable_majority():
    ratings, _, _ = LongRatings.from_pairs(
        [0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], [0.3, 0.5, 0.7, np.nan, np.nan, 0.9]
    )
    c = agreement.consensus(ratings)
    assert c.mos[0] == pytest.approx(0.5) and c.std[0] == pytest.approx(0.2)
    assert c.n.tolist() == [3, 1] and c.is_not_applicable().tolist() == [False, True]
    only = agreement.consensus(ratings, included=np.array([True, True, False]))
    assert only.mos[0] == pytest.approx(0.4)
    corrected = agreement.consensus(ratings, bias=np.array([0.0, 0.2, 0.0]))
    assert corrected.mos[0] == pytest.approx((0.3 + 0.3 + 0.7) / 3)
