"""The shipped guides cover the standard exactly, and overrides are checked item by item."""

from __future__ import annotations

import pytest

from humanbeauty.dimension_guides import (
    DEFAULT_GUIDES,
    GuideError,
    default_guides,
    effective_guides,
    merge_overrides,
    validate_overrides,
)
from humanbeauty.standard import DIMENSION_KEYS, LEVELS


def test_defaults_cover_every_dimension_and_level_exactly():
    assert list(DEFAULT_GUIDES) == list(DIMENSION_KEYS)
    for key, guide in default_guides().items():
        assert guide["definition"].strip(), key
        assert list(guide["levels"]) == list(LEVELS), key
        assert all(text.strip() for text in guide["levels"].values()), key
        # One line per level: no two levels of a dimension say the same thing.
        assert len(set(guide["levels"].values())) == len(LEVELS), key


def test_overrides_lay_over_the_defaults_and_empty_text_restores_one():
    changes = validate_overrides(
        {"outfit": {"definition": "  Clothes   only. ", "levels": {"bad": "Torn."}}}
    )
    assert changes == {"outfit": {"definition": "Clothes only.", "levels": {"bad": "Torn."}}}
    stored = merge_overrides({}, changes)
    shown = effective_guides(stored)
    assert shown["outfit"]["definition"] == "Clothes only."
    assert shown["outfit"]["levels"]["bad"] == "Torn."
    assert shown["outfit"]["levels"]["good"] == DEFAULT_GUIDES["outfit"][1][3]
    assert shown["outfit"]["custom"] == ["definition", "bad"]
    assert shown["looks"]["custom"] == []
    back = merge_overrides(stored, validate_overrides({"outfit": {"definition": ""}}))
    assert back == {"outfit": {"levels": {"bad": "Torn."}}}
    assert merge_overrides(back, validate_overrides({"outfit": {"levels": {"bad": None}}})) == {}
    # A text equal to the default is no override (a form sends every text back).
    same = {"outfit": {"definition": DEFAULT_GUIDES["outfit"][0], "levels": {"bad": "Torn."}}}
    assert merge_overrides({}, validate_overrides(same)) == {"outfit": {"levels": {"bad": "Torn."}}}


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"nose": {"definition": "x"}}, "unknown dimension 'nose'"),
        ({"outfit": {"levels": {"great": "x"}}}, "unknown level 'great'"),
        ({"outfit": {"definition": 3}}, "outfit.definition: expected text"),
        ({"outfit": {"colour": "x"}}, "unknown field(s) colour"),
        ({"outfit": "x"}, "expected an object"),
        ({"outfit": {"definition": "x" * 601}}, "at most 600 characters"),
        (["outfit"], "must be an object"),
    ],
)
def test_bad_overrides_are_refused_with_the_reason(data, needle):
    with pytest.raises(GuideError) as caught:
        validate_overrides(data)
    assert needle in str(caught.value)
