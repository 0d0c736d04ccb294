from __future__ import annotations

import json

import pytest

from modeling.hae.data import find_root, read_split
from modeling.hae.errors import ReleaseError


def _release(tmp_path, lines):
    root = tmp_path / "HumanBeauty"
    root.mkdir()
    (root / "train_label.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return tmp_path


def test_reads_the_official_layout(tiny_release):
    root = find_root(tiny_release)
    assert root.name == "HumanBeauty" and find_root(root) == root
    samples = read_split(tiny_release, "train") + read_split(tiny_release, "test")
    assert len(samples) == 12
    for s in samples:
        assert s.image_path.is_file() and len(s.scores) == 12
        if s.is_expert:
            assert all(v is not None for v in s.scores)
            assert s.target_mask() == [True] * 12
        else:
            assert s.scores[:11] == (None,) * 11 and s.target_mask() == [False] * 11 + [True]


def test_official_line_variants_and_not_applicable(tmp_path):
    dims = [0.5] * 12
    dims[0:6] = [None] * 6  # no visible face: facial features and facial score not applicable
    data = _release(
        tmp_path,
        [
            {"image_name": "a.jpg", "source": "ava", "score": 0.7, "is_expert": 0},
            {
                "image_name": "b.jpg",
                "source": "x",
                "score": 0.1,
                "text_level": "poor",
                "is_expert": False,
            },
            {"image_name": "c.jpg", "source": "ours", "score": dims, "is_expert": True},
        ],
    )
    a, b, c = read_split(data, "train")
    assert a.text_level == "good" and b.text_level == "poor"  # the file's text_level wins
    assert c.target_mask() == [False] * 6 + [True] * 6


@pytest.mark.parametrize(
    "line, message",
    [
        ({"image_name": "a", "score": 1.5, "is_expert": False}, "outside"),
        ({"image_name": "a", "score": [0.5] * 11, "is_expert": True}, "12"),
        ({"image_name": "a", "score": 0.5, "is_expert": True}, "list"),
        ({"score": 0.5, "is_expert": False}, "image_name"),
        ({"image_name": "a", "score": [0.5] * 11 + [None], "is_expert": True}, "comprehensive"),
    ],
)
def test_bad_label_lines_are_clear_errors(tmp_path, line, message):
    data = _release(tmp_path, [line])
    with pytest.raises(ReleaseError, match=message):
        read_split(data, "train")


def test_not_a_release(tmp_path):
    with pytest.raises(ReleaseError, match=r"train_label\.jsonl"):
        read_split(tmp_path, "train")
