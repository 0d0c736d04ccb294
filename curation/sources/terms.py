"""Provenance and terms: the licences the platform knows, what each allows, and the rules that
read them (pure Python, no Django: the filter jobs and the release build use the same rules).

A source records its origin (a URL or a citation), its licence and the consent basis of its
photos; an image may carry its own licence, consent basis and consent reference (an upload with
a signed form), which override its source's (`resolve`, the one resolution rule).

Licences are SPDX identifiers or a named dataset licence. `LICENCES` is the one table of those
the platform knows, with what each allows; a well-formed identifier it does not know, and
"unknown", allow nothing (`licence_of`). Keep the table small and truthful: a licence is added
with what its text grants, and nothing is assumed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from humanbeauty.errors import DomainError

# What a licence may allow; filter jobs require some of them (`missing`), releases check them.
PERMISSIONS: tuple[str, ...] = ("commercial", "redistribution", "derivatives")

# On what basis the people pictured are in the data.
CONSENT_BASES: tuple[str, ...] = ("public_dataset_terms", "explicit_consent", "other", "unknown")
UNKNOWN = "unknown"

# An SPDX-style identifier: letters, digits, '.', '-', '+' (e.g. CC-BY-4.0, LicenseRef-x).
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$")


class TermsError(DomainError, ValueError, code="bad_terms"):
    """A licence identifier, consent basis or required permission that cannot be used (a 400);
    the message says why."""


@dataclass(frozen=True)
class Licence:
    """A licence as the platform reads it. `attribution`: copies must credit the authors;
    `share_alike`: what is made from it may only be shared under the same licence."""

    id: str
    title: str
    commercial: bool = False
    redistribution: bool = False
    derivatives: bool = False
    attribution: bool = False
    share_alike: bool = False
    url: str = ""

    def allows(self, permission: str) -> bool:
        return bool(getattr(self, permission))

    @property
    def hub_id(self) -> str:
        """The identifier as a dataset card's `license:` field spells it (lower case)."""
        return self.id.lower()


_CC = "https://creativecommons.org/"
LICENCES: dict[str, Licence] = {
    lic.id: lic
    for lic in (
        Licence("CC0-1.0", "CC0 1.0 (public domain dedication)", True, True, True,
                url=f"{_CC}publicdomain/zero/1.0/"),
        Licence("CC-BY-4.0", "Creative Commons Attribution 4.0", True, True, True,
                attribution=True, url=f"{_CC}licenses/by/4.0/"),
        Licence("CC-BY-SA-4.0", "Creative Commons Attribution-ShareAlike 4.0", True, True, True,
                attribution=True, share_alike=True, url=f"{_CC}licenses/by-sa/4.0/"),
        Licence("CC-BY-NC-4.0", "Creative Commons Attribution-NonCommercial 4.0", False, True,
                True, attribution=True, url=f"{_CC}licenses/by-nc/4.0/"),
        Licence("CC-BY-NC-SA-4.0", "Creative Commons Attribution-NonCommercial-ShareAlike 4.0",
                False, True, True, attribution=True, share_alike=True,
                url=f"{_CC}licenses/by-nc-sa/4.0/"),
        Licence("CC-BY-NC-ND-4.0",
                "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0", False, True,
                False, attribution=True, url=f"{_CC}licenses/by-nc-nd/4.0/"),
        Licence("MIT", "MIT License", True, True, True, attribution=True,
                url="https://opensource.org/license/mit"),
        # A dataset's own terms that allow non-commercial research use only, and say nothing of
        # sharing the images or changing them (so neither is allowed).
        Licence("research-only", "non-commercial research use only (the dataset's own terms)"),
        # Rights kept by the authors; copies may not be shared.
        Licence("all-rights-reserved", "all rights reserved by the authors"),
        Licence(UNKNOWN, "unknown: no licence recorded"),
    )
}
_BY_LOWER = {key.lower(): key for key in LICENCES}


def _licence_text(value: object, what_it_is: str) -> str:
    """A licence field's text, trimmed ("" for none); TermsError for a value that is no text
    (a number or a list in a JSON body)."""
    if value is not None and not isinstance(value, str):
        raise TermsError(f"{what_it_is}, not {value!r}")
    return (value or "").strip()


def normalize_licence(value: str | None) -> str:
    """A licence identifier as stored: a known one in the table's spelling (any case), another
    well-formed identifier as written, blank as "" (not set). Raises TermsError otherwise."""
    text = _licence_text(value, "a licence is an identifier such as CC-BY-4.0")
    if not text:
        return ""
    known = _BY_LOWER.get(text.lower())
    if known is not None:
        return known
    if not _ID.match(text):
        raise TermsError(
            f"licence {text!r} is not a licence identifier: give an SPDX id such as CC-BY-4.0 "
            f"or one of {', '.join(LICENCES)}"
        )
    return text


