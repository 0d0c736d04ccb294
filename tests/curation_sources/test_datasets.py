"""Each public dataset's sample label files parse into the records worked out by hand below.

Every sample has good lines and bad ones; a bad line is reported with its file and line number
and the good lines are still there.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from curation.sources import PARSERS, MissingLabelFile, PathOutsideRoots, parse_source

from .conftest import SAMPLES, Inline, write_xlsx


def where(result) -> list[tuple[str, int | None]]:
    return [(Path(e.file).name, e.line) for e in result.errors]


def by_path(result) -> dict:
    return {r.path: r for r in result.records}


# --- AVA ------------------------------------------------------------------------------------


def test_ava_mean_of_votes_and_metadata():
    res = PARSERS["ava"](SAMPLES / "ava")
    assert res.base == SAMPLES / "ava"
    assert res.scale == (1.0, 10.0)
    recs = by_path(res)
    assert list(recs) == [
        "images/953619.jpg",
        "images/953958.jpg",
        "images/954184.jpg",
        "images/954000.jpg",
    ]

    # 953619: votes 0 1 5 17 38 36 15 6 5 1 -> 124 votes, sum k*n = 2+15+68+190+216+105+48+45+10
    # = 699; mean 699/124; normalised (699/124 - 1) / 9 = 575/1116.
    a = recs["images/953619.jpg"]
    assert a.raw_score == pytest.approx(float(Fraction(699, 124)))
    assert a.normalized == pytest.approx(float(Fraction(575, 1116)))
    assert (a.score_min, a.score_max) == (1.0, 10.0)
    assert a.extra == {
        "index": 1,
        "image_id": "953619",
        "votes": [0, 1, 5, 17, 38, 36, 15, 6, 5, 1],
        "n_votes": 124,
        "semantic_tags": [1, 22],
        "semantic_tag_names": ["Abstract", "Candid"],
        "challenge_id": 1396,
        "challenge_name": "Portraits_of_Strangers",
        "split": "train",
    }

    # 953958: 126 votes, sum k*n = 10+14+45+104+130+126+70+64+9+20 = 592 -> 592/126 = 296/63;
    # normalised (296/63 - 1) / 9 = 233/567. It is in the official generic test list.
    b = recs["images/953958.jpg"]
    assert b.raw_score == pytest.approx(296 / 63)
    assert b.normalized == pytest.approx(233 / 567)
    assert b.extra["split"] == "test"
    assert b.extra["semantic_tags"] == [1, 21]

    # 954184: four votes of 10 -> 10, the top of the scale; no semantic tags (both 0).
    c = recs["images/954184.jpg"]
    assert (c.raw_score, c.normalized) == (10.0, 1.0)
    assert c.extra["semantic_tags"] == []

    # 954000: no votes at all -> kept, without a score.
    d = recs["images/954000.jpg"]
    assert (d.raw_score, d.normalized) == (None, None)
    assert d.extra["n_votes"] == 0 and "split" not in d.extra


def test_ava_bad_lines_are_reported_and_skipped():
    res = PARSERS["ava"](SAMPLES / "ava" / "AVA.txt")  # the file itself works too
    assert where(res) == [("AVA.txt", 4), ("AVA.txt", 5), ("AVA.txt", 7)]
    msgs = [e.message for e in res.errors]
    assert "non-negative integer" in msgs[0] and "'x'" in msgs[0]
    assert "expected 15 columns" in msgs[1] and "found 14" in msgs[1]
    assert "duplicate image path 'images/953619.jpg'" in msgs[2] and "AVA.txt:1" in msgs[2]
    assert str(res.errors[0]) == f"{SAMPLES / 'ava' / 'AVA.txt'}:4: {msgs[0]}"
    assert len(res) == 4


def test_ava_without_metadata_files(tmp_path):
    (tmp_path / "AVA.txt").write_text("1 10 0 0 0 0 1 0 0 0 0 1 3 0 7\n")
    (rec,) = PARSERS["ava"](tmp_path).records
    # one vote of 5 and one of 10 -> 7.5 -> (7.5 - 1) / 9 = 13/18
    assert rec.raw_score == 7.5 and rec.normalized == pytest.approx(13 / 18)
    assert rec.extra == {
        "index": 1,
        "image_id": "10",
        "votes": [0, 0, 0, 0, 1, 0, 0, 0, 0, 1],
        "n_votes": 2,
        "semantic_tags": [3],
        "challenge_id": 7,
    }


# --- TAD66K ---------------------------------------------------------------------------------


def test_tad66k_train_and_test_csvs():
    res = PARSERS["tad66k"](SAMPLES / "tad66k")
    assert res.label_files == [
        SAMPLES / "tad66k/labels/merge/train.csv",
        SAMPLES / "tad66k/labels/merge/test.csv",
    ]
    got = [(r.path, r.raw_score, r.normalized, r.extra["split"]) for r in res.records]
    assert got == [
        ("imgs/34556776.jpg", 6.03, pytest.approx((6.03 - 1) / 9), "train"),  # 0.5588...
        ("imgs/1000032.jpg", 4.5, pytest.approx(3.5 / 9), "train"),
        ("imgs/23456.jpg", 7.5, pytest.approx(6.5 / 9), "test"),
        ("imgs/10.jpg", 1.0, 0.0, "test"),  # the bottom of [1, 10]
    ]
    assert where(res) == [("train.csv", 4), ("train.csv", 5), ("test.csv", 3)]
    assert "not a number: 'abc'" in res.errors[0].message
    assert "11.2 is outside the declared scale [1, 10]" in res.errors[1].message
    assert "expected 2 columns (image, score), found 3" in res.errors[2].message


def test_tad66k_one_csv_and_an_images_folder(sample_copy):
    root = sample_copy("tad66k")
    (root / "images").mkdir()
    (root / "images" / "23456.jpg").write_bytes(b"jpeg")
    res = PARSERS["tad66k"](root / "labels" / "merge" / "test.csv")
    assert res.base == root  # labels/merge/ stripped: paths stay relative to the dataset root
    assert [r.path for r in res.records] == ["images/23456.jpg", "images/10.jpg"]


# --- SCUT-FBP5500 ---------------------------------------------------------------------------


def test_scut_all_labels_splits_and_groups():
    res = PARSERS["scut-fbp5500"](SAMPLES / "scut-fbp5500")
    assert res.scale == (1.0, 5.0)
    got = [(r.path, r.raw_score, r.normalized) for r in res.records]
    assert got == [
        ("Images/CF437.jpg", 2.883333, pytest.approx(1.883333 / 4)),  # 0.47083325
        ("Images/AM1384.jpg", 2.466667, pytest.approx(1.466667 / 4)),  # 0.36666675
        ("Images/AF1.jpg", 4.0, 0.75),
        ("Images/CM5.jpg", 5.0, 1.0),
    ]
    recs = by_path(res)
    assert recs["Images/CF437.jpg"].extra == {
        "group": "CF",
        "race": "caucasian",
        "gender": "female",
        "split": "train",
        "cv_test_fold": 1,
    }
    assert recs["Images/AM1384.jpg"].extra == {
        "group": "AM",
        "race": "asian",
        "gender": "male",
        "split": "test",
    }
    assert where(res) == [("All_labels.txt", 5), ("All_labels.txt", 6), ("All_labels.txt", 7)]
    assert "expected 2 columns" in res.errors[0].message
    assert "not a number: 'high'" in res.errors[1].message
    assert "0.5 is outside the declared scale [1, 5]" in res.errors[2].message


def test_scut_per_rater_ratings_from_all_ratings_xlsx(sample_copy):
    root = sample_copy("scut-fbp5500")
    header = ["Rater", "Filename", "Rating", "original Rating"]
    write_xlsx(
        root / "All_Ratings.xlsx",
        {
            "Asian_Female": [header, [1, "AF1.jpg", 1, 1]],  # not the ALL sheet: ignored
            "ALL": [
                header,
                [1, "CF437.jpg", 3, 3],
                [2, "CF437.jpg", 2, 4],  # the rater changed 4 to 2
                [3, Inline("CF437.jpg"), 4, 4],
                [1, "AF1.jpg", 4, 4],
                [2, "AF1.jpg", "x", 3],  # row 6: not a number
                [3, "AF1.jpg", 9, 9],  # row 7: outside [1, 5]
                [],
                [4, "AF1.jpg", 5, None],  # no original rating
            ],
        },
    )
    res = PARSERS["scut-fbp5500"](root / "train_test_files" / "All_labels.txt")
    assert res.base == root
    assert res.label_files[-1] == root / "All_Ratings.xlsx"
    recs = by_path(res)
    cf = recs["Images/CF437.jpg"].extra
    assert cf["ratings"] == {"1": 3.0, "2": 2.0, "3": 4.0}
    assert cf["original_ratings"] == {"2": 4.0}
    assert cf["n_raters"] == 3
    af = recs["Images/AF1.jpg"].extra
    assert af["ratings"] == {"1": 4.0, "4": 5.0} and "original_ratings" not in af
    assert "ratings" not in recs["Images/CM5.jpg"].extra
    assert where(res)[-2:] == [("All_Ratings.xlsx", 6), ("All_Ratings.xlsx", 7)]
    assert "Rating is not a number: 'x'" in res.errors[-2].message
    assert "outside [1, 5]" in res.errors[-1].message


def test_scut_unreadable_ratings_workbook_is_reported_not_fatal(sample_copy):
    root = sample_copy("scut-fbp5500")
    (root / "All_Ratings.xlsx").write_bytes(b"not a zip")
    res = PARSERS["scut-fbp5500"](root)
    assert len(res) == 4
    assert where(res)[-1] == ("All_Ratings.xlsx", None)
    assert "per-rater ratings not read" in res.errors[-1].message


# --- MEBeauty -------------------------------------------------------------------------------


def test_mebeauty_universal_scores():
    res = PARSERS["mebeauty"](SAMPLES / "mebeauty")
    assert [f.name for f in res.label_files] == [
        "train_universal_scores.csv",
        "test_universal_scores.csv",
    ]
    got = [(r.path, r.raw_score, r.normalized, r.extra) for r in res.records]
    assert got == [
        (
            "images/female/asian/joel-mott-Z8MesVFSYac-unsplash.jpg",
            6.48,
            pytest.approx(5.48 / 9),  # 0.6088...
            {"gender": "female", "ethnicity": "asian", "split": "train"},
        ),
        (
            "images/male/black/filipp-romanovskij-H4q-AEA02rY-unsplash.jpg",
            3.0,
            pytest.approx(2 / 9),
            {"gender": "male", "ethnicity": "black", "split": "train"},
        ),
        (
            "images/female/caucasian/f8.jpg",
            7.611111111111111,
            pytest.approx((7.611111111111111 - 1) / 9),  # 0.7345...
            {"gender": "female", "ethnicity": "caucasian", "split": "train"},
        ),
        (
            "images/female/caucasian/rw-studios-GaPevteWAIU-unsplash.jpg",
            8.4,
            pytest.approx(7.4 / 9),
            {"gender": "female", "ethnicity": "caucasian", "split": "test"},
        ),
    ]
    assert where(res) == [
        ("train_universal_scores.csv", 4),
        ("test_universal_scores.csv", 3),
        ("test_universal_scores.csv", 4),
    ]
    assert "not a number: 'eleven'" in res.errors[0].message
    assert "0.4 is outside the declared scale [1, 10]" in res.errors[1].message
    assert "leaves the dataset root: '../outside.jpg'" in res.errors[2].message


def test_mebeauty_crop_file_given_directly():
    res = PARSERS["mebeauty"](SAMPLES / "mebeauty" / "scores" / "train_crop.csv")
    assert res.base == SAMPLES / "mebeauty"
    assert [(r.path, r.extra) for r in res.records] == [
        (
            "cropped_images/images_crop_align_mtcnn/female/caucasian/11.jpg",
            {"gender": "female", "ethnicity": "caucasian", "split": "train"},
        ),
        (
            "cropped_images/images_crop_align_mtcnn/male/hispanic/132.jpg",
            {"gender": "male", "ethnicity": "hispanic", "split": "train"},
        ),
    ]
    assert res.records[0].normalized == pytest.approx((6.642276422764229 - 1) / 9)
    assert res.errors == []


# --- BAID -----------------------------------------------------------------------------------


def test_baid_three_splits_on_0_10():
    res = PARSERS["baid"](SAMPLES / "baid")
    assert res.scale == (0.0, 10.0)
    got = [(r.path, r.raw_score, r.normalized, r.extra["split"]) for r in res.records]
    assert got == [
        ("images/24429.jpg", 4.034603, pytest.approx(0.4034603), "train"),
        ("images/159261.jpg", 10.0, 1.0, "train"),
        ("images/46099.jpg", 9.631597, pytest.approx(0.9631597), "train"),
        ("images/12938.jpg", 5.1598, pytest.approx(0.51598), "val"),
        ("images/61963.jpg", 5.3349, pytest.approx(0.53349), "test"),
    ]
    assert where(res) == [("train_set.csv", 5), ("test_set.csv", 3)]
    assert res.errors[0].message == "score is missing"
    assert "-1 is outside the declared scale [0, 10]" in res.errors[1].message


def test_baid_only_train_labels_published(sample_copy):
    root = sample_copy("baid")
    (root / "dataset" / "val_set.csv").unlink()
    (root / "dataset" / "test_set.csv").unlink()
    res = PARSERS["baid"](root)
    assert {r.extra["split"] for r in res.records} == {"train"}


# --- AGIQA-3K -------------------------------------------------------------------------------


def test_agiqa3k_quality_mos_and_prompt_metadata():
    res = PARSERS["agiqa-3k"](SAMPLES / "agiqa-3k" / "data.csv")
    assert res.scale == (0.0, 5.0)
    recs = by_path(res)
    assert list(recs) == [
        "AttnGAN_normal_010.jpg",
        "sd1.5_lowcorr_262.jpg",
        "sd1.5_lowstep_010.jpg",
    ]
    a = recs["AttnGAN_normal_010.jpg"]
    assert a.raw_score == 1.311956077
    assert a.normalized == pytest.approx(1.311956077 / 5)  # 0.2623912154
    assert a.extra == {
        "prompt": "face shot of a woman",
        "std_quality": 0.754244761,
        "mos_align": 0.178657573,
        "std_align": 0.569770583,
        "generator": "AttnGAN",
        "variant": "normal",
    }
    b = recs["sd1.5_lowcorr_262.jpg"]
    assert b.normalized == pytest.approx(3.283005153 / 5)  # 0.6566010306
    assert b.extra["prompt"].startswith("edwardian headshot photograph of a pale russian woman, ")
    assert (b.extra["adj1"], b.extra["adj2"], b.extra["style"]) == (
        "cold color",
        "top view",
        "realistic style",
    )
    assert (b.extra["generator"], b.extra["variant"]) == ("sd1.5", "lowcorr")
    assert recs["sd1.5_lowstep_010.jpg"].normalized == pytest.approx(3.659493494 / 5)
    assert where(res) == [("data.csv", 5), ("data.csv", 6)]
    assert "mos_quality is not a number: 'not-a-number'" in res.errors[0].message
    assert "expected 9 columns" in res.errors[1].message and "found 6" in res.errors[1].message


def test_agiqa3k_images_in_a_subfolder(sample_copy):
    root = sample_copy("agiqa-3k")
    (root / "images").mkdir()
    (root / "images" / "sd1.5_lowstep_010.jpg").write_bytes(b"jpeg")
    res = PARSERS["agiqa-3k"](root)
    assert [r.path for r in res.records][-1] == "images/sd1.5_lowstep_010.jpg"


# --- Registry, missing files, import roots --------------------------------------------------


def test_registry_kinds_and_default_scales():
    assert {k: p.default_scale for k, p in PARSERS.items()} == {
        "ava": (1.0, 10.0),
        "tad66k": (1.0, 10.0),
        "scut-fbp5500": (1.0, 5.0),
        "mebeauty": (1.0, 10.0),
        "baid": (0.0, 10.0),
        "agiqa-3k": (0.0, 5.0),
        "manifest": None,
    }
    assert all(p.kind == k and p.layout for k, p in PARSERS.items())


def test_unknown_kind():
    from curation.sources import SourceFileError

    with pytest.raises(SourceFileError, match=r"unknown source kind 'flickr'.*ava, tad66k"):
        parse_source("flickr", SAMPLES)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("ava", "AVA.txt"),
        ("tad66k", "labels/merge/train.csv"),
        ("scut-fbp5500", "train_test_files/All_labels.txt"),
        ("mebeauty", "scores/train_universal_scores.csv"),
        ("baid", "dataset/train_set.csv"),
        ("agiqa-3k", "data.csv"),
    ],
)
def test_missing_label_file_names_the_expected_file(tmp_path, kind, expected):
    with pytest.raises(MissingLabelFile) as info:
        parse_source(kind, tmp_path)
    assert str(tmp_path / expected) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(MissingLabelFile, match="does not exist"):
        parse_source(kind, tmp_path / "nowhere")


def test_scale_override():
    res = PARSERS["baid"](SAMPLES / "baid", scale=(0, 20))
    assert res.records[1].normalized == 0.5  # 10 on [0, 20]
    assert "-1 is outside the declared scale [0, 20]" in res.errors[-1].message


def test_roots_check_label_files_and_record_paths(sample_copy, tmp_path):
    root = sample_copy("baid")
    # inside the roots: the same records (the image files need not exist to be listed)
    res = PARSERS["baid"](root, roots=[root])
    assert len(res) == 5 and len(res.errors) == 2
    assert res.resolve(res.records[0], [root]) == (root / "images" / "24429.jpg").resolve()
    # the dataset itself outside the roots: refused outright, naming it, before it is read
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(PathOutsideRoots, match=re.escape(str(root))):
        PARSERS["baid"](root, roots=[elsewhere])


def test_roots_refuse_an_images_folder_symlinked_outside(sample_copy, tmp_path):
    root = sample_copy("baid")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "images").symlink_to(outside, target_is_directory=True)
    res = PARSERS["baid"](root, roots=[root])
    assert res.records == []
    refused = [e for e in res.errors if "symbolic link" in e.message]
    assert len(refused) == 5
    assert refused[0].line == 2 and Path(refused[0].file).name == "train_set.csv"
    assert "images/24429.jpg" in refused[0].message and str(root.resolve()) in refused[0].message


def test_the_parsing_layer_imports_no_django():
    import subprocess
    import sys

    code = (
        "import sys, curation.sources\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')]\n"
        "assert not loaded, loaded\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, env={"PATH": ""})
