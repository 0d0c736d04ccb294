import math

import pytest

from humanbeauty import standard
from humanbeauty.standard import (
    DIMENSION_KEYS,
    DIMENSIONS,
    LEVEL_MIDPOINTS,
    LEVELS,
    StandardError,
    level_to_score,
    score_to_level,
    validate_scores,
)


def test_twelve_dimensions_in_official_order():
    assert [d.index for d in DIMENSIONS] == list(range(1, 13))
    assert DIMENSION_KEYS[0] == "facial_brightness"
    assert DIMENSION_KEYS[-1] == "comprehensive_aesthetic"
    assert DIMENSIONS[-1].name == "Comprehensive Aesthetic Score"
    assert len(set(DIMENSION_KEYS)) == 12


def test_hierarchy_parents_and_leaves():
    by = standard.BY_KEY
    assert by["facial_aesthetic"].children == tuple(DIMENSION_KEYS[:5])
    assert by["general_appearance_aesthetic"].children == ("outfit", "body_shape", "looks")
    assert set(by["comprehensive_aesthetic"].children) == {
        "facial_aesthetic", "environment", "general_appearance_aesthetic"}
    assert len(standard.LEAF_KEYS) == 9 and len(standard.PARENT_KEYS) == 3
    # every child is a known key and every key but the overall one has exactly one parent
    parents = {c: p.key for p in DIMENSIONS for c in p.children}
    assert set(parents) == set(DIMENSION_KEYS) - {"comprehensive_aesthetic"}


@pytest.mark.parametrize(
    ("score", "level"),
    [(0.0, "bad"), (0.199, "bad"), (0.2, "poor"), (0.399, "poor"), (0.4, "fair"),
     (0.6, "good"), (0.79, "good"), (0.8, "excellent"), (1.0, "excellent")],
)
def test_level_thresholds(score, level):
    assert score_to_level(score) == level


def test_midpoints_round_trip_through_thresholds():
    for i, level in enumerate(LEVELS):
        assert level_to_score(level) == LEVEL_MIDPOINTS[i]
        assert level_to_score(i + 1) == LEVEL_MIDPOINTS[i]
        assert score_to_level(level_to_score(level)) == level
    assert LEVEL_MIDPOINTS == (0.1, 0.3, 0.5, 0.7, 0.9)


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan])
def test_out_of_range_scores_have_no_level(bad):
    with pytest.raises(StandardError):
        score_to_level(bad)


def test_unknown_level_names_are_refused():
    with pytest.raises(StandardError, match="unknown level"):
        level_to_score("superb")
    with pytest.raises(StandardError):
        level_to_score(6)


def _scores(**kw):
    s = {k: 0.5 for k in DIMENSION_KEYS}
    s.update(kw)
    return s


def test_validate_accepts_full_set_and_nulls_where_allowed():
    face_hidden = _scores(**{k: None for k in DIMENSION_KEYS[:6]}, outfit=None, body_shape=None)
    clean = validate_scores(face_hidden)
    assert clean["facial_brightness"] is None and clean["looks"] == 0.5
    assert validate_scores(_scores(looks=1))["looks"] == 1.0


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (_scores(looks=None), "looks"),
        (_scores(comprehensive_aesthetic=None), "comprehensive_aesthetic"),
        (_scores(environment=1.5), "outside"),
        (_scores(environment=-0.1), "outside"),
        (_scores(environment="0.5"), "expected a number"),
        (_scores(environment=True), "expected a number"),
        (_scores(sparkle=0.5), "unknown dimension"),
        ({k: 0.5 for k in DIMENSION_KEYS[1:]}, "missing"),
        (_scores(facial_aesthetic=None), "facial features"),
        ([0.5] * 12, "object"),
    ],
)
def test_validate_refuses_with_a_clear_message(scores, message):
    with pytest.raises(StandardError, match=message):
        validate_scores(scores)


def test_vector_round_trip():
    s = _scores(facial_brightness=0.1)
    assert standard.vector_to_scores(standard.scores_to_vector(s)) == s
    with pytest.raises(StandardError):
        standard.vector_to_scores([0.1] * 11)


def test_standard_module_has_no_django_import():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(standard))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith("django") for m in modules)