def normalize_consent_basis(value: str | None) -> str:
    """A consent basis as stored ("" when not set), or TermsError naming the choices."""
    if value is not None and not isinstance(value, str):
        raise TermsError(f"consent basis must be one of {', '.join(CONSENT_BASES)}")
    text = (value or "").strip().lower().replace("-", "_").replace(" ", "_")
    if not text:
        return ""
    if text not in CONSENT_BASES:
        raise TermsError(
            f"consent basis {value!r} is not one of {', '.join(CONSENT_BASES)}"
        )
    return text


def licence_of(licence_id: str | None) -> Licence:
    """The table's entry; an identifier it does not know allows nothing."""
    key = _BY_LOWER.get((licence_id or "").strip().lower())
    if key is not None:
        return LICENCES[key]
    return Licence(licence_id or UNKNOWN, "not in the platform's table: allows nothing it knows of")


@dataclass(frozen=True)
class Terms:
    """The terms of one image (or of a source): blank fields are not set."""

    licence: str = ""
    consent_basis: str = ""
    consent_reference: str = ""


def resolve(own: Terms, source: Terms | None) -> Terms:
    """The one resolution rule: an image's own terms override its source's, field by field;
    what neither sets is "unknown" (the consent reference stays blank)."""
    source = source or Terms()
    return Terms(
        licence=own.licence or source.licence or UNKNOWN,
        consent_basis=own.consent_basis or source.consent_basis or UNKNOWN,
        consent_reference=own.consent_reference or source.consent_reference,
    )


def check_permissions(values: object, *, what: str = "terms.require") -> list[str]:
    """A filter job's required permissions: a list of names in PERMISSIONS (TermsError)."""
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise TermsError(f"{what} must be a list of {', '.join(PERMISSIONS)}")
    unknown = [v for v in values if v not in PERMISSIONS]
    if unknown:
        raise TermsError(
            f"{what}: unknown permission(s) {', '.join(unknown)}; known: {', '.join(PERMISSIONS)}"
        )
    return [p for p in PERMISSIONS if p in values]


def missing(licence_id: str, required: Iterable[str]) -> list[str]:
    """The required permissions the licence does not give."""
    licence = licence_of(licence_id)
    return [p for p in required if not licence.allows(p)]


def rejection_reasons(licence_id: str, required: Iterable[str]) -> list[str]:
    """A filter job's reasons for an image whose licence lacks a required permission:
    "terms_no_<permission>" for each."""
    return [f"terms_no_{p}" for p in missing(licence_id, required)]


# --- releases --------------------------------------------------------------------------------


def declared_licence(value: str | None) -> str:
    """A release's declared licence: "" (none declared: nothing refused, the mix is stated)
    or an id of the table (its spelling). Raises TermsError for any other."""
    text = _licence_text(value, "a release's licence is a licence identifier")
    if not text:
        return ""
    key = _BY_LOWER.get(text.lower())
    if key is None or key == UNKNOWN:
        known = ", ".join(k for k in LICENCES if k != UNKNOWN)
        raise TermsError(
            f"a release's licence must be one the platform knows ({known}), or none; "
            f"got {text!r}"
        )
    return key


_WORDS = {"commercial": "commercial use", "derivatives": "derivatives"}


def release_conflict(declared: str, image_licence: str, *, ships_images: bool) -> str | None:
    """Why an image under `image_licence` cannot be in a release declared `declared`, or None.

    The release gives what its licence grants: the image's licence must allow at least that
    (commercial use, derivatives), allow sharing its images when the release ships them, not
    require attribution that a licence letting others share without it (CC0) drops, and be the
    very same licence when it is share-alike and its images are shipped."""
    if not declared:
        return None
    release, image = licence_of(declared), licence_of(image_licence)
    if ships_images and not image.redistribution:
        return "does not allow redistributing the images"
    for permission in ("commercial", "derivatives"):
        if release.allows(permission) and not image.allows(permission):
            return f"does not allow {_WORDS[permission]}"
    if image.attribution and release.redistribution and not release.attribution:
        return f"requires attribution, which {release.id} does not"
    if image.share_alike and ships_images and image.id != release.id:
        return f"is share-alike: only under {image.id}"
    return None


def licence_mix_error(
    declared: str, counts: Mapping[str, int], *, ships_images: bool
) -> str | None:
    """The one check of a release's licence mix (the edge and the worker both ask it):
    `counts` is {licence: images}; the message names how many images and which licences the
    declared licence does not allow, or None when it allows them all."""
    bad = {
        lic: (n, why)
        for lic, n in sorted(counts.items())
        if n and (why := release_conflict(declared, lic, ships_images=ships_images))
    }
    if not bad:
        return None
    total = sum(n for n, _ in bad.values())
    parts = "; ".join(f"{lic} ({n} image(s)): {why}" for lic, (n, why) in bad.items())
    return (
        f"the release declares {declared}, which its images' terms do not allow for {total} "
        f"image(s): {parts}. Leave those images out (a filter job with terms.require), "
        "declare another licence, or declare none (the mix is then stated)"
    )
