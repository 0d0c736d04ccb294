"""The LM head's twelve-line answers, parsed and evaluated per dimension (issue #15 item 4)."""

from __future__ import annotations

import json

import pytest

from humanbeauty.standard import DIMENSION_KEYS, DIMENSIONS, score_to_level
from modeling.evaluate import main as evaluate_main
from modeling.hae.data import read_split
from modeling.hae.evaluate import lm_answer_report
from modeling.hae.prompts import expert_answer, parse_expert_answer
from modeling.hae.train import main as train_main

SCORES = [0.1, None, 0.5, 0.7, 0.95, 0.6, 0.3, None, 0.45, 0.8, 0.5, 0.55]


def test_the_training_answer_parses_back_to_its_levels():
    parsed = parse_expert_answer(expert_answer(SCORES))
    assert parsed == {
        d.key: None if s is None else score_to_level(s)
        for d, s in zip(DIMENSIONS, SCORES, strict=True)
    }


def test_parsing_is_by_name_tolerant_of_layout_and_never_guesses():
    lines = expert_answer(SCORES).splitlines()
    text = "\n".join(
        [
            "Sure! Here is my assessment:",
            lines[2].upper(),  # "3. FACIAL SKIN TONE : FAIR"
            "  1)   Facial Brightness:bad.",
            "4. Facial Structure : gorgeous",  # not a level word: unanswered
            "5. Facial Contour Clarity : excellent",
            "5. Facial Contour Clarity : bad",  # a second answer does not overwrite the first
            "99. Environment : good",  # a wrong number, but the name decides
        ]
    )
    assert parse_expert_answer(text) == {
        "facial_skin_tone": "fair",
        "facial_brightness": "bad",
        "facial_contour_clarity": "excellent",
        "environment": "good",
    }
    assert parse_expert_answer("") == {}


class _Sample:
    def __init__(self, scores):
        self.scores = tuple(scores)


def test_report_counts_unanswered_as_wrong_and_checks_not_applicable():
    truth = [SCORES, [0.9 if s is None else s for s in SCORES]]
    samples = [_Sample(t) for t in truth]
    right = expert_answer(SCORES)
    # second image: brightness unanswered, everything else right
    second = "\n".join(
        line for line in expert_answer(truth[1]).splitlines() if "Brightness" not in line
    )
    report = lm_answer_report([right, second], samples)["dimensions"]
    assert report["facial_brightness"]["n"] == 2 and report["facial_brightness"]["answered"] == 1
    assert report["facial_brightness"]["accuracy"] == pytest.approx(0.5)
    assert report["facial_skin_tone"]["accuracy"] == 1.0
    # facial_feature_clarity: null in the first image (answer said so), 0.9 in the second
    assert report["facial_feature_clarity"]["n"] == 1
    assert report["facial_feature_clarity"]["not_applicable"] == {
        "n": 1, "said_not_applicable": 1
    }
    level = score_to_level(SCORES[0])
    assert report["facial_brightness"]["per_level"][level]["support"] == 1


def test_evaluate_cli_reports_lm_answers_per_dimension(tiny_release, tmp_path):
    run = tmp_path / "run"
    args = ["--data", str(tiny_release), "--out", str(run), "--backbone", "tiny"]
    assert train_main([*args, "--max-steps", "1"]) == 0
    out = tmp_path / "report.json"
    base = ["--model", str(run / "final"), "--data", str(tiny_release), "--out", str(out)]
    assert evaluate_main(base) == 0
    report = json.loads(out.read_text())
    experts = [s for s in read_split(tiny_release, "test") if s.is_expert]
    answers = report["lm_answers"]
    assert answers["n_images"] == len(experts) > 0
    assert set(answers["dimensions"]) == set(DIMENSION_KEYS)
    for j, key in enumerate(DIMENSION_KEYS):
        entry = answers["dimensions"][key]
        assert entry["n"] == sum(s.scores[j] is not None for s in experts)
        assert 0 <= entry["answered"] <= entry["n"]
    confusion = report["heads"]["expert"]["comprehensive_aesthetic"]["confusion"]
    assert sum(map(sum, confusion)) == len(read_split(tiny_release, "test"))
    assert evaluate_main([*base, "--no-lm-answers"]) == 0
    assert "lm_answers" not in json.loads(out.read_text())
