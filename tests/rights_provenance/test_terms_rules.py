"""The rules of curation.sources.terms: known licences, resolution, what a use needs."""

import pytest

from curation.sources import PARSERS
from curation.sources.terms import (
    LICENCES,
    Terms,
    TermsError,
    declared_licence,
    licence_mix_error,
    normalize_consent_basis,
    normalize_licence,
    rejection_reasons,
    release_conflict,
    resolve,
)


def test_licence_ids_are_normalised_or_refused():
    assert normalize_licence("cc-by-4.0") == "CC-BY-4.0"
    assert normalize_licence(" Research-Only ") == "research-only"
    assert normalize_licence("Apache-2.0") == "Apache-2.0"  # well formed, not in the table
    assert normalize_licence("") == ""
    for bad in ("CC BY 4.0!", "-x", "a/b", 4):
        with pytest.raises(TermsError, match="licence"):
            normalize_licence(bad)


def test_consent_bases_are_a_closed_list():
    assert normalize_consent_basis("explicit-consent") == "explicit_consent"
    assert normalize_consent_basis("Public dataset terms") == "public_dataset_terms"
    with pytest.raises(TermsError, match="explicit_consent"):
        normalize_consent_basis("they said yes")


def test_an_image_s_own_terms_override_its_source_s_field_by_field():
    source = Terms("research-only", "public_dataset_terms")
    assert resolve(Terms(), source) == Terms("research-only", "public_dataset_terms", "")
    assert resolve(Terms("CC-BY-4.0", "", "form 12"), source) == Terms(
        "CC-BY-4.0", "public_dataset_terms", "form 12")
    assert resolve(Terms(), None) == Terms("unknown", "unknown", "")


def test_an_unknown_licence_allows_nothing():
    assert rejection_reasons("unknown", ["commercial", "redistribution"]) == [
        "terms_no_commercial", "terms_no_redistribution"]
    assert rejection_reasons("Apache-2.0", ["derivatives"]) == ["terms_no_derivatives"]
    assert rejection_reasons("CC-BY-NC-4.0", ["redistribution", "commercial"]) == [
        "terms_no_commercial"]
    assert rejection_reasons("CC0-1.0", ["commercial", "redistribution", "derivatives"]) == []


def test_each_built_in_dataset_records_what_it_publishes():
    got = {kind: (p.licence, p.consent_basis) for kind, p in PARSERS.items()}
    assert got == {
        "ava": ("all-rights-reserved", "public_dataset_terms"),
        "tad66k": ("unknown", "public_dataset_terms"),
        "scut-fbp5500": ("research-only", "public_dataset_terms"),
        "mebeauty": ("research-only", "public_dataset_terms"),
        "baid": ("CC-BY-NC-ND-4.0", "public_dataset_terms"),
        "agiqa-3k": ("MIT", "public_dataset_terms"),
        "manifest": ("", ""),
    }
    for kind, parser in PARSERS.items():
        assert parser.licence in ("", *LICENCES), kind
        assert (kind == "manifest") != bool(parser.origin)


def test_a_declared_licence_refuses_what_it_does_not_allow():
    assert release_conflict("CC-BY-4.0", "research-only", ships_images=True) == (
        "does not allow redistributing the images")
    assert release_conflict("CC-BY-4.0", "CC-BY-NC-4.0", ships_images=True) == (
        "does not allow commercial use")
    assert release_conflict("CC-BY-4.0", "CC-BY-SA-4.0", ships_images=True) == (
        "is share-alike: only under CC-BY-SA-4.0")
    assert release_conflict("CC0-1.0", "CC-BY-4.0", ships_images=True) == (
        "requires attribution, which CC0-1.0 does not")
    assert release_conflict("CC-BY-4.0", "CC0-1.0", ships_images=True) is None
    assert release_conflict("CC-BY-NC-4.0", "CC-BY-4.0", ships_images=True) is None
    # scores only (images=none): the images' redistribution is not asked
    assert release_conflict("research-only", "research-only", ships_images=False) is None
    assert release_conflict("research-only", "research-only", ships_images=True) is not None
    assert release_conflict("", "unknown", ships_images=True) is None  # none declared
    # a release granting no rights of its own passes no attribution away; share-alike binds
    # only the images it shares
    assert release_conflict("research-only", "CC-BY-4.0", ships_images=True) is None
    assert release_conflict("CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", ships_images=False) is None
    assert release_conflict("CC-BY-NC-4.0", "CC-BY-NC-SA-4.0", ships_images=True) == (
        "is share-alike: only under CC-BY-NC-SA-4.0")


def test_the_mix_error_names_the_count_and_the_licences():
    message = licence_mix_error(
        "CC-BY-4.0", {"CC-BY-4.0": 5, "research-only": 2, "unknown": 1}, ships_images=True)
    assert "for 3 image(s)" in message
    assert "research-only (2 image(s))" in message and "unknown (1 image(s))" in message
    assert "CC-BY-4.0 (5" not in message
    assert licence_mix_error("CC-BY-4.0", {"CC-BY-4.0": 5}, ships_images=True) is None


def test_a_release_declares_only_a_licence_the_table_knows():
    assert declared_licence("cc-by-nc-4.0") == "CC-BY-NC-4.0"
    assert declared_licence("") == ""
    for bad in ("unknown", "Apache-2.0", "CC BY"):
        with pytest.raises(TermsError, match="a release's licence must be one"):
            declared_licence(bad)
